"""`trace` through a node, as the kernel routes, judged by the kernel: a node namespace that really forwards
(ip_forward=1) between client, pod and container networks, kube-proxy-style, Calico-like and Docker rules
loaded with the real iptables-restore (and a kube-proxy nftables-mode set with nft -f), real connections from
the clients, and our trace on the rules AND the node's `ip -j addr` / `ip -j route show table all` dumped
back from that namespace must say where each one ends: DNAT and FORWARD to an endpoint, INPUT on the node,
REJECT of a Service without endpoints in FORWARD, the drop of `externalTrafficPolicy: Local` without a local
endpoint, a LoadBalancer's source ranges, a policy drop, a Docker published port.

The rule sets are ours, written in the forms kube-proxy, Calico and Docker write (chain names, comments,
marks; research/anchors-netfilter.md 3a-3d, 4), with the lab's addresses.
"""
from __future__ import annotations

import os

import pytest

from tests.helpers.cli import run
from tests.helpers.netns import NetLab, requires_netns, requires_tools, sweep_stale
from tests.helpers.nflab import connect, kernel_end, serve

pytestmark = [requires_netns, requires_tools("iptables-legacy-restore", "iptables-nft-restore", "nft")]

NODE_IPS = {"c0": "10.0.1.1/24", "c1": "10.0.3.1/24", "s0": "10.180.0.1/24", "d0": "172.17.0.1/24"}
CLIENT, FAR_CLIENT = "10.0.1.2", "10.0.3.2"
ENDPOINT, PROTECTED, CONTAINER = "10.180.0.5", "10.180.0.6", "172.17.0.2"
CLUSTER_IP, EMPTY_IP, LB_IP, NODE_IP = "10.96.0.10", "10.96.0.11", "192.168.99.1", "10.0.1.1"

IPTABLES = f"""*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
:KUBE-EXT-ECHO - [0:0]
:KUBE-EXT-LOCAL - [0:0]
:KUBE-FW-LB - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-ECHO - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-ECHO - [0:0]
:KUBE-SVL-LOCAL - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A PREROUTING -i c1 -p tcp -m tcp --dport 9999 -j REDIRECT --to-ports 22
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A POSTROUTING -s 172.17.0.0/16 ! -o d0 -j MASQUERADE
-A DOCKER -i d0 -j RETURN
-A DOCKER ! -i d0 -p tcp -m tcp --dport 8081 -j DNAT --to-destination {CONTAINER}:80
-A KUBE-EXT-ECHO -m comment --comment "masquerade traffic for default/echo:http external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-ECHO -j KUBE-SVC-ECHO
-A KUBE-EXT-LOCAL -m comment --comment "pod traffic for default/local:http external destinations" -s 10.180.0.0/16 -j KUBE-SVC-ECHO
-A KUBE-EXT-LOCAL -j KUBE-SVL-LOCAL
-A KUBE-FW-LB -m comment --comment "default/lb:http loadbalancer IP" -s 10.0.1.0/24 -j KUBE-EXT-ECHO
-A KUBE-FW-LB -m comment --comment "other traffic to default/lb:http will be dropped by KUBE-PROXY-FIREWALL"
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-NODEPORTS -m comment --comment default/echo:http -m tcp -p tcp --dport 30080 -j KUBE-EXT-ECHO
-A KUBE-NODEPORTS -m comment --comment default/local:http -m tcp -p tcp --dport 30081 -j KUBE-EXT-LOCAL
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
-A KUBE-SEP-ECHO -m comment --comment default/echo:http -s {ENDPOINT}/32 -j KUBE-MARK-MASQ
-A KUBE-SEP-ECHO -m comment --comment default/echo:http -m tcp -p tcp -j DNAT --to-destination {ENDPOINT}:80
-A KUBE-SERVICES -m comment --comment "default/echo:http cluster IP" -m tcp -p tcp -d {CLUSTER_IP}/32 --dport 80 -j KUBE-SVC-ECHO
-A KUBE-SERVICES -m comment --comment "default/lb:http loadbalancer IP" -m tcp -p tcp -d {LB_IP}/32 --dport 80 -j KUBE-FW-LB
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-SVC-ECHO -m comment --comment "default/echo:http -> {ENDPOINT}:80" -j KUBE-SEP-ECHO
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:CALI-FW - [0:0]
:DOCKER-FWD - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SERVICES - [0:0]
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
-A FORWARD -o s0 -m comment --comment "cali:to-workloads" -j CALI-FW
-A FORWARD -o d0 -j DOCKER-FWD
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A CALI-FW -d {PROTECTED}/32 -p tcp -m comment --comment "cali:Drop if no policies passed packet" -j DROP
-A DOCKER-FWD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A DOCKER-FWD -d {CONTAINER}/32 -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER-FWD -j DROP
-A KUBE-EXTERNAL-SERVICES -m comment --comment "default/local:http has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30081 -j DROP
-A KUBE-FORWARD -m conntrack --ctstate INVALID -m comment --comment "kubernetes forwarding rules" -j DROP
-A KUBE-FORWARD -m mark --mark 0x4000/0x4000 -m comment --comment "kubernetes forwarding rules" -j ACCEPT
-A KUBE-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "kubernetes forwarding conntrack rule" -j ACCEPT
-A KUBE-PROXY-FIREWALL -m comment --comment "default/lb:http traffic not accepted by KUBE-FW-LB" -m tcp -p tcp -d {LB_IP}/32 --dport 80 -j DROP
-A KUBE-SERVICES -m comment --comment "default/empty:http has no endpoints" -m tcp -p tcp -d {EMPTY_IP}/32 --dport 80 -j REJECT --reject-with icmp-port-unreachable
COMMIT
"""

