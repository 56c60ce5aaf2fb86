"""Who wrote the rules, and the summary in words, for every real dump in the research file."""
from __future__ import annotations

import os

import pytest

from kubectl_whose.analysis.netfilter import load_dumps
from kubectl_whose.analysis.netfilter.recognize import recognize, summarize
from tests.helpers.paths import FIXTURES as FIXTURE_ROOT

FIXTURES = str(FIXTURE_ROOT / "netfilter")


def _load(name):
    with open(os.path.join(FIXTURES, name)) as f:
        return load_dumps(f.read(), name)


@pytest.mark.parametrize("name, writers", [
    ("istio-sidecar-legacy-save.txt", ["Istio sidecar"]),
    ("istio-empty.golden.txt", ["Istio sidecar"]),
    ("istio-dns-uid-gid.golden.txt", ["Istio sidecar (DNS capture)"]),
    ("istio-inbound-ports-tproxy.golden.txt", ["Istio sidecar (TPROXY inbound)"]),
    ("istio-ambient-default.golden.txt", ["Istio ambient (ztunnel in-pod redirection)"]),
    ("istio-nftables-inbound-ports-wildcard.json", ["Istio sidecar (native nftables)"]),
    ("linkerd-proxy-init-test.txt", ["Linkerd proxy-init"]),
    ("linkerd-2.7.1-pod.txt", ["Linkerd proxy-init"]),
    ("kube-proxy-tracepacket-nat.txt", ["kube-proxy (iptables mode)"]),
    ("kube-proxy-kind-node.txt", ["kube-proxy (iptables mode)"]),
    ("kube-proxy-nftables.json", ["kube-proxy (nftables mode, ip)"]),
    ("calico-issue-3835.txt", ["Calico (iptables dataplane)"]),
    ("cilium-issue-31565.txt", ["Cilium (iptables feeder chains)"]),
    ("aws-antrea-pr-3975.txt", ["AWS VPC CNI", "Antrea"]),
    ("antrea-route-test.txt", ["Antrea"]),
])
def test_writer_is_named(name, writers):
    assert [r.name for r in recognize(_load(name))] == writers


@pytest.mark.parametrize("name, summary", [
    ("istio-sidecar-legacy-save.txt",
     "Outbound TCP is redirected to 127.0.0.1:15001 except from uid/gid 1337 and to 127.0.0.1; inbound TCP to 15006 "
     "except ports 15008, 15090, 15021, 15020. 3 more outbound rule(s) with conditions on lo, marks or several "
     "matches apply (see the chains)."),
    ("linkerd-2.7.1-pod.txt",
     "Outbound TCP is redirected to 127.0.0.1:4140 except from uid 2102 and via lo; inbound TCP to 4143 except ports "
     "4190, 4191."),
    ("istio-inbound-ports-tproxy.golden.txt",
     "Inbound TCP is intercepted with TPROXY to port 15006 (mark 0x539/0xffffffff)."),
    ("istio-dns-uid-gid.golden.txt",
     "Outbound traffic is redirected only by 6 conditional rules; DNS (port 53) goes to 15053."),
    ("kube-proxy-tracepacket-nat.txt",
     "kube-proxy DNATs 9 Service addresses to 6 endpoints (chosen at random by -m statistic)."),
    ("kube-proxy-nftables.json",
     "kube-proxy (nftables) maps 2 service IP:port entries to 2 endpoints (numgen picks one at random per "
     "connection)."),
    ("calico-issue-3835.txt", "The filter table has 2 DROP/REJECT rule(s) or policies."),
    ("cilium-issue-31565.txt", "8 rules; no redirection or Service NAT recognised."),
])
def test_summary_in_words(name, summary):
    assert summarize(_load(name)) == summary


def test_unknown_chains_are_not_named():
    rs = load_dumps("*filter\n:MY-CHAIN - [0:0]\n-A INPUT -j MY-CHAIN\n-A MY-CHAIN -p tcp --dport 22 -j ACCEPT\nCOMMIT\n")
    assert recognize(rs) == []
    assert summarize(rs) == "2 rules; no redirection or Service NAT recognised."


def test_no_rules_says_so():
    rs = load_dumps("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n")
    assert summarize(rs) == "No netfilter rules: traffic is neither redirected nor filtered here."
