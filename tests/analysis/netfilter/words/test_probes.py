"""The summary's words cannot disagree with `trace`: on every rule set of the corpus (read straight from its
fixture, no kernel), each claim's probes are traced again in full (not quietly) and through the CLI with the
flags the claim prints, and both answer what the claim was built from. The kernel's side is test_kernel.py."""
from __future__ import annotations

import shlex

import pytest

from kubectl_whose.analysis.netfilter import read_dump_file
from kubectl_whose.analysis.netfilter.trace import trace
from kubectl_whose.analysis.netfilter.words import summarize
from tests.analysis.netfilter.words.corpus import CORPUS
from tests.helpers.cli import run

POD_IP = "10.77.1.2"


def _ends(outcomes):
    return sorted((round(o["probability"], 4), o["verdict"], o["destination"], o["source"], o["sender_sees"],
                   o["untracked"]) for o in outcomes)


def assert_claims_are_traces(rulesets, summary, path) -> None:
    """Each probe traced again in full equals the claim's; the first probe of each claim through the CLI too."""
    assert summary.claims, summary.text
    for claim in summary.claims:
        for n, probe in enumerate(claim.probes):
            said = _ends(probe.to_dict()["outcomes"])
            full = trace(rulesets, probe.query)  # every step recorded, every chain walked rule by rule
            assert _ends(o.to_dict() for o in full.outcomes) == said, (claim.text, probe.to_dict()["trace"])
            if n == 0:  # the flags the claim prints ask the CLI the same question
                r = run("trace", "--from-file", str(path), *shlex.split(probe.to_dict()["trace"]), "-o", "json")
                assert r.code == 0, r.stderr
                assert _ends(r.json["outcomes"]) == said, (claim.text, probe.to_dict()["trace"])


OFFLINE = [e for e in CORPUS if not e.text.lstrip().startswith(("add ", "flush "))]  # nft -f scripts: test_kernel


@pytest.mark.parametrize("entry", OFFLINE, ids=[e.name for e in OFFLINE])
def test_each_claim_is_what_trace_answers(entry, tmp_path):
    path = tmp_path / ("rules.nft" if entry.path.endswith(".nft") else "rules.txt")
    path.write_text(entry.text)
    rulesets = read_dump_file(str(path))
    assert_claims_are_traces(rulesets, summarize(rulesets, (POD_IP,), entry.routes), path)