NFT = f"""table ip kube-proxy {{
    map service-ips {{
        type ipv4_addr . inet_proto . inet_service : verdict
        elements = {{ {CLUSTER_IP} . tcp . 80 : goto service-echo }}
    }}
    map no-endpoint-services {{
        type ipv4_addr . inet_proto . inet_service : verdict
        elements = {{ {EMPTY_IP} . tcp . 80 : goto reject-chain }}
    }}
    chain reject-chain {{
        reject
    }}
    chain services {{
        ip daddr . meta l4proto . th dport vmap @service-ips
    }}
    chain service-echo {{
        goto endpoint-echo
    }}
    chain endpoint-echo {{
        meta l4proto tcp dnat to {ENDPOINT}:80
    }}
    chain nat-prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        jump services
    }}
    chain filter-forward {{
        type filter hook forward priority -110; policy accept;
        ct state new ip daddr . meta l4proto . th dport vmap @no-endpoint-services
    }}
}}
"""


class NodeLab:
    """client, far client -> node (forwards) -> endpoint pods and a container."""

    def __init__(self, lab: NetLab, backend: str, workdir: str):
        self.lab, self.workdir = lab, workdir
        self.node = lab.ns("node")
        self.ns = {}
        for name, ip, node_if in (("client", CLIENT, "c0"), ("far", FAR_CLIENT, "c1"), ("ep", ENDPOINT, "s0"),
                                  ("ctr", CONTAINER, "d0")):
            ns = lab.ns(name)
            gw, plen = NODE_IPS[node_if].split("/")
            lab.link(ns, "eth0", f"{ip}/{plen}", self.node, node_if, NODE_IPS[node_if])
            ns.run(["ip", "route", "add", "default", "via", gw])
            self.ns[name] = ns
        self.ns["ep"].run(["ip", "addr", "add", f"{PROTECTED}/24", "dev", "eth0"])
        self.node.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        # the node's default route leads out of c1 (like a node's uplink): an address nobody routes goes there
        self.node.run(["ip", "route", "add", "default", "via", FAR_CLIENT])
        for ns in [self.node, *self.ns.values()]:
            ns.run(["sysctl", "-qw", "net.ipv4.icmp_ratelimit=0"])
        serve(self.ns["ep"], "endpoint", tcp=[80])
        serve(self.ns["ctr"], "container", tcp=[80])
        serve(self.node, "node", tcp=[22])
        if backend == "nftables":
            path = os.path.join(workdir, "kp.nft")
            with open(path, "w") as f:
                f.write(NFT)
            self.node.run(["nft", "-f", path])
        else:
            self.node.run([f"iptables-{backend}-restore"], input=IPTABLES)

    def dumps(self, backend: str) -> list:
        """The node's live rules and routing, read back by the real tools."""
        out = []
        for name, argv in (("rules", ["nft", "-j", "list", "ruleset"] if backend == "nftables"
                           else [f"iptables-{backend}-save", "-c"]),
                           ("addr.json", ["ip", "-j", "addr", "show"]),
                           ("route.json", ["ip", "-j", "route", "show", "table", "all"]),
                           ("rule.json", ["ip", "-j", "-4", "rule", "show"])):
            path = os.path.join(self.workdir, name)
            with open(path, "w") as f:
                f.write(self.node.run(argv).stdout)
            out.append(path)
        return out

    def connect(self, client: str, ip: str, port: int) -> dict:
        self.node.run(["conntrack", "-F"], check=False)
        return connect(self.ns[client], "tcp", ip, port, timeout=1.5)[0]


