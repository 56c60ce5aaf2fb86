"""The captures kept in tests/fixtures/captures/ (recorded on the lab, see its README) against tshark 4.0,
offline: every stream, every figure, and the `--stream N` table of each TCP stream, row by row."""
from __future__ import annotations

import pytest

from kubectl_whose.analysis.streams import analyze_file
from tests.helpers.netns import requires_tools
from tests.helpers.paths import FIXTURES
from tests.helpers.tshark_oracle import analyze as tshark_analyze, row_diff, stream_diff

pytestmark = requires_tools("tshark")

CAPTURES = sorted((FIXTURES / "captures").glob("*.pcap*"))


def test_the_fixtures_are_there():
    assert {p.name for p in CAPTURES} >= {"nflog.pcap", "replay_pppoe_qinq.pcap", "replay_mpls_vlan.pcap"}


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_fixture_capture_equals_tshark(path):
    truth = tshark_analyze(path)
    tcp = sorted(i for proto, i in truth.streams if proto == "tcp")
    assert tcp, "tshark found no TCP stream: the fixture proves nothing"
    summary = analyze_file(str(path)).to_dict()
    ours = {(s["proto"], s["index"]): s for s in summary["streams"]}
    assert summary["packets"] == truth.packets and sorted(ours) == sorted(truth.streams)
    problems = [f"{k}: {d}" for k in truth.streams for d in stream_diff(ours[k], truth.streams[k])]
    for index in tcp:
        rows = analyze_file(str(path), detail_stream=index).detail["packets"]
        want = truth.detail("tcp", index)
        assert [r["frame"] for r in rows] == [w["frame"] for w in want]
        problems += [f"tcp {index} frame {w['frame']}: {d}" for o, w in zip(rows, want) for d in row_diff(o, w)]
    assert not problems, "\n".join(problems)
