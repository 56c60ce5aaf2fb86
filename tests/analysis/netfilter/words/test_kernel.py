"""Every claim of `rules`' summary, asked of the kernel: each rule set of the corpus (tests/analysis/netfilter/
words/corpus.py: Istio sidecar in iptables and native nftables, TPROXY, DNS capture, INVALID drop, Istio CNI,
ambient in the pod and on the node, Linkerd, kube-proxy in iptables and nftables mode, Calico, Cilium, Antrea,
AWS VPC CNI, Docker) is loaded in a namespace with the real iptables-restore (legacy and nft) or nft -f, dumped
back with the real save tool, summarised, and then every probe behind every sentence is sent as real
connections (tests/helpers/claims_lab.py): where the kernel delivers, refuses or drops each one must be what the
claim's trace said, and the summary must say the writer's main effects."""
from __future__ import annotations

import re

import pytest

from kubectl_whose.analysis.netfilter import read_dump_file
from kubectl_whose.analysis.netfilter.words import summarize
from tests.analysis.netfilter.words.corpus import CORPUS
from tests.analysis.netfilter.words.test_probes import assert_claims_are_traces
from tests.helpers.claims_lab import POD_IP, ClaimsLab
from tests.helpers.netns import NetLab, requires_netns, requires_tools, sweep_stale

pytestmark = [requires_netns, requires_tools("iptables-legacy-restore", "iptables-nft-restore", "nft", "setpriv",
                                            "conntrack", "ipset")]
CASES = [(e, tool) for e in CORPUS for tool in e.tools]


def said(expected: str, text: str) -> bool:
    """A main effect in the words: a phrase, or a regular expression after `re:`."""
    return bool(re.search(expected[3:], text)) if expected.startswith("re:") else expected in text


@pytest.mark.parametrize("entry, tool", CASES, ids=[f"{e.name}-{t}" for e, t in CASES])
def test_every_claim_is_what_the_kernel_does(entry, tool, tmp_path):
    sweep_stale("W")
    with NetLab("W") as netlab:
        lab = ClaimsLab(netlab, str(tmp_path), entry.devices)
        lab.load(entry.text, tool)
        dump = lab.dump(tool)
        summary = summarize(read_dump_file(dump), (POD_IP,), lab.routes)
        missing = [e for e in entry.expect if not said(e, summary.text)]
        assert not missing, f"main effects not said: {missing}\n{summary.text}"
        probes = [p for c in summary.claims for p in c.probes]
        assert probes, summary.text
        problems = lab.check(probes)
        assert not problems, "the kernel disagrees with:\n" + "\n".join(problems) + "\n\n" + summary.text
        assert_claims_are_traces(read_dump_file(dump), summary, dump)  # and trace says so too
        if tool == "nftables":  # what users paste, `nft list ruleset`, says the same
            listing = summarize(read_dump_file(lab.dump(tool, text=True)), (POD_IP,), lab.routes)
            assert listing.text == summary.text
