"""The offline commands in a real terminal (tmux) at 80, 100, 120 and 200 columns: every value of `-o json` is whole
on the screen (or its column is said to be left out), nothing runs past the terminal's edge.

The live commands get the same check against the lab in tests/e2e/test_terminal.py.
"""
from __future__ import annotations

import os
from typing import Dict, List

import pytest

from tests.cli.test_net import saved  # noqa: F401 - the module-scoped fixture: `net` outputs of a real namespace
from tests.helpers import pcapgen as g
from tests.helpers.cli import run
from tests.helpers.netns import requires_netns, requires_tools
from tests.helpers.paths import FIXTURES
from tests.helpers.terminal import WIDTHS, Screen, left_out, missing_from, run_in_terminal, tmux_missing, words

pytestmark = pytest.mark.skipif(tmux_missing() is not None, reason=tmux_missing() or "")

T0 = 1_700_000_000 * 10**9
KUBE_PROXY = str(FIXTURES / "netfilter" / "kube-proxy-tracepacket-nat.txt")
V6_CLIENT, V6_SERVER = "fd00:1234:5678:9abc:def0:1234:5678:9abc", "fd00:1234:5678:9abc:def0:1234:5678:9abd"
SIZES = [(w, "table") for w in WIDTHS] + [(80, "wide")]
SIZE_IDS = [f"{w}-{o}" for w, o in SIZES]


def assert_whole(screen: Screen, by_column: Dict[str, List[str]]) -> None:
    """Each column's values whole on one screen line, unless the screen says that column was left out."""
    gone = set(left_out(screen))
    missing = {col: missing_from(screen, values) for col, values in by_column.items() if col not in gone}
    missing = {col: m for col, m in missing.items() if m}
    assert screen.code == 0, screen
    assert not missing, f"not whole on the screen: {missing}\n{screen}"
    assert not screen.overflowed(), f"ran past the edge: {screen.overflowed()}\n{screen}"


def nat_split(cport: int, t0: int) -> list:
    """A sidecar-redirected connection as `-i any` sees it: app -> 127.0.0.1:15001, answers from the original dst."""
    app, proxy, orig = "10.244.0.20", "127.0.0.1", "10.96.0.10"
    c, s = 1000 + cport, 9000 + cport
    segs = [(app, proxy, cport, 15001, c, 0, g.SYN, g.wscale(7)),
            (orig, app, 80, cport, s, c + 1, g.SYN | g.ACK, g.wscale(7)),
            (app, proxy, cport, 15001, c + 1, s + 1, g.ACK, b""),
            (orig, app, 80, cport, s + 1, c + 1, g.FIN | g.ACK, b""),
            (app, proxy, cport, 15001, c + 1, s + 2, g.FIN | g.ACK, b"")]
    return [(t0 + i * 1000, g.eth(g.ipv4(a, b, g.tcp(pa, pb, seq, ack, fl, 502, b"", o))))
            for i, (a, b, pa, pb, seq, ack, fl, o) in enumerate(segs)]


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    """IPv4 and IPv6 conversations with 5-digit byte counts and NAT-split streams that join into connections."""
    recs = g.http_conversation(cport=15001, t0=T0) + nat_split(41676, T0 + 10**6) + nat_split(41700, T0 + 2 * 10**6)
    recs += g.http_conversation(V6_CLIENT, V6_SERVER, cport=40000, t0=T0 + 3 * 10**6, ip=g.ipv6)
    path = tmp_path_factory.mktemp("term") / "mixed.pcap"
    path.write_bytes(g.pcap(recs))
    return str(path)


def stream_values(streams: list) -> Dict[str, List[str]]:
    return {"STREAM": [f"{s['proto']}/{s['index']}" for s in streams],
            "CLIENT": [s["client"] for s in streams], "SERVER": [s["server"] for s in streams],
            "PKTS →/←": [f"{s['client_packets']}/{s['server_packets']}" for s in streams],
            "STATE": [s["state"] for s in streams], "HISTORY": [s["history"] for s in streams],
            "FRAME": [str(s["first_frame"]) for s in streams]}


