"""`trace` on dumps, checked against expectations written by others: kube-proxy's own TestTracePacket
expectations for fixture 3a (kubernetes/kubernetes pkg/proxy/iptables/proxier_test.go, quoted in the research
file), and the iptables-extensions(8) definitions of the targets. The kernel-judged scenarios are in
test_trace_kernel.py."""
from __future__ import annotations

import os

import pytest

from kubectl_whose.analysis.netfilter import load_dumps
from kubectl_whose.analysis.netfilter.trace.packet import TraceQuery
from kubectl_whose.analysis.netfilter.trace import trace
from tests.helpers.paths import FIXTURES as FIXTURE_ROOT

FIXTURES = str(FIXTURE_ROOT / "netfilter")
NODE_IP = "192.168.0.2"  # the node address in kube-proxy's test


def _load(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return load_dumps(f.read(), name)


def _ends(result):
    return sorted((o.verdict, o.destination) for o in result.outcomes)


@pytest.mark.parametrize("src, dst, port, ends, masq", [
    ("10.0.0.2", "10.0.0.3", 80, [("ACCEPT", "10.0.0.3:80")], False),  # "no match"
    ("10.0.0.2", "172.30.0.41", 80, [("DNAT", "10.180.0.1:80")], False),
    ("10.0.0.2", "172.30.0.44", 80, [("DNAT", "10.180.0.4:80"), ("DNAT", "10.180.0.5:80")], False),
    (NODE_IP, "192.168.99.22", 80, [("DNAT", "10.180.0.2:80")], True),  # node IP -> external IP: masqueraded
], ids=["no-match", "cluster-ip", "two-endpoints", "node-to-external-ip"])
def test_kube_proxy_expected_traces(src, dst, port, ends, masq):
    """Packets arriving at the node (PREROUTING), as kube-proxy's test traces them."""
    rs = _load("kube-proxy-tracepacket-nat.txt")
    iface = "lo" if src == NODE_IP else "eth0"
    r = trace(rs, TraceQuery(dst, port, src=src, inbound=True, pod_ips=(NODE_IP,), iface=iface))
    assert _ends(r) == ends
    for o in r.outcomes:
        assert any(n.startswith("MASQUERADE") for n in o.nat) == masq, o.nat
        assert (o.mark & 0x4000 == 0)  # KUBE-POSTROUTING clears the masquerade bit it acted on
    if len(ends) == 2:
        assert [o.probability for o in r.outcomes] == [0.5, 0.5]


def _rules(text: str):
    return load_dumps(text, "t")


def test_goto_returns_to_the_caller_of_the_chain_that_jumped():
    rs = _rules("*filter\n:A - [0:0]\n:B - [0:0]\n-A INPUT -j A\n-A INPUT -j DROP\n-A A -g B\n-A A -j ACCEPT\n"
                "-A B -j RETURN\nCOMMIT\n")
    r = trace(rs, TraceQuery("10.0.0.2", 80, src="10.0.0.1", inbound=True))
    assert r.verdict == "DROP"  # RETURN from B goes back to INPUT (A's caller), not to A's next rule
    assert [(s.chain, s.matched) for s in r.steps] == [("INPUT", True), ("A", True), ("B", True), ("INPUT", True)]


@pytest.mark.parametrize("rule, mark", [
    ("-j MARK --set-xmark 0x10/0xf0", 0x11),  # (mark & ~mask) ^ value, iptables-extensions(8)
    ("-j MARK --or-mark 0x4000", 0x4001),
    ("-j MARK --and-mark 0x0", 0x0),
    ("-j MARK --xor-mark 0x1", 0x0),
    ("-j MARK --set-mark 0x5", 0x5),
])
def test_mark_arithmetic(rule, mark):
    rs = _rules(f"*mangle\n-A OUTPUT {rule}\nCOMMIT\n")
    r = trace(rs, TraceQuery("10.0.0.2", 80, src="10.0.0.1", uid=0, gid=0, mark=0x1))
    assert r.outcomes[0].mark == mark


@pytest.mark.parametrize("match, iface, expected", [
    ("-i eth+", "eth0", "DROP"), ("-i eth+", "lo", "ACCEPT"), ("! -i lo", "eth1", "DROP"), ("-i cali123", "cali12",
                                                                                            "ACCEPT"),
])
def test_interface_wildcards(match, iface, expected):
    rs = _rules(f"*filter\n-A INPUT {match} -j DROP\nCOMMIT\n")
    assert trace(rs, TraceQuery("10.0.0.2", 80, src="10.0.0.1", inbound=True, iface=iface)).verdict == expected


def test_statistic_branches_multiply_and_nth_mode_is_named():
    rs = _rules("*nat\n:S - [0:0]\n-A OUTPUT -j S\n"
                "-A S -m statistic --mode random --probability 0.25 -j DNAT --to-destination 10.9.0.1:80\n"
                "-A S -m statistic --mode nth --every 3 --packet 0 -j DNAT --to-destination 10.9.0.2:80\n"
                "-A S -j DNAT --to-destination 10.9.0.3:80\nCOMMIT\n")
    r = trace(rs, TraceQuery("10.96.0.1", 80, src="10.0.0.1"))
    got = {o.destination: round(o.probability, 6) for o in r.outcomes}
    assert got == {"10.9.0.1:80": 0.25, "10.9.0.2:80": 0.25, "10.9.0.3:80": 0.5}
    assert any("--mode nth --every 3" in a for a in r.assumptions)


def test_addrtype_local_uses_the_pod_addresses_or_says_it_does_not_know():
    rs = _rules("*nat\n:N - [0:0]\n-A OUTPUT -m addrtype --dst-type LOCAL -j N\n"
                "-A N -p tcp -j REDIRECT --to-ports 9\nCOMMIT\n")
    r = trace(rs, TraceQuery("10.1.0.5", 80, pod_ips=("10.1.0.5",), uid=0, gid=0))
    assert _ends(r) == [("REDIRECT", "127.0.0.1:9")]
    r = trace(rs, TraceQuery("10.1.0.5", 80, uid=0, gid=0))
    assert _ends(r) == [("ACCEPT", "10.1.0.5:80")]
    assert "pod addresses unknown (pass --pod-ip); LOCAL means loopback" in r.assumptions


def test_snat_and_log_and_ct_targets():
    rs = _rules("*raw\n-A OUTPUT -p udp --dport 53 -j CT --zone 2\nCOMMIT\n"
                "*nat\n-A POSTROUTING -j LOG --log-prefix x\n-A POSTROUTING -j SNAT --to-source 10.5.0.1\nCOMMIT\n")
    r = trace(rs, TraceQuery("10.96.0.10", 53, proto="udp", src="10.0.0.1", uid=0, gid=0))
    [o] = r.outcomes
    assert (o.verdict, o.destination, o.source) == ("SNAT", "10.96.0.10:53", "10.5.0.1")
    notes = [s.note for s in o.steps if s.matched]
    assert "conntrack zone 2" in notes and "LOG: logged, continues" in notes


def test_nat_is_skipped_for_established_and_untracked():
    rs = _rules("*raw\n-A OUTPUT -p tcp --dport 81 -j CT --notrack\nCOMMIT\n"
                "*nat\n-A OUTPUT -p tcp -j REDIRECT --to-ports 15001\nCOMMIT\n")
    assert _ends(trace(rs, TraceQuery("10.0.0.9", 80, src="10.0.0.1"))) == [("REDIRECT", "127.0.0.1:15001")]
    assert _ends(trace(rs, TraceQuery("10.0.0.9", 81, src="10.0.0.1"))) == [("ACCEPT", "10.0.0.9:81")]
    r = trace(rs, TraceQuery("10.0.0.9", 80, src="10.0.0.1", ctstate="ESTABLISHED"))
    assert _ends(r) == [("ACCEPT", "10.0.0.9:80")]
    assert any(s.rule == "(nat skipped)" for s in r.steps)


def test_docker_chains_are_recognised():
    from kubectl_whose.analysis.netfilter.recognize import recognize

    rs = _rules("*filter\n:DOCKER - [0:0]\n:DOCKER-USER - [0:0]\n-A FORWARD -j DOCKER-USER\n"
                "-A DOCKER-USER -j RETURN\nCOMMIT\n")
    assert [x.name for x in recognize(rs)] == ["Docker"]


def test_a_family_without_rules_is_named():
    rs = _load("istio-sidecar-legacy-save.txt")  # IPv4 only
    r = trace(rs, TraceQuery("fd00::1", 80, uid=0, gid=0))
    assert _ends(r) == [("ACCEPT", "[fd00::1]:80")]
    assert r.assumptions[0] == ("the dumps hold no ipv6 rules, so nothing filters or rewrites this packet here "
                                "(add the ip6tables-save output with --from-file)")


def test_unsupported_revision_nat_has_no_made_up_destination():
    rs = _rules("*nat\n-A PREROUTING -p tcp -m tcp -j DNAT [unsupported revision]\nCOMMIT\n")
    r = trace(rs, TraceQuery("10.0.0.5", 80, src="10.0.0.1", inbound=True, pod_ips=("10.0.0.5",)))
    [o] = r.outcomes
    assert (o.verdict, o.destination) == ("DNAT", None)
    assert any("parameters are lost" in a for a in r.assumptions)
