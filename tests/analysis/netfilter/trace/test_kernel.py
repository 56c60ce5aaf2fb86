"""`trace` against the kernel: real rule sets in a lab namespace, real connections, then our trace on the
rules dumped back from that namespace must predict where the kernel delivered each packet.

Rule sets: Istio sidecar (default and DNS capture), Linkerd proxy-init, a kube-proxy Service with three
endpoints (statistic), a Calico-like policy that drops, each loaded with iptables-legacy-restore AND
iptables-nft-restore; and a kube-proxy nftables-mode Service (numgen vmap) loaded with nft -f.
"""
from __future__ import annotations

import collections
import json
import math
import os
import sys

import pytest

from tests.helpers.netns import NetLab, requires_netns, requires_tools, sweep_stale
from tests.helpers.nflab import AGENT, ENDPOINTS, PEER_IP, POD_IP, RulesLab, assert_trace_matches_kernel
from tests.helpers.paths import FIXTURES

pytestmark = [requires_netns, requires_tools("iptables-legacy-restore", "iptables-nft-restore", "nft", "setpriv")]
BACKENDS = ["legacy", "nft"]

# Fixture 1b of research/anchors-netfilter.md (a real iptables-legacy-save of a default Istio sidecar).
ISTIO_DEFAULT = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:ISTIO_INBOUND - [0:0]
:ISTIO_IN_REDIRECT - [0:0]
:ISTIO_OUTPUT - [0:0]
:ISTIO_REDIRECT - [0:0]
-A PREROUTING -p tcp -j ISTIO_INBOUND
-A OUTPUT -j ISTIO_OUTPUT
-A ISTIO_INBOUND -p tcp -m tcp --dport 15008 -j RETURN
-A ISTIO_INBOUND -p tcp -m tcp --dport 15090 -j RETURN
-A ISTIO_INBOUND -p tcp -m tcp --dport 15021 -j RETURN
-A ISTIO_INBOUND -p tcp -m tcp --dport 15020 -j RETURN
-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT
-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 15008 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
COMMIT
"""

# Fixture 1c (istio dns-uid-gid.golden, restore-input form), the nameserver 127.0.0.53 rewritten to the lab
# peer's address, plus the catch-all jump a real sidecar has.
ISTIO_DNS = """* nat
-N ISTIO_INBOUND
-N ISTIO_REDIRECT
-N ISTIO_IN_REDIRECT
-N ISTIO_OUTPUT
-N ISTIO_OUTPUT_DNS
-A ISTIO_INBOUND -p tcp --dport 15008 -j RETURN
-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A OUTPUT -j ISTIO_OUTPUT
-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN
-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp -m multiport ! --dports 53,15008 -m owner --uid-owner 3 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -p tcp ! --dport 53 -m owner ! --uid-owner 3 -j RETURN
-A ISTIO_OUTPUT -m owner --uid-owner 3 -j RETURN
-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp -m multiport ! --dports 53,15008 -m owner --uid-owner 4 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -p tcp ! --dport 53 -m owner ! --uid-owner 4 -j RETURN
-A ISTIO_OUTPUT -m owner --uid-owner 4 -j RETURN
-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --gid-owner 1 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -p tcp ! --dport 53 -m owner ! --gid-owner 1 -j RETURN
-A ISTIO_OUTPUT -m owner --gid-owner 1 -j RETURN
-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --gid-owner 2 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -p tcp ! --dport 53 -m owner ! --gid-owner 2 -j RETURN
-A ISTIO_OUTPUT -m owner --gid-owner 2 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_OUTPUT_DNS
-A ISTIO_OUTPUT_DNS -p tcp --dport 53 -d 127.0.0.53/32 -j REDIRECT --to-ports 15053
-A ISTIO_OUTPUT_DNS -p udp --dport 53 -d 127.0.0.53/32 -j REDIRECT --to-port 15053
-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
COMMIT
""".replace("127.0.0.53/32", f"{PEER_IP}/32")

# Fixture 2b (a real Linkerd 2.7.1 pod, with the since-removed loopback rule).
LINKERD = """*nat
-A PREROUTING -m comment --comment "proxy-init/install-proxy-init-prerouting/1590476641" -j PROXY_INIT_REDIRECT
-A OUTPUT -m comment --comment "proxy-init/install-proxy-init-output/1590476641" -j PROXY_INIT_OUTPUT
-A PROXY_INIT_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --uid-owner 2102 -m comment --comment "proxy-init/redirect-non-loopback-local-traffic/1590476641" -j PROXY_INIT_REDIRECT
-A PROXY_INIT_OUTPUT -m owner --uid-owner 2102 -m comment --comment "proxy-init/ignore-proxy-user-id/1590476641" -j RETURN
-A PROXY_INIT_OUTPUT -o lo -m comment --comment "proxy-init/ignore-loopback/1590476641" -j RETURN
-A PROXY_INIT_OUTPUT -p tcp -m comment --comment "proxy-init/redirect-all-outgoing-to-proxy-port/1590476641" -j REDIRECT --to-ports 4140
-A PROXY_INIT_REDIRECT -p tcp -m multiport --dports 4190,4191 -m comment --comment "proxy-init/ignore-port-4190,4191/1590476641" -j RETURN
-A PROXY_INIT_REDIRECT -p tcp -m comment --comment "proxy-init/redirect-all-incoming-to-proxy-port/1590476641" -j REDIRECT --to-ports 4143
COMMIT
""".replace("*nat\n", "*nat\n:PROXY_INIT_OUTPUT - [0:0]\n:PROXY_INIT_REDIRECT - [0:0]\n")

# kube-proxy iptables mode, one Service (172.30.0.41:80) with three endpoints, written the way proxier.go
# writes it (fixture 3a layout), plus a no-endpoint Service rejected in filter.
KUBE_PROXY = """*nat
:KUBE-SERVICES - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
:KUBE-SEP-A - [0:0]
:KUBE-SEP-B - [0:0]
:KUBE-SEP-C - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> EP1:8080" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-A
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> EP2:8080" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-B
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> EP3:8080" -j KUBE-SEP-C
-A KUBE-SEP-A -m comment --comment ns1/svc1:p80 -s EP1 -j KUBE-MARK-MASQ
-A KUBE-SEP-A -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination EP1:8080
-A KUBE-SEP-B -m comment --comment ns1/svc1:p80 -s EP2 -j KUBE-MARK-MASQ
-A KUBE-SEP-B -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination EP2:8080
-A KUBE-SEP-C -m comment --comment ns1/svc1:p80 -s EP3 -j KUBE-MARK-MASQ
-A KUBE-SEP-C -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination EP3:8080
COMMIT
*filter
:KUBE-SERVICES - [0:0]
-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A KUBE-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.46 --dport 80 -j REJECT
COMMIT
""".replace("EP1", ENDPOINTS[0]).replace("EP2", ENDPOINTS[1]).replace("EP3", ENDPOINTS[2])

# A Calico-like workload policy (felix chain layout, fixture §4): allow TCP 8080 in, drop the rest.
CALICO = """*filter
:cali-INPUT - [0:0]
:cali-tw-eth0 - [0:0]
:cali-pi-_allow-web - [0:0]
-A INPUT -m comment --comment "cali:Cz_u1IQiXIMmKD4c" -j cali-INPUT
-A cali-INPUT -i eth0 -m comment --comment "cali:hmm0HbYp6BeN6L7z" -g cali-tw-eth0
-A cali-tw-eth0 -m comment --comment "cali:SElIeFT_TuDlXqwG" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A cali-tw-eth0 -m comment --comment "cali:hLIGQ7Yq-h6QiMAU" -m conntrack --ctstate INVALID -j DROP
-A cali-tw-eth0 -m comment --comment "cali:f-oplNjx0zZFhKEE" -j MARK --set-xmark 0x0/0x10000
-A cali-tw-eth0 -m comment --comment "cali:4maW0RA5gdKyBjGZ" -j cali-pi-_allow-web
-A cali-tw-eth0 -m comment --comment "cali:AWrwzwXhvm39hdGT" -m comment --comment "Return if policy accepted" -m mark --mark 0x10000/0x10000 -j RETURN
-A cali-tw-eth0 -m comment --comment "cali:ZMNXlx-shVA2lOFu" -m comment --comment "Drop if no policies passed packet" -j DROP
-A cali-pi-_allow-web -p tcp -m comment --comment "cali:bVSwbnML1hdeF8rP" -m multiport --dports 8080 -j MARK --set-xmark 0x10000/0x10000
COMMIT
"""

# kube-proxy nftables mode (fixture 3d layout): service-ips vmap -> service chain -> numgen vmap -> endpoints.
KUBE_PROXY_NFT = """table ip kube-proxy {
  comment "rules for kube-proxy"
  map service-ips {
    type ipv4_addr . inet_proto . inet_service : verdict
    elements = { 172.30.0.44 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
  }
  set cluster-ips { type ipv4_addr ; elements = { 172.30.0.44, 172.30.0.46 } ; }
  map no-endpoint-services {
    type ipv4_addr . inet_proto . inet_service : verdict
    elements = { 172.30.0.46 . tcp . 80 comment "ns6/svc6:p80" : goto reject-chain }
  }
  chain reject-chain { reject ; }
  chain filter-output { type filter hook output priority 0 ; ct state new jump service-endpoints-check ; }
  chain service-endpoints-check { ip daddr . meta l4proto . th dport vmap @no-endpoint-services ; }
  chain nat-output { type nat hook output priority -100 ; jump services ; }
  chain nat-postrouting { type nat hook postrouting priority 100 ; jump masquerading ; }
  chain mark-for-masquerade { mark set mark or 0x4000 ; }
  chain masquerading { mark and 0x4000 == 0 return ; mark set mark xor 0x4000 ; masquerade fully-random ; }
  chain services { ip daddr . meta l4proto . th dport vmap @service-ips ; }
  chain service-ULMVA6XW-ns1/svc1/tcp/p80 {
    ip daddr 172.30.0.44 tcp dport 80 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    numgen random mod 3 vmap { 0 : goto endpoint-A, 1 : goto endpoint-B, 2 : goto endpoint-C }
  }
  chain endpoint-A { ip saddr EP1 jump mark-for-masquerade ; meta l4proto tcp dnat to EP1:8080 ; }
  chain endpoint-B { ip saddr EP2 jump mark-for-masquerade ; meta l4proto tcp dnat to EP2:8080 ; }
  chain endpoint-C { ip saddr EP3 jump mark-for-masquerade ; meta l4proto tcp dnat to EP3:8080 ; }
}
""".replace("EP1", ENDPOINTS[0]).replace("EP2", ENDPOINTS[1]).replace("EP3", ENDPOINTS[2])


@pytest.fixture
def rules_lab(request, tmp_path):
    sweep_stale("C")
    with NetLab("C") as lab:
        yield RulesLab(lab, request.param, str(tmp_path))


def _check(lab: RulesLab, dump: str, result: dict, *trace_args: str) -> dict:
    t = lab.trace(dump, "--pod-ip", POD_IP, *trace_args)
    assert_trace_matches_kernel(t, result)
    return t


@pytest.mark.parametrize("rules_lab", BACKENDS, indirect=True)
def test_istio_default_sidecar(rules_lab):
    lab = rules_lab
    lab.load(ISTIO_DEFAULT)
    lab.serve(lab.pod, "pod", tcp=[15001, 15006, 15021, 8080])
    lab.serve(lab.peer, "peer", tcp=[80])
    dump = lab.dump()
    cases = [  # (who connects where, trace flags, what the kernel must show)
        ((lab.pod, "tcp", PEER_IP, 80, 1000), ("--to", f"{PEER_IP}:80", "--uid", "1000", "--gid", "1000"),
         ("pod", "127.0.0.1:15001", f"{PEER_IP}:80")),
        ((lab.pod, "tcp", PEER_IP, 80, 1337), ("--to", f"{PEER_IP}:80", "--uid", "1337", "--gid", "1337"),
         ("peer", f"{PEER_IP}:80", None)),
        ((lab.pod, "tcp", "127.0.0.1", 8080, 1000), ("--to", "127.0.0.1:8080", "--uid", "1000", "--gid", "1000"),
         ("pod", "127.0.0.1:8080", None)),
        ((lab.pod, "tcp", POD_IP, 8080, 1337), ("--to", f"{POD_IP}:8080", "--uid", "1337", "--gid", "1337"),
         ("pod", "127.0.0.1:15006", f"{POD_IP}:8080")),
        ((lab.pod, "tcp", POD_IP, 8080, 1000), ("--to", f"{POD_IP}:8080", "--uid", "1000", "--gid", "1000"),
         ("pod", f"{POD_IP}:8080", None)),
        ((lab.peer, "tcp", POD_IP, 8080, None), ("--inbound", "--from", PEER_IP, "--to", f"{POD_IP}:8080"),
         ("pod", f"{POD_IP}:15006", f"{POD_IP}:8080")),
        ((lab.peer, "tcp", POD_IP, 15021, None), ("--inbound", "--from", PEER_IP, "--to", f"{POD_IP}:15021"),
         ("pod", f"{POD_IP}:15021", None)),
    ]
    for (ns, proto, ip, port, uid), args, (who, local, orig) in cases:
        [result] = lab.connect(ns, proto, ip, port, uid=uid)
        assert result["result"] == "ok", (args, result)
        reply = result["reply"]
        # the kernel's facts, stated once so a broken lab cannot make both sides agree on nonsense
        assert (reply["name"], reply["local"]) == (who, local), (args, reply)
        if orig:
            assert reply["orig_dst"] == orig, (args, reply)
        _check(lab, dump, result, *args)


@pytest.mark.parametrize("rules_lab", BACKENDS, indirect=True)
def test_istio_dns_capture(rules_lab):
    lab = rules_lab
    lab.load(ISTIO_DNS)
    lab.serve(lab.pod, "pod", tcp=[15001, 15053], udp=[15053])
    lab.serve(lab.peer, "peer", tcp=[53, 80], udp=[53])
    dump = lab.dump()
    cases = [
        ("udp", 53, 1000, ("pod", "127.0.0.1:15053")),
        ("udp", 53, 3, ("peer", f"{PEER_IP}:53")),
        ("tcp", 53, 1000, ("pod", "127.0.0.1:15053")),
        ("tcp", 80, 1000, ("pod", "127.0.0.1:15001")),
        ("tcp", 80, 4, ("peer", f"{PEER_IP}:80")),
    ]
    for proto, port, uid, (who, local) in cases:
        [result] = lab.connect(lab.pod, proto, PEER_IP, port, uid=uid)
        assert result["result"] == "ok", (proto, port, uid, result)
        assert (result["reply"]["name"], result["reply"]["local"]) == (who, local), result
        _check(lab, dump, result, "--proto", proto, "--to", f"{PEER_IP}:{port}", "--uid", str(uid), "--gid",
               str(uid))


@pytest.mark.parametrize("rules_lab", BACKENDS, indirect=True)
def test_linkerd_proxy_init(rules_lab):
    lab = rules_lab
    lab.load(LINKERD)
    lab.serve(lab.pod, "pod", tcp=[4140, 4143, 4191, 8080])
    lab.serve(lab.peer, "peer", tcp=[80])
    dump = lab.dump()
    cases = [
        ((lab.pod, PEER_IP, 80, 1000), ("--to", f"{PEER_IP}:80", "--uid", "1000", "--gid", "1000"),
         ("pod", "127.0.0.1:4140")),
        ((lab.pod, PEER_IP, 80, 2102), ("--to", f"{PEER_IP}:80", "--uid", "2102", "--gid", "2102"),
         ("peer", f"{PEER_IP}:80")),
        ((lab.pod, POD_IP, 8080, 2102), ("--to", f"{POD_IP}:8080", "--uid", "2102", "--gid", "2102"),
         ("pod", "127.0.0.1:4143")),
        ((lab.pod, POD_IP, 8080, 1000), ("--to", f"{POD_IP}:8080", "--uid", "1000", "--gid", "1000"),
         ("pod", f"{POD_IP}:8080")),
        ((lab.peer, POD_IP, 8080, None), ("--inbound", "--from", PEER_IP, "--to", f"{POD_IP}:8080"),
         ("pod", f"{POD_IP}:4143")),
        ((lab.peer, POD_IP, 4191, None), ("--inbound", "--from", PEER_IP, "--to", f"{POD_IP}:4191"),
         ("pod", f"{POD_IP}:4191")),
    ]
    for (ns, ip, port, uid), args, (who, local) in cases:
        [result] = lab.connect(ns, "tcp", ip, port, uid=uid)
        assert result["result"] == "ok", (args, result)
        assert (result["reply"]["name"], result["reply"]["local"]) == (who, local), (args, result)
        _check(lab, dump, result, *args)


def _assert_distribution(trace: dict, results: list) -> None:
    """Every connection landed on an endpoint the trace lists, every listed endpoint was hit, and each count is
    within 6 standard deviations of n*p (a false failure has probability below 1e-8)."""
    predicted = {o["destination"]: o["probability"] for o in trace["outcomes"]}
    assert all(o["verdict"] == "DNAT" for o in trace["outcomes"]), trace["outcomes"]
    assert all(r["result"] == "ok" for r in results), [r for r in results if r["result"] != "ok"][:3]
    seen = collections.Counter(r["reply"]["local"] for r in results)
    assert set(seen) == set(predicted), (seen, predicted)
    n = len(results)
    for dest, p in predicted.items():
        sigma = math.sqrt(n * p * (1 - p))
        assert abs(seen[dest] - n * p) <= 6 * sigma, (dest, seen[dest], n * p, sigma)


@pytest.mark.parametrize("rules_lab", BACKENDS, indirect=True)
def test_kube_proxy_service_three_endpoints(rules_lab):
    lab = rules_lab
    lab.load(KUBE_PROXY)
    lab.serve(lab.peer, "peer", tcp=[8080])
    dump = lab.dump()
    t = lab.trace(dump, "--pod-ip", POD_IP, "--to", "172.30.0.41:80")
    expected = {f"{ep}:8080" for ep in ENDPOINTS}
    assert {o["destination"] for o in t["outcomes"]} == expected
    assert sum(o["probability"] for o in t["outcomes"]) == pytest.approx(1.0, abs=1e-6)
    results = lab.connect(lab.pod, "tcp", "172.30.0.41", 80, count=300)
    _assert_distribution(t, results)
    # no endpoints: the filter table REJECTs (connection refused, not a timeout)
    [result] = lab.connect(lab.pod, "tcp", "172.30.0.46", 80, timeout=2.0)
    assert result["result"] == "refused", result
    _check(lab, dump, result, "--to", "172.30.0.46:80")


@pytest.mark.parametrize("rules_lab", BACKENDS, indirect=True)
def test_calico_like_policy_drops(rules_lab):
    lab = rules_lab
    lab.load(CALICO)
    lab.serve(lab.pod, "pod", tcp=[8080, 9090])
    dump = lab.dump()
    [allowed] = lab.connect(lab.peer, "tcp", POD_IP, 8080)
    assert allowed["result"] == "ok" and allowed["reply"]["local"] == f"{POD_IP}:8080", allowed
    _check(lab, dump, allowed, "--inbound", "--from", PEER_IP, "--to", f"{POD_IP}:8080")
    [dropped] = lab.connect(lab.peer, "tcp", POD_IP, 9090, timeout=1.0)
    assert dropped["result"] == "timeout", dropped  # the SYN was dropped: no RST, no answer
    t = _check(lab, dump, dropped, "--inbound", "--from", PEER_IP, "--to", f"{POD_IP}:9090")
    assert any(s["chain"] == "cali-tw-eth0" and s["matched"] and "DROP" in s["note"] for s in t["steps"]), t["steps"]


@pytest.mark.parametrize("rules_lab", ["nftables"], indirect=True)
def test_kube_proxy_nftables_mode(rules_lab):
    lab = rules_lab
    lab.load(KUBE_PROXY_NFT)
    lab.serve(lab.peer, "peer", tcp=[8080])
    dump = lab.dump()
    t = lab.trace(dump, "--pod-ip", POD_IP, "--to", "172.30.0.44:80")
    assert {o["destination"] for o in t["outcomes"]} == {f"{ep}:8080" for ep in ENDPOINTS}
    for o in t["outcomes"]:
        assert o["probability"] == pytest.approx(1 / 3, abs=1e-6)
    results = lab.connect(lab.pod, "tcp", "172.30.0.44", 80, count=300)
    _assert_distribution(t, results)
    [result] = lab.connect(lab.pod, "tcp", "172.30.0.46", 80, timeout=2.0)
    assert result["result"] == "refused", result
    _check(lab, dump, result, "--to", "172.30.0.46:80")


def _fixture(name: str) -> str:

    with open(str(FIXTURES / "netfilter" / name)) as f:
        return f.read()


@pytest.mark.parametrize("rules_lab", ["nftables"], indirect=True)
def test_istio_native_nftables(rules_lab):
    """Fixture 1e (istio-nftables golden, inet family, skuid/oifname matches), loaded with nft -f as is."""
    lab = rules_lab
    lab.load(_fixture("istio-nftables-inbound-ports-wildcard.nft"))
    lab.serve(lab.pod, "pod", tcp=[15001, 15006, 15008, 8080])
    lab.serve(lab.peer, "peer", tcp=[80])
    dump = lab.dump()
    cases = [
        ((lab.pod, PEER_IP, 80, 1000), ("--to", f"{PEER_IP}:80", "--uid", "1000", "--gid", "1000"),
         ("peer", f"{PEER_IP}:80")),  # this golden's config has no outbound catch-all
        ((lab.pod, POD_IP, 8080, 1337), ("--to", f"{POD_IP}:8080", "--uid", "1337", "--gid", "1337"),
         ("pod", "127.0.0.1:15006")),
        ((lab.pod, POD_IP, 8080, 1000), ("--to", f"{POD_IP}:8080", "--uid", "1000", "--gid", "1000"),
         ("pod", f"{POD_IP}:8080")),
        ((lab.peer, POD_IP, 8080, None), ("--inbound", "--from", PEER_IP, "--to", f"{POD_IP}:8080"),
         ("pod", f"{POD_IP}:15006")),
        ((lab.peer, POD_IP, 15008, None), ("--inbound", "--from", PEER_IP, "--to", f"{POD_IP}:15008"),
         ("pod", f"{POD_IP}:15008")),
    ]
    for (ns, ip, port, uid), args, (who, local) in cases:
        [result] = lab.connect(ns, "tcp", ip, port, uid=uid)
        assert result["result"] == "ok", (args, result)
        assert (result["reply"]["name"], result["reply"]["local"]) == (who, local), (args, result)
        _check(lab, dump, result, *args)


@pytest.mark.parametrize("rules_lab", BACKENDS, indirect=True)
def test_istio_tproxy_inbound(rules_lab):
    """Fixture 1d (TPROXY inbound golden) with the policy routing istio-iptables adds: marked packets are
    delivered locally, to the transparent socket on 15006, their destination address unchanged."""
    lab = rules_lab
    lab.load(_fixture("istio-inbound-ports-tproxy.golden.txt"))
    lab.pod.run(["ip", "rule", "add", "fwmark", "1337", "lookup", "133"])
    lab.pod.run(["ip", "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "133"])
    lab.serve(lab.pod, "proxy", tcp=[15006], transparent=True)
    lab.serve(lab.pod, "app", tcp=[31000, 8080])
    dump = lab.dump()
    [result] = lab.connect(lab.peer, "tcp", POD_IP, 31000)
    assert result["result"] == "ok", result
    assert (result["reply"]["name"], result["reply"]["listen_port"], result["reply"]["local"]) == \
        ("proxy", 15006, f"{POD_IP}:31000")
    t = _check(lab, dump, result, "--inbound", "--from", PEER_IP, "--to", f"{POD_IP}:31000")
    assert t["outcomes"][0]["verdict"] == "TPROXY" and t["outcomes"][0]["mark"] == "0x539"
    [direct] = lab.connect(lab.peer, "tcp", POD_IP, 8080)
    assert direct["result"] == "ok" and direct["reply"]["name"] == "app", direct
    _check(lab, dump, direct, "--inbound", "--from", PEER_IP, "--to", f"{POD_IP}:8080")


@pytest.mark.parametrize("rules_lab", ["legacy"], indirect=True)
def test_rules_in_both_backends_both_apply(rules_lab):
    """Legacy nat REDIRECTs port 80, iptables-nft filter DROPs port 81: the kernel runs both, each save tool
    shows only its own, and the trace over both dumps predicts both."""
    lab = rules_lab
    lab.pod.run(["iptables-legacy-restore"], input="*nat\n-A OUTPUT -p tcp --dport 80 -j REDIRECT --to-ports 15001\n"
                                                   "COMMIT\n")
    lab.pod.run(["iptables-nft-restore"], input="*filter\n-A OUTPUT -p tcp --dport 81 -j DROP\nCOMMIT\n")
    lab.serve(lab.pod, "pod", tcp=[15001])
    lab.serve(lab.peer, "peer", tcp=[80, 81, 82])
    legacy, nft = lab.dump("legacy"), lab.dump("nft")
    for port, timeout in ((80, 2.0), (81, 1.0), (82, 2.0)):
        [result] = lab.connect(lab.pod, "tcp", PEER_IP, port, uid=1000, timeout=timeout)
        t = lab.trace(legacy, "--from-file", nft, "--pod-ip", POD_IP, "--to", f"{PEER_IP}:{port}", "--uid", "1000")
        assert_trace_matches_kernel(t, result)
    assert [result["result"] for result in lab.connect(lab.pod, "tcp", PEER_IP, 81, timeout=1.0)] == ["timeout"]


@pytest.mark.parametrize("rules_lab", BACKENDS, indirect=True)
def test_istio_default_sidecar_ipv6(rules_lab):
    """The IPv6 rules istio-iptables writes (::6 and ::1 for 127.0.0.6 and 127.0.0.1), with ip6tables."""
    from tests.helpers.nflab import PEER_IP6, POD_IP6

    lab = rules_lab
    rules = ISTIO_DEFAULT.replace("127.0.0.6/32", "::6/128").replace("127.0.0.1/32", "::1/128")
    lab.load(rules, ipv6=True)
    lab.serve(lab.pod, "pod", tcp=[15001, 15006, 8080])
    lab.serve(lab.peer, "peer", tcp=[80])
    dump = lab.dump(ipv6=True)
    cases = [
        ((lab.pod, PEER_IP6, 80, 1000), ("--to", f"[{PEER_IP6}]:80", "--uid", "1000", "--gid", "1000"),
         ("pod", "[::1]:15001", f"[{PEER_IP6}]:80")),
        ((lab.pod, PEER_IP6, 80, 1337), ("--to", f"[{PEER_IP6}]:80", "--uid", "1337", "--gid", "1337"),
         ("peer", f"[{PEER_IP6}]:80", None)),
        ((lab.peer, POD_IP6, 8080, None), ("--inbound", "--from", PEER_IP6, "--to", f"[{POD_IP6}]:8080"),
         ("pod", f"[{POD_IP6}]:15006", f"[{POD_IP6}]:8080")),
    ]
    for (ns, ip, port, uid), args, (who, local, orig) in cases:
        [result] = lab.connect(ns, "tcp", ip, port, uid=uid)
        assert result["result"] == "ok", (args, result)
        assert (result["reply"]["name"], result["reply"]["local"]) == (who, local), (args, result)
        if orig:
            assert result["reply"]["orig_dst"] == orig, result
        t = lab.trace(dump, "--pod-ip", POD_IP6, *args)
        assert_trace_matches_kernel(t, result)


@pytest.mark.parametrize("rules_lab", BACKENDS, indirect=True)
def test_istio_ambient_in_pod_marks(rules_lab):
    """Fixture 1f (ambient ztunnel in-pod rules): everything is redirected except what ztunnel's own sockets mark
    0x539/0xfff (SO_MARK), which trace models with --mark."""
    lab = rules_lab
    lab.load(_fixture("istio-ambient-default.golden.txt"))
    lab.serve(lab.pod, "pod", tcp=[15001, 15006, 15053, 8080], udp=[15053])
    lab.serve(lab.peer, "peer", tcp=[80], udp=[53])
    dump = lab.dump()
    cases = [  # (namespace, proto, ip, port, SO_MARK, trace flags, who answers and where)
        (lab.pod, "tcp", PEER_IP, 80, 0, ("--to", f"{PEER_IP}:80"), ("pod", "127.0.0.1:15001")),
        (lab.pod, "tcp", PEER_IP, 80, 0x539, ("--to", f"{PEER_IP}:80", "--mark", "0x539"), ("peer", f"{PEER_IP}:80")),
        (lab.pod, "udp", PEER_IP, 53, 0, ("--proto", "udp", "--to", f"{PEER_IP}:53"), ("pod", "127.0.0.1:15053")),
        (lab.pod, "udp", PEER_IP, 53, 0xa539, ("--proto", "udp", "--to", f"{PEER_IP}:53", "--mark", "0xa539"),
         ("peer", f"{PEER_IP}:53")),  # only the low 12 bits are compared (mask 0xfff)
        (lab.peer, "tcp", POD_IP, 8080, 0, ("--inbound", "--from", PEER_IP, "--to", f"{POD_IP}:8080"),
         ("pod", f"{POD_IP}:15006")),
    ]
    for ns, proto, ip, port, mark, args, (who, local) in cases:
        [result] = lab.connect(ns, proto, ip, port, mark=mark)
        assert result["result"] == "ok", (args, result)
        assert (result["reply"]["name"], result["reply"]["local"]) == (who, local), (args, result)
        extra = () if "--inbound" in args else ("--uid", "0", "--gid", "0")
        _check(lab, dump, result, *args, *extra)


@pytest.mark.parametrize("rules_lab", BACKENDS, indirect=True)
def test_masquerade_through_lo_takes_the_first_global_address(rules_lab):
    """Docker's `-s 172.17.0.0/16 ! -o docker0 -j MASQUERADE` on a connection from the bridge's own address to
    another local address: it leaves through lo, where MASQUERADE takes the host's first global address (lo has
    only host-scope ones), not 127.0.0.1; trace says the same from --pod-ip and from an `ip -j addr` dump."""
    lab = rules_lab
    side = lab.lab.ns("side")
    lab.lab.link(lab.pod, "docker0", "172.17.0.1/16", side, "eth0", "172.17.0.2/16")
    lab.load("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n"
             "-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE\nCOMMIT\n")
    lab.serve(lab.pod, "pod", tcp=[8080])
    dump = lab.dump()
    out = lab.pod.run([sys.executable, AGENT, "probes"], input=json.dumps(
        [{"proto": "tcp", "ip": POD_IP, "port": 8080, "src": "172.17.0.1"}])).stdout
    [[result]] = json.loads(out)
    assert result["result"] == "ok", result
    assert result["reply"]["peer"].rsplit(":", 1)[0] == POD_IP, result  # the kernel's fact
    addr = os.path.join(lab.workdir, "addr.json")
    with open(addr, "w") as f:
        f.write(lab.pod.run(["ip", "-j", "addr"]).stdout)
    route = os.path.join(lab.workdir, "route.json")
    with open(route, "w") as f:
        f.write(lab.pod.run(["ip", "-j", "route", "show", "table", "all"]).stdout)
    for extra in (("--pod-ip", POD_IP, "--pod-ip", "172.17.0.1"), ("--from-file", addr, "--from-file", route)):
        t = lab.trace(dump, "--from", "172.17.0.1", "--to", f"{POD_IP}:8080", *extra)
        assert_trace_matches_kernel(t, result)
        assert t["outcomes"][0]["source"].rsplit(":", 1)[0] == POD_IP, t["outcomes"]
