"""The rule sets the summary in words is proven on: each writer's rules (the verbatim quotes of
tests/fixtures/netfilter/, and the rule sets of tests/fixtures/netfilter/writers/ written to reproduce what a
writer generates, each citing its source), how the lab loads them, the devices their probes need, and the main
effects a user must read in the summary (what the issue found missing or wrong).

`devices`: the lab's routed devices besides eth0 (see tests/helpers/claims_lab.py), each with the networks
behind it: endpoints, containers, workloads. `expect`: phrases the summary must contain, with the lab's address
10.77.1.2 as the namespace's own.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from kubectl_whose.analysis.netfilter.model import NON_TERMINAL_TARGETS, TERMINAL_TARGETS
from tests.helpers.paths import FIXTURES

BUILTIN = {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}

ENDPOINTS = {f"eth{n + 2}": (f"10.180.0.{n + 1}/32",) for n in range(5)}  # a namespace per endpoint: hairpins


@dataclass(frozen=True)
class Entry:
    name: str
    path: str  # under tests/fixtures/netfilter/
    tools: Tuple[str, ...]  # legacy / nft (iptables-*-restore) or nftables (nft -f)
    expect: Tuple[str, ...] = ()
    devices: Dict[str, Sequence[str]] = field(default_factory=dict)

    @property
    def routes(self) -> List[Tuple[str, str]]:
        """The lab pod's routes (tests/helpers/claims_lab.py), as `summarize` takes them."""
        return [(net, dev) for dev, nets in self.devices.items() for net in nets] + \
            [("10.77.1.0/24", "eth0"), ("0.0.0.0/0", "eth0")]

    @property
    def text(self) -> str:
        with open(str(FIXTURES / "netfilter" / self.path)) as f:
            return loadable(f.read()) if not self.path.endswith(".nft") else f.read()


def loadable(text: str) -> str:
    """A verbatim quote as iptables-restore takes it: the commands a golden file records between its tables
    (`iptables-save`) left out, and the user chains a quote jumps to without declaring them declared."""
    out: List[str] = []
    block: Optional[List[str]] = None
    for line in text.splitlines():
        s = line.strip()
        if re.match(r"^ip6?tables(-\w+)?-save$", s):
            continue
        if re.match(r"^\*\s*\w+$", s):
            block = [f"*{s[1:].strip()}"]
        elif block is not None and s == "COMMIT":
            out += _declared(block) + ["COMMIT"]
            block = None
        elif block is not None:
            block.append(_quoted_comments(line))
        else:
            out.append(line)
    return "\n".join(out) + "\n"


def _quoted_comments(line: str) -> str:
    """kube-proxy's Go tests write `--comment kubernetes service portals` unquoted; iptables-restore needs quotes."""
    return re.sub(r'--comment ([^"\s][^-"]*?[^\s"]) (?=-)', lambda m: f'--comment "{m.group(1)}" '
                  if " " in m.group(1) else m.group(0), line)


def _declared(block: List[str]) -> List[str]:
    declared, used = set(), set()
    for line in block[1:]:
        words = line.split()
        if line.startswith(":"):
            declared.add(words[0][1:])
        elif words[:1] == ["-N"]:
            declared.add(words[1])
        for flag in ("-A", "-I", "-j", "-g"):
            if flag in words[:-1]:
                used.add(words[words.index(flag) + 1])
    missing = used - declared - BUILTIN - TERMINAL_TARGETS - NON_TERMINAL_TARGETS
    return block[:1] + [f":{c} - [0:0]" for c in sorted(missing)] + block[1:]