def trace(files, src: str, iface: str, to: str) -> dict:
    args = [a for f in files for a in ("--from-file", f)]
    r = run("trace", *args, "--inbound", "--iface", iface, "--from", f"{src}:40000", "--to", to, "-o", "json")
    assert r.code == 0, r.stderr
    return r.json


@pytest.fixture(scope="module", params=["legacy", "nft", "nftables"])
def node(request, tmp_path_factory):
    sweep_stale("R")
    with NetLab("R") as lab:
        nl = NodeLab(lab, request.param, str(tmp_path_factory.mktemp(f"node-{request.param}")))
        nl.files = nl.dumps(request.param)
        nl.backend = request.param
        yield nl


IPTABLES_CASES = [
    # (client, destination, what the kernel does, the hooks the trace must take)
    ("client", f"{CLUSTER_IP}:80", ("delivered", f"{ENDPOINT}:80"), "FORWARD"),
    ("client", f"{EMPTY_IP}:80", ("REJECT", None), "FORWARD"),
    ("client", f"{NODE_IP}:30080", ("delivered", f"{ENDPOINT}:80"), "FORWARD"),
    ("client", f"{NODE_IP}:30081", ("DROP", None), "INPUT"),
    ("client", f"{LB_IP}:80", ("delivered", f"{ENDPOINT}:80"), "FORWARD"),
    ("far", f"{LB_IP}:80", ("DROP", None), "FORWARD"),
    ("client", f"{PROTECTED}:80", ("DROP", None), "FORWARD"),
    ("client", f"{NODE_IP}:8081", ("delivered", f"{CONTAINER}:80"), "FORWARD"),
    ("client", f"{NODE_IP}:22", ("delivered", f"{NODE_IP}:22"), "INPUT"),
    # REDIRECT goes to the primary address of the interface the packet came in on, not to the one it was sent to
    ("far", f"{NODE_IP}:9999", ("delivered", "10.0.3.1:22"), "INPUT"),
]
NFT_CASES = [c for c in IPTABLES_CASES if c[1].split(":")[0] in (CLUSTER_IP, EMPTY_IP)] + \
    [("client", f"{NODE_IP}:22", ("delivered", f"{NODE_IP}:22"), "INPUT")]


@pytest.mark.parametrize("case", range(len(IPTABLES_CASES)))
def test_a_packet_through_the_node_ends_where_the_kernel_sends_it(node, case):
    cases = NFT_CASES if node.backend == "nftables" else IPTABLES_CASES
    if case >= len(cases):
        pytest.skip(f"the nftables-mode set has {len(cases)} cases")
    client, to, expected, hook = cases[case]
    result = node.connect(client, *to.split(":")[:1], int(to.split(":")[1]))
    assert kernel_end(result) == expected, result
    src, iface = (CLIENT, "c0") if client == "client" else (FAR_CLIENT, "c1")
    t = trace(node.files, src, iface, to)
    assert len(t["outcomes"]) == 1, t["outcomes"]
    outcome = t["outcomes"][0]
    kind, delivered = expected
    if kind == "delivered":
        assert outcome["sender_sees"] == "delivered" and outcome["destination"] == delivered, outcome
    else:
        assert outcome["sender_sees"] == {"DROP": "timeout", "REJECT": "refused"}[kind], outcome
    assert ({"INPUT", "FORWARD"} - {hook}).isdisjoint(t["hooks"]), t["hooks"]
    decision = [s for s in outcome["steps"] if s["hook"] == "routing"]
    assert [s["chain"] for s in decision] == [hook.lower()], outcome["steps"]
    assert not any("routing not evaluated" in a for a in t["assumptions"])


def test_without_the_routing_the_trace_says_forwarding_was_not_evaluated(node):
    rules_only = node.files[:1]
    t = trace(rules_only, CLIENT, "c0", f"{NODE_IP}:22")
    assert any("routing not evaluated" in a for a in t["assumptions"]), t["assumptions"]
