"""Plain `nft list ruleset` text read into the model `nft -j list ruleset` gives, with nft itself as the judge:
every nftables rule set of the tests is loaded with the real `nft -f` in a namespace and dumped back three ways
(`nft list ruleset`, `nft -a list ruleset`, `nft -j list ruleset`); the text must give the JSON's model (its
handles too, from `-a`'s `# handle N`)."""
from __future__ import annotations

import json
import os

import pytest

from kubectl_whose.analysis.netfilter import load_dumps
from kubectl_whose.analysis.netfilter.nft_json import dump_nft, parse_nft_json
from kubectl_whose.analysis.netfilter.nft_listing import parse_nft_listing, tokenize
from tests.analysis.netfilter.trace.test_kernel import KUBE_PROXY_NFT
from tests.helpers.netns import NetLab, requires_netns, requires_tools, sweep_stale
from tests.helpers.paths import FIXTURES

NFT = FIXTURES / "netfilter"
# the svc4 excerpt leaves the first endpoint's chain out (research/anchors-netfilter.md fixture 3d), and adds the
# second after the rule that jumps to it: both declared first here
SVC4_ENDPOINT = "add chain ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80\n" \
                "add chain ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80\n"


def _read(name: str) -> str:
    with open(str(NFT / name)) as f:
        return f.read()


RULE_SETS = {
    "istio-nftables-inbound-ports-wildcard (golden)": lambda: _read("istio-nftables-inbound-ports-wildcard.nft"),
    "kube-proxy baseRules (test expectation)": lambda: _read("kube-proxy-nftables-base.nft"),
    "kube-proxy baseRules + svc4": lambda: _read("kube-proxy-nftables-base.nft") + SVC4_ENDPOINT +
    _read("kube-proxy-nftables-svc4.nft"),
    "kube-proxy (trace kernel test)": lambda: KUBE_PROXY_NFT,
    "constructs": lambda: _read("nft-constructs.nft"),
    **{f"writers/{n}": (lambda n=n: _read(f"writers/{n}")) for n in sorted(os.listdir(str(NFT / "writers")))
       if n.endswith(".nft")},
}


def _model(rs, handles: bool) -> list:
    def strip(o):
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items() if handles or k != "handle"}
        if isinstance(o, list):
            return [strip(x) for x in o]
        return o
    return [strip(x) for x in json.loads(dump_nft(rs))["nftables"] if "metainfo" not in x]


@requires_netns
@requires_tools("nft")
@pytest.mark.parametrize("name", sorted(RULE_SETS))
def test_listing_and_json_give_one_model(name, tmp_path):
    sweep_stale("N")
    with NetLab("N") as lab:
        ns = lab.ns("nft")
        path = tmp_path / "rules.nft"
        path.write_text(RULE_SETS[name]())
        ns.run(["nft", "-f", str(path)])
        text = ns.run(["nft", "list", "ruleset"]).stdout
        handles = ns.run(["nft", "-a", "list", "ruleset"]).stdout
        as_json = parse_nft_json(ns.run(["nft", "-j", "list", "ruleset"]).stdout)
    assert as_json.rule_count() > 0 or "baseRules" not in name
    assert _model(parse_nft_listing(text), handles=False) == _model(as_json, handles=False)
    assert _model(parse_nft_listing(handles), handles=True) == _model(as_json, handles=True)
    assert _model(load_dumps(text, "listing")[0], handles=False) == _model(as_json, handles=False)


def test_tokens_keep_words_with_commas_and_quotes():
    assert tokenize('ct state established,related accept\n') == ["ct", "state", "established,related", "accept",
                                                                 "\n"]
    assert tokenize('tcp dport { 53, 15008 } comment "a, b" # handle 7\n') == [
        "tcp", "dport", "{", "53", ",", "15008", "}", "comment", '"a, b"', "#handle 7", "\n"]


def test_a_listing_with_an_unknown_statement_is_one_clear_error():
    from kubectl_whose.errors import ExitCode, WhoseError

    with pytest.raises(WhoseError) as e:
        parse_nft_listing("table ip t {\n  chain c {\n    tcp dport 22 frobnicate\n  }\n}\n", "x.nft")
    assert e.value.code == ExitCode.BAD_INPUT
    assert str(e.value) == "x.nft: not `nft list ruleset` text as nft prints it (unknown expression 'frobnicate')"
