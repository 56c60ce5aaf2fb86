"""The netfilter lab for the kernel-judged trace tests: a pod namespace and a peer namespace joined by
a veth pair, real rule sets loaded with real iptables-restore / nft -f, real listeners and real
connections (tests/helpers/nflab_agent.py), and the live rules dumped back with the real save tools."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import List, Optional, Sequence

from tests.helpers.cli import run
from tests.helpers.netns import NetLab, Netns

AGENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nflab_agent.py")
POD_IP, PEER_IP = "10.77.1.2", "10.77.1.1"
POD_IP6, PEER_IP6 = "fd77:1::2", "fd77:1::1"
ENDPOINTS = ("10.77.2.11", "10.77.2.12", "10.77.2.13")


class RulesLab:
    def __init__(self, lab: NetLab, backend: str, workdir: str):
        self.lab, self.backend, self.workdir = lab, backend, workdir
        self.pod: Netns = lab.ns("pod")
        self.peer: Netns = lab.ns("peer")
        lab.link(self.pod, "eth0", f"{POD_IP}/24", self.peer, "eth0", f"{PEER_IP}/24")
        self.pod.run(["ip", "route", "add", "default", "via", PEER_IP])
        for ep in ENDPOINTS:
            self.peer.run(["ip", "addr", "add", f"{ep}/32", "dev", "lo"])
        self.peer.run(["ip", "route", "add", "10.77.0.0/16", "via", POD_IP])  # replies to any lab address
        # the kernel rate-limits ICMP errors per destination (1/s): many REJECTs in a row would look like DROPs
        for ns in (self.pod, self.peer):
            ns.run(["sysctl", "-q", "-w", "net.ipv4.icmp_ratelimit=0", "net.ipv6.icmp.ratelimit=0"])
        self.pod.run(["ip", "-6", "addr", "add", f"{POD_IP6}/64", "dev", "eth0", "nodad"])
        self.peer.run(["ip", "-6", "addr", "add", f"{PEER_IP6}/64", "dev", "eth0", "nodad"])

    # -- rules --
    def load(self, rules: str, ipv6: bool = False) -> None:
        if ipv6:
            self.pod.run([f"ip6tables-{self.backend}-restore"], input=rules)
        elif self.backend == "nftables":
            path = os.path.join(self.workdir, "rules.nft")
            with open(path, "w") as f:
                f.write(rules)
            self.pod.run(["nft", "-f", path])
        else:
            self.pod.run([f"iptables-{self.backend}-restore"], input=rules)

    def forget_connections(self) -> None:
        """Flush conntrack in both namespaces: a new connection must not reuse an earlier one's entry (a reused
        source port would inherit the old NAT binding), which would make rule sets loaded in turn interfere."""
        for ns in (self.pod, self.peer):
            ns.run(["conntrack", "-F"], check=False)

    def dump(self, backend: Optional[str] = None, ipv6: bool = False) -> str:
        """The live rules, read back by the real tool, saved where `trace --from-file` reads them."""
        backend = backend or self.backend
        if ipv6:
            text, name = self.pod.run([f"ip6tables-{backend}-save", "-c"]).stdout, f"live6-{backend}.rules"
        elif backend == "nftables":
            text, name = self.pod.run(["nft", "-j", "list", "ruleset"]).stdout, "live.json"
        else:
            text, name = self.pod.run([f"iptables-{backend}-save", "-c"]).stdout, f"live-{backend}.rules"
        path = os.path.join(self.workdir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    # -- traffic --
    def serve(self, ns: Netns, name: str, tcp: Sequence[int] = (), udp: Sequence[int] = (),
              transparent: bool = False) -> None:
        serve(ns, name, tcp, udp, transparent)

    def connect(self, ns: Netns, proto: str, ip: str, port: int, uid: Optional[int] = None, count: int = 1,
                timeout: float = 2.0, mark: int = 0) -> List[dict]:
        return connect(ns, proto, ip, port, uid, count, timeout, mark)

    # -- our prediction --
    def trace(self, dump: str, *args: str) -> dict:
        r = run("trace", "--from-file", dump, *args, "-o", "json")
        assert r.code == 0, r.stderr
        return r.json



def serve(ns: Netns, name: str, tcp: Sequence[int] = (), udp: Sequence[int] = (), transparent: bool = False) -> None:
    """Listeners in any lab namespace (tests/helpers/nflab_agent.py), ready when this returns."""
    argv = [sys.executable, AGENT, "serve", name] + (["--transparent"] if transparent else [])
    if tcp:
        argv += ["--tcp", ",".join(map(str, tcp))]
    if udp:
        argv += ["--udp", ",".join(map(str, udp))]
    proc = ns.popen(argv, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.strip() == "ready", f"lab server {name} did not start: {line!r}"


def connect(ns: Netns, proto: str, ip: str, port: int, uid: Optional[int] = None, count: int = 1,
            timeout: float = 2.0, mark: int = 0) -> List[dict]:
    """Real connections from a lab namespace: what each attempt got (`kernel_end` reads it)."""
    argv = [sys.executable, AGENT, "connect", proto, ip, str(port), "--count", str(count),
            "--timeout", str(timeout)] + (["--mark", hex(mark)] if mark else [])
    if uid is not None:
        argv = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *argv]
    out = ns.run(argv, timeout=60 + count * timeout).stdout
    return json.loads(out)


def kernel_end(result: dict) -> tuple:
    """(verdict class, delivered-to) from what one real connection did."""
    if result["result"] == "ok":
        # the socket that accepted it: its local address, on the port it listens on (the same as the local
        # port except for TPROXY, which hands a connection to pod:32000 to the socket listening on 15006)
        reply = result["reply"]
        return "delivered", f"{reply['local'].rsplit(':', 1)[0]}:{reply['listen_port']}"  # "[v6]:port" kept
    if result["result"] == "timeout":
        return "DROP", None
    if result["result"] == "refused":
        return "REJECT", None
    if result["result"] == "reset":
        return "RESET", None
    return result["result"], None


def assert_trace_matches_kernel(trace: dict, result: dict) -> None:
    """The trace's single outcome must be where the kernel delivered the packet (or how it refused it)."""
    kind, local = kernel_end(result)
    assert len(trace["outcomes"]) == 1, trace["outcomes"]
    outcome = trace["outcomes"][0]
    if kind == "delivered":
        assert outcome["sender_sees"] == "delivered", (outcome, result)
        assert outcome["verdict"] not in ("DROP", "REJECT"), (outcome, result)
        assert outcome["destination"] == local, (outcome["destination"], result)
        orig = result["reply"].get("orig_dst")
        if orig is not None and orig != result["reply"]["local"]:  # the kernel NATed it: the trace must say so
            assert outcome["verdict"] in ("REDIRECT", "DNAT"), (outcome, result)
        if local != result["reply"]["local"]:  # a socket took a connection addressed elsewhere
            assert outcome["verdict"] == "TPROXY", (outcome, result)
    else:
        # timeout: a DROP, a REJECT whose own answer was dropped, a dropped reply or dropped later packets;
        # refused: a REJECT (of the first or a later packet) whose answer got back
        expected = {"DROP": "timeout", "REJECT": "refused", "RESET": "reset"}.get(kind, f"unexpected: {kind}")
        assert outcome["sender_sees"] == expected, (outcome, result)
    if outcome["verdict"] in ("DROP", "REJECT"):
        assert outcome["destination"] is None, outcome