CORPUS = (
    # Istio sidecar (istio-iptables; the Istio CNI plugin writes the same rules)
    Entry("istio-sidecar-default", "istio-sidecar-legacy-save.txt", ("legacy", "nft"), (
        "Outbound TCP is redirected to 127.0.0.1:15001, except from uid or gid 1337",
        "Inbound TCP is redirected to 10.77.1.2:15006, except to ports 15008, 15020, 15021, 15090 (unchanged)",
        "Outbound TCP from uid 1337 to its own address 10.77.1.2 is redirected to 127.0.0.1:15006")),
    Entry("istio-empty-golden", "istio-empty.golden.txt", ("legacy",), (
        "Outbound TCP from uid 1337 to its own address 10.77.1.2 is redirected to 127.0.0.1:15006",)),
    Entry("istio-dns-uid-gid-golden", "istio-dns-uid-gid.golden.txt", ("legacy",), (
        "Outbound TCP to 127.0.0.53 port 53 is redirected to 127.0.0.1:15053",
        "Outbound UDP to 127.0.0.53 port 53 is redirected to 127.0.0.1:15053")),
    Entry("istio-tproxy-inbound-ports-golden", "istio-inbound-ports-tproxy.golden.txt", ("legacy", "nft"), (
        "Inbound TCP to ports 31000, 32000 is handed by TPROXY to the socket on port 15006",)),
    Entry("istio-tproxy", "writers/istio-tproxy.rules", ("legacy",), (
        "Outbound TCP to 9.9.0.0/16 is redirected to 127.0.0.1:15001",
        "Inbound TCP is handed by TPROXY to the socket on port 15006",
        "Outbound UDP to 127.0.0.53 port 53 is redirected to 127.0.0.1:15053"),
        {"not-istio-nic": ("10.99.9.0/24",)}),
    Entry("istio-drop-invalid", "writers/istio-drop-invalid.rules", ("legacy", "nft"), (
        "in conntrack state INVALID (dropped)", "Outbound TCP is redirected to 127.0.0.1:15001")),
    Entry("istio-cni-exclusions", "writers/istio-cni-exclusions.rules", ("nft",), (
        r"re:Outbound TCP is redirected to 127\.0\.0\.1:15001, except from uid or gid 1337, [^(]*to 9\.9\.0\.0/16",
        "except to ports 22, 15008")),
    Entry("istio-nftables-inbound-wildcard-golden", "istio-nftables-inbound-ports-wildcard.nft", ("nftables",), (
        "Inbound TCP is redirected to 10.77.1.2:15006, except to port 15008 (unchanged)",
        "Outbound TCP from uid 1337 to its own address 10.77.1.2 is redirected to 127.0.0.1:15006")),
    Entry("istio-nftables-tproxy", "writers/istio-nft-tproxy.nft", ("nftables",), (
        "Outbound TCP to 9.9.0.0/16 is redirected to 127.0.0.1:15001",
        "Inbound TCP is handed by TPROXY to the socket on port 15006",
        "Outbound TCP to 127.0.0.53 port 53 is redirected to 127.0.0.1:15053"),
        {"not-istio-nic": ("10.99.9.0/24",)}),
    Entry("istio-nftables-drop-invalid", "writers/istio-nft-drop-invalid.nft", ("nftables",), (
        "in conntrack state INVALID (dropped)", "Outbound TCP is redirected to 127.0.0.1:15001")),
    # Istio ambient: in the pod (ztunnel redirection) and on the node (kubelet probes SNATed)
    Entry("istio-ambient-inpod-golden", "istio-ambient-default.golden.txt", ("legacy", "nft"), (
        "Outbound TCP is redirected to 127.0.0.1:15001", "Outbound UDP to port 53 is redirected to 127.0.0.1:15053",
        "Inbound TCP is redirected to 10.77.1.2:15006, except from 169.254.7.127", "marked 0x539/0xfff")),
    Entry("istio-ambient-inpod-nftables", "writers/istio-ambient-inpod.nft", ("nftables",), (
        "Outbound TCP is redirected to 127.0.0.1:15001", "Outbound UDP to port 53 is redirected to 127.0.0.1:15053",
        "Inbound TCP is redirected to 10.77.1.2:15006, except from 169.254.7.127")),
    Entry("istio-ambient-node", "writers/istio-ambient-node.rules", ("legacy", "nft"), (
        "to members of ipset istio-inpod-probes-v4 is SNATed to 169.254.7.127",)),
    Entry("istio-ambient-node-nftables", "writers/istio-ambient-node.nft", ("nftables",), (
        "to 10.180.0.7 is SNATed to 169.254.7.127",), {"eth2": ("10.180.0.0/24",)}),
    # Linkerd proxy-init
    Entry("linkerd-proxy-init-test", "linkerd-proxy-init-test.txt", ("legacy",), (
        "Outbound TCP is redirected to 127.0.0.1:1234",)),
    Entry("linkerd-2.7.1-pod", "linkerd-2.7.1-pod.txt", ("legacy", "nft"), (
        "Outbound TCP is redirected to 127.0.0.1:4140, except from uid 2102",
        "Inbound TCP is redirected to 10.77.1.2:4143, except to ports 4190, 4191 (unchanged)")),
    Entry("linkerd-proxy-init", "writers/linkerd-proxy-init.rules", ("legacy", "nft"), (
        "except from uid 2102, to its own address 10.77.1.2 or to ports 4567, 4568 (unchanged)",
        "Inbound TCP is redirected to 10.77.1.2:4143, except to ports 4190, 4191, 4567, 4568 (unchanged)")),
    # kube-proxy
    Entry("kube-proxy-tracepacket-nat", "kube-proxy-tracepacket-nat.txt", ("legacy",), (
        "Outbound TCP to 172.30.0.44 port 80 is DNATed at random to 10.180.0.4:80 or 10.180.0.5:80 (50% each)",
        "Outbound TCP to 172.30.0.41 port 80 is DNATed to 10.180.0.1:80."), ENDPOINTS),
    Entry("kube-proxy-iptables", "writers/kube-proxy-iptables.rules", ("legacy", "nft"), (
        r"re:TCP to 172\.30\.0\.46 port 80 (is|are) refused \(REJECT\)",
        "Inbound TCP to port 3001 is dropped, except from 10.0.0.0/8 (DNATed to 10.180.0.2:80)",
        "Inbound TCP to port 3003 is DNATed to 10.180.0.3:80 and masqueraded to 10.77.1.2",
        "Outbound TCP to 172.30.0.41 port 80 is DNATed to 10.180.0.1:80.",
        "Inbound TCP to 192.168.99.22 port 80 is dropped"), ENDPOINTS),
    Entry("kube-proxy-nftables", "writers/kube-proxy-nftables.nft", ("nftables",), (
        "Outbound TCP to 172.30.0.44 is refused (REJECT), except to port 80 (DNATed at random to 10.180.0.4:80 or "
        "10.180.0.5:80 (50% each))", "TCP and UDP to 172.30.0.46 are refused (REJECT)",
        "DNATed to 10.180.0.3:80 and masqueraded to 10.77.1.2",
        "Outbound TCP and UDP to 172.30.0.0/16 are dropped, except to 172.30.0.41, 172.30.0.43, 172.30.0.44, "
        "172.30.0.46 (each said on its own)",
        "Outbound TCP to 172.30.0.41 is refused (REJECT), except to port 80 (DNATed to 10.180.0.1:80)"), ENDPOINTS),
    # CNIs and Docker, on a node
    Entry("calico-node", "writers/calico-node.rules", ("legacy", "nft"), (
        "leaving via cali95aa86cbb2a is dropped, except from members of ipset cali40s:LrVD8vMIGQDyv8Y7sPFB1Ge",
        "from members of ipset cali40masq-ipam-pools is masqueraded to 10.77.1.2",
        "Inbound TCP to port 9100 is unchanged (not tracked by conntrack)"),
        {"cali95aa86cbb2a": ("10.88.0.26/32",), "cali0": ("10.88.0.64/26",)}),
    Entry("cilium-node", "writers/cilium-node.rules", ("legacy",), (
        "from 10.244.2.0/24 to other hosts (forwarded) are masqueraded to 10.77.1.2",
        "(not tracked by conntrack)"),
        {"lxc0": ("10.244.2.0/24",), "cilium_host": ("10.244.0.0/24",), "cilium_0": ("10.244.9.0/24",)}),
    Entry("antrea-node", "writers/antrea-node.rules", ("legacy", "nft"), (
        "Inbound TCP to port 80 is dropped, except from 10.10.0.0/16 (unchanged)",
        "from 172.16.10.0/24 to other hosts (forwarded) are masqueraded to 10.77.1.2",
        "UDP to port 6081 is unchanged (not tracked by conntrack)"), {"antrea-gw0": ("172.16.10.0/24",)}),
    Entry("aws-vpc-cni", "writers/aws-vpc-cni.rules", ("legacy", "nft"), (
        "to other hosts (forwarded) are SNATed to 10.77.1.2, except to 10.70.0.0/16",),
        {"eni0": ("10.70.5.0/24",), "vlan0": ("10.70.9.0/24",), "eth2": ("10.70.0.0/16",)}),
    Entry("docker-bridge", "writers/docker-bridge.rules", ("legacy", "nft"), (
        "Inbound TCP to port 8080 is DNATed to 172.17.0.2:80",
        "Inbound TCP to other hosts (forwarded) is dropped, except from 172.17.0.0/16"),
        {"docker0": ("172.17.0.0/16",)}),
)
