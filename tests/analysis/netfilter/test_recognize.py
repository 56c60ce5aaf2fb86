"""Who wrote the rules (named once each), and the summary in words on the real dumps of the research file.

The words are judged by the kernel in tests/analysis/netfilter/words/test_kernel.py; here, offline, each case
the issue found false, overgeneral or silent is held to what the words say now."""
from __future__ import annotations

import os

import pytest

from kubectl_whose.analysis.netfilter import load_dumps
from kubectl_whose.analysis.netfilter.recognize import recognize
from kubectl_whose.analysis.netfilter.words import summarize
from tests.analysis.netfilter.words.corpus import loadable
from tests.helpers.paths import FIXTURES as FIXTURE_ROOT

FIXTURES = str(FIXTURE_ROOT / "netfilter")
POD = ("10.77.1.2",)


def _load(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return load_dumps(f.read(), name)


def _words(name) -> str:
    return summarize(_load(name), POD).text


@pytest.mark.parametrize("name, writers", [
    ("istio-sidecar-legacy-save.txt", ["Istio sidecar"]),
    ("istio-empty.golden.txt", ["Istio sidecar"]),
    ("istio-dns-uid-gid.golden.txt", ["Istio sidecar"]),
    ("istio-inbound-ports-tproxy.golden.txt", ["Istio sidecar"]),
    ("istio-ambient-default.golden.txt", ["Istio ambient (ztunnel in-pod rules)"]),
    ("istio-nftables-inbound-ports-wildcard.json", ["Istio sidecar (native nftables)"]),
    ("writers/istio-ambient-node.rules", ["Istio ambient (istio-cni node rules)"]),
    ("writers/istio-nft-tproxy.nft", ["Istio sidecar (native nftables)"]),
    ("writers/istio-ambient-inpod.nft", ["Istio ambient (ztunnel in-pod rules, nftables)"]),
    ("writers/istio-ambient-node.nft", ["Istio ambient (istio-cni node rules, nftables)"]),
    ("linkerd-proxy-init-test.txt", ["Linkerd proxy-init"]),
    ("linkerd-2.7.1-pod.txt", ["Linkerd proxy-init"]),
    ("kube-proxy-tracepacket-nat.txt", ["kube-proxy (iptables mode)"]),
    ("kube-proxy-kind-node.txt", ["kube-proxy (iptables mode)"]),
    ("kube-proxy-nftables.json", ["kube-proxy (nftables mode)"]),
    ("calico-issue-3835.txt", ["Calico (iptables dataplane)"]),
    ("cilium-issue-31565.txt", ["Cilium (iptables feeder chains)"]),
    ("aws-antrea-pr-3975.txt", ["AWS VPC CNI", "Antrea"]),
    ("antrea-route-test.txt", ["Antrea"]),
    ("writers/docker-bridge.rules", ["Docker"]),
])
def test_writer_is_named_once(name, writers):
    assert [r.name for r in recognize(_load(name))] == writers


def test_a_writer_with_several_tables_is_listed_once_with_each_as_evidence():
    [istio] = recognize(_load("writers/istio-nft-tproxy.nft"))
    assert istio.evidence == ["table inet istio-proxy-nat", "table inet istio-proxy-mangle", "table inet istio-proxy-raw"]


@pytest.mark.parametrize("name, summary", [
    ("istio-sidecar-legacy-save.txt",
     "Outbound TCP is redirected to 127.0.0.1:15001, except from uid or gid 1337, to 127.0.0.1 or to its own address "
     "10.77.1.2 (unchanged). Outbound TCP from uid 1337 to its own address 10.77.1.2 is redirected to "
     "127.0.0.1:15006, except from 127.0.0.6, to 127.0.0.1 or to port 15008 (unchanged). Inbound TCP is redirected "
     "to 10.77.1.2:15006, except to ports 15008, 15020, 15021, 15090 (unchanged)."),
    ("linkerd-2.7.1-pod.txt",
     "Outbound TCP is redirected to 127.0.0.1:4140, except from uid 2102, to 127.0.0.1 or to its own address "
     "10.77.1.2 (unchanged). Outbound TCP from uid 2102 to its own address 10.77.1.2 is redirected to "
     "127.0.0.1:4143, except to 127.0.0.1 or to ports 4190, 4191 (unchanged). Inbound TCP is redirected to "
     "10.77.1.2:4143, except to ports 4190, 4191 (unchanged)."),
    ("istio-inbound-ports-tproxy.golden.txt",
     "Inbound TCP to ports 31000, 32000 is handed by TPROXY to the socket on port 15006 (destination kept, mark "
     "0x539)."),
])
def test_summary_in_words(name, summary):
    assert _words(name) == summary


def test_native_nftables_istio_is_not_summarised_as_no_redirection():
    text = _words("istio-nftables-inbound-ports-wildcard.json")
    assert "Inbound TCP is redirected to 10.77.1.2:15006, except to port 15008 (unchanged)." in text
    text = _words("writers/istio-nft-tproxy.nft")  # plain nft text, as `nft list ruleset` prints it
    assert "Outbound TCP to 9.9.0.0/16 is redirected to 127.0.0.1:15001" in text
    assert "Inbound TCP is handed by TPROXY to the socket on port 15006" in text


def test_dns_capture_is_said_for_the_resolver_the_rules_name_only():
    text = _words("istio-dns-uid-gid.golden.txt")
    assert "Outbound TCP to 127.0.0.53 port 53 is redirected to 127.0.0.1:15053" in text
    assert "Outbound UDP to 127.0.0.53 port 53 is redirected to 127.0.0.1:15053" in text
    assert "DNS (port 53)" not in text and "to port 53 is redirected" not in text


def test_random_choice_is_said_only_where_the_rules_choose():
    text = _words("kube-proxy-tracepacket-nat.txt")
    assert "Outbound TCP to 172.30.0.41 port 80 is DNATed to 10.180.0.1:80." in text  # one endpoint: no chance
    assert "Outbound TCP to 172.30.0.44 port 80 is DNATed at random to 10.180.0.4:80 or 10.180.0.5:80 (50% each)" \
        in text
    assert "statistic" not in text


def test_a_port_list_is_never_said_twice():
    rs = load_dumps(loadable("*nat\n-A OUTPUT -p tcp --dport 15020 -j REDIRECT --to-ports 15020\n"
                             "-A OUTPUT -p udp --dport 15020 -j REDIRECT --to-ports 15020\nCOMMIT\n"))
    text = summarize(rs, POD).text
    assert text == "Outbound TCP and UDP to port 15020 are redirected to 127.0.0.1:15020."


def test_istio_invalid_drop_is_said():
    with open(os.path.join(FIXTURES, "writers/istio-drop-invalid.rules")) as f:
        text = summarize(load_dumps(f.read()), POD).text
    assert "Inbound TCP is redirected to 10.77.1.2:15006, except in conntrack state INVALID (dropped)" in text


def test_ambient_node_probe_snat_is_said():
    with open(os.path.join(FIXTURES, "writers/istio-ambient-node.rules")) as f:
        text = summarize(load_dumps(f.read()), POD).text
    assert text.startswith("Outbound TCP to members of ipset istio-inpod-probes-v4 is SNATed to 169.254.7.127.")


def test_unknown_chains_are_not_named_and_no_effect_is_said_as_traced():
    rs = load_dumps("*filter\n:MY-CHAIN - [0:0]\n-A INPUT -j MY-CHAIN\n-A MY-CHAIN -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    assert recognize(rs) == []
    s = summarize(rs, POD)
    assert not s.claims
    assert s.text.startswith("The ") and s.text.endswith("packets traced (the rules' own addresses, ports, uids and "
                                                         "marks) all pass unchanged: no redirection, NAT or drop was "
                                                         "found.")


def test_no_rules_says_so():
    rs = load_dumps("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n")
    assert summarize(rs).text == "No netfilter rules: traffic is neither redirected nor filtered here."


def test_unknown_pod_address_is_said_as_an_assumption():
    s = summarize(_load("istio-sidecar-legacy-save.txt"))
    assert "The probes took 192.168.77.2 as this host's own address (pass --local-ip)." in s.notes
    assert "Inbound TCP is redirected to 192.168.77.2:15006" in s.text


def test_a_cidr_sentence_names_the_addresses_within_it_that_end_otherwise():
    """kube-proxy's nftables mode drops the rest of the Service CIDR: "to 172.30.0.0/16 are dropped" alone would
    be false for the Services in it."""
    head = "*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -d 172.30.0.41/32 -p tcp -m tcp --dport 80 -j ACCEPT\n"
    s = summarize(load_dumps(head + "-A OUTPUT -d 172.30.0.0/16 -j DROP\nCOMMIT\n"), POD)
    assert s.text == "Outbound TCP to 172.30.0.0/16 is dropped, except to 172.30.0.41 port 80 (unchanged). " \
                     "Outbound UDP to 172.30.0.0/16 is dropped."
    s = summarize(load_dumps(head + "-A OUTPUT -d 172.30.0.41/32 -j REJECT\n-A OUTPUT -d 172.30.0.0/16 -j DROP\n"
                                    "COMMIT\n"), POD)
    assert s.text == "Outbound TCP and UDP to 172.30.0.0/16 are dropped, except to 172.30.0.41 (said on its own). " \
                     "Outbound TCP to 172.30.0.41 is refused (REJECT), except to port 80 (unchanged). Outbound UDP " \
                     "to 172.30.0.41 is refused (REJECT)."


def test_ipv6_rules_beside_ipv4_ones_are_said_to_be_left_out():
    v4 = load_dumps("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -j DROP\nCOMMIT\n")
    v6 = load_dumps("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s fd00::/8 -p tcp -m tcp --dport 22 -j DROP\nCOMMIT\n")
    s = summarize(v4 + v6, POD)
    assert s.text.startswith("Inbound TCP to port 22 is dropped.")
    assert "The IPv6 rules (1) are not summarised: the probes are IPv4 (`kubectl whose trace` follows an IPv6 " \
           "packet)." in s.notes


def test_every_claim_carries_the_trace_that_backs_it():
    s = summarize(_load("linkerd-2.7.1-pod.txt"), POD)
    for claim in s.claims:
        assert claim.probes
        for probe in claim.probes:
            d = probe.to_dict()
            assert d["trace"].startswith(("--to", "--inbound", "--from")) and d["outcomes"], d
