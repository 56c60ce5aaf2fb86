"""The JSON contract is written in two places for people (README.md and `analysis.streams.summary`'s
docstring) and produced in one for programs (`rows.ROW_KEYS`, `CaptureSummary.head()`): the three must
name the same keys, so a key added to the code and not to the contract (or the reverse) fails here."""
from __future__ import annotations

import re

from kubectl_whose.analysis.streams import analyze_file, summary
from kubectl_whose.analysis.streams.rows import ROW_KEYS
from tests.helpers import pcapgen as g
from tests.helpers.paths import REPO


def contract_keys(text: str) -> set:
    return set(re.findall(r'"([a-z_]+)"', text))


def readme_contract() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## JSON output"):]
    return section[section.index("```") + 3:section.index("```", section.index("```") + 3)]


def produced(tmp_path) -> tuple:
    path = tmp_path / "one.pcap"
    path.write_bytes(g.pcap(g.http_conversation()))
    s = analyze_file(str(path), detail_stream=0)
    return set(s.head()) | {"streams", "detail"}, set(s.streams[0]), set(s.detail["packets"][0]), set(s.detail)


def test_readme_and_docstring_name_every_key_the_code_writes(tmp_path):
    head, row, packet, detail = produced(tmp_path)
    assert row == set(ROW_KEYS)
    for where, text in (("README.md", readme_contract()), ("analysis/streams/summary.py", summary.__doc__)):
        keys = contract_keys(text)
        for what, wanted in (("top-level", head), ("stream row", row), ("--stream packet", packet),
                             ("detail", detail)):
            missing = wanted - keys
            assert not missing, f"{where} does not document the {what} keys {sorted(missing)}"


def test_the_contracts_document_no_key_the_code_does_not_write(tmp_path):
    head, row, packet, detail = produced(tmp_path)
    flags = {"SYN", "FIN", "RST"}
    connections = {"connections", "text", "syn_stream", "reply_stream", "client", "proxy", "original_dst",
                   "redirect_port", "proof", "mesh", "proxy_role", "reset_by", "client_owner", "proxy_owner", "rule",
                   "upstream", "stream", "delay", "evidence", "state", "streams", "server"}
    from kubectl_whose.analysis.pod.inbound import InboundLink

    inbound = {"inbound"} | set(InboundLink("c", "s", 0, 1, "l", 0.0).to_dict())
    known = head | row | packet | detail | flags | connections | inbound | {"tcp", "udp"}
    assert not contract_keys(readme_contract()) - known - {"ip:port"}
    assert not contract_keys(summary.__doc__) - known