@pytest.mark.parametrize("width, output", SIZES, ids=SIZE_IDS)
def test_analyze_summary_and_connections(capture, width, output):
    data = run("analyze", capture, "-o", "json").json
    assert len(data["connections"]) == 2 and any(s["client"].startswith("[fd00") for s in data["streams"])
    screen = run_in_terminal(["analyze", capture, "-o", output], width)
    values = stream_values(data["streams"])
    if output == "table":
        values.pop("FRAME")
    values["CONNECTION"] = words(*(c["text"] for c in data["connections"]))
    values["STREAMS"] = [" + ".join(map(str, c["streams"])) for c in data["connections"]]
    assert_whole(screen, values)


@pytest.mark.parametrize("width, output", SIZES, ids=SIZE_IDS)
def test_analyze_flag_table(capture, width, output):
    index = next(s["index"] for s in run("analyze", capture, "-o", "json").json["streams"]
                 if s["client"].startswith("[fd00"))
    packets = run("analyze", capture, "--stream", str(index), "-o", "json").json["detail"]["packets"]
    screen = run_in_terminal(["analyze", capture, "--stream", str(index), "-o", output], width)
    assert_whole(screen, {"NO.": [str(p["frame"]) for p in packets], "SOURCE": [p["src"] for p in packets],
                          "DESTINATION": [p["dst"] for p in packets], "SEQ": [str(p["seq"]) for p in packets],
                          "WIN": [str(p["window"]) for p in packets], "FLAGS": [p["flags_hex"] for p in packets]})


@pytest.mark.parametrize("width, output", SIZES, ids=SIZE_IDS)
def test_rules(width, output):
    data = run("rules", "--from-file", KUBE_PROXY, "-o", "json").json
    rules = [r["text"].split(" ", 2)[2] for rs in data["rulesets"] for t in rs["tables"]
             for c in t["chains"] for r in c["rules"]]
    screen = run_in_terminal(["rules", "--from-file", KUBE_PROXY, "-o", output], width)
    assert_whole(screen, {"summary": words(data["summary"]), "rules": words(*rules)})


@pytest.mark.parametrize("width, output", SIZES, ids=SIZE_IDS)
def test_trace(width, output):
    args = ["trace", "--from-file", KUBE_PROXY, "--pod-ip", "10.180.0.9", "--to", "172.30.0.41:80"]
    data = run(*args, "-o", "json").json
    screen = run_in_terminal([*args, "-o", output], width)
    outcomes = data["outcomes"]
    first = outcomes[0]
    assert_whole(screen, {"DESTINATION": [o["destination"] for o in outcomes],
                          "VERDICT": [o["verdict"] for o in outcomes],
                          "SENDER SEES": [o["sender_sees"] for o in outcomes],
                          "SOURCE": [o["source"] for o in outcomes], "NAT": words(*(n for o in outcomes
                                                                                     for n in o["nat"])),
                          "path": words(*(s["rule"] for s in first["steps"] if s["matched"]))})


@requires_netns
@requires_tools("ip", "ss", "setpriv")
@pytest.mark.parametrize("width, output", SIZES, ids=SIZE_IDS)
def test_net(saved, width, output):  # noqa: F811 - the imported fixture
    args = ["net", "--from-file", str(saved["dir"])]
    data = run(*args, "-o", "json").json
    screen = run_in_terminal([*args, "-o", output], width)
    listening = [s for s in data["sockets"] if s["state"] == "LISTEN"]
    assert_whole(screen, {"NAME": [i["display_name"] for i in data["interfaces"]],
                          "ADDRESSES": [f"{a['local']}/{a['prefixlen']}" for i in data["interfaces"] for a in i["addresses"]
                                        if a["scope"] != "link"],
                          "DESTINATION": [r["dst"] for r in data["routes"] if r["table"] == "main"],
                          "LOCAL": [s["local"] for s in listening], "UID": [str(s["uid"]) for s in listening]})


def test_the_terminal_check_can_fail():
    """The check itself: a value the screen shows cut is reported."""
    screen = Screen(80, ["tcp/1  10.244.0.20:416", "127.0.0.1:1500"], ["tcp/1  10.244.0.20:416"], 0)
    assert missing_from(screen, ["10.244.0.20:41676", "127.0.0.1:15001", "tcp/1"]) == [
        "10.244.0.20:41676", "127.0.0.1:15001"]
    assert os.path.basename(KUBE_PROXY) == "kube-proxy-tracepacket-nat.txt"
