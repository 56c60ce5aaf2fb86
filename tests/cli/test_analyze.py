"""`kubectl whose analyze` end to end: outputs, --stream, stdin, errors and exit codes."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from kubectl_whose.errors import ExitCode
from tests.helpers import pcapgen as g
from tests.helpers.cli import run, run_process

T0 = 1_700_000_000 * 10**9


@pytest.fixture
def two_streams(tmp_path):
    path = tmp_path / "two.pcap"
    recs = g.http_conversation() + g.http_conversation(cport=40001, t0=T0 + 10**6)[:3]
    path.write_bytes(g.pcap(recs))
    return path


def test_table_lists_streams_busiest_first_with_the_header_on_stderr(two_streams):
    r = run("analyze", str(two_streams))
    assert r.code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["STREAM", "CLIENT", "SERVER"]
    rows = [line for line in lines if line.startswith("tcp/")]
    assert [row.split()[0] for row in rows] == ["tcp/0", "tcp/1"]
    assert rows[0].split()[1:6] == ["10.0.0.1:40000", "10.0.0.2:80", "4/5", "238/374", "0.000"]
    assert " SF " in rows[0] and "ShADadfF" in rows[0] and " S1 " in rows[1]
    assert r.stderr.startswith("12 packets, 2 TCP streams, 0 UDP streams (EN10MB)")
    assert all(len(line) <= 120 for line in lines)


def test_json_is_the_contract(two_streams):
    r = run("analyze", str(two_streams), "-o", "json")
    assert r.code == 0 and r.stderr == ""
    d = r.json
    assert set(d) == {"packets", "truncated", "warnings", "linktypes", "first_ts", "frames_without_transport",
                      "streams", "detail", "connections", "inbound"}
    assert d["connections"] == [] and d["inbound"] == []  # a plain conversation: nothing NAT-split to join
    assert d["packets"] == 12 and d["truncated"] is False and d["linktypes"] == ["EN10MB"] and d["detail"] is None
    s = d["streams"][0]
    # 58-byte SYNs (window-scale option), 54-byte ACKs
    assert s["proto"] == "tcp" and s["index"] == 0 and s["packets"] == 9 and s["bytes"] == 238 + 374
    assert s["flags"] == {"SYN": 2, "FIN": 2, "RST": 0} and s["payload_bytes"] == 118
    assert s["first_abs_ts"] == 1_700_000_000.0 and s["encapsulation"] is None


def test_yaml_and_wide(two_streams):
    r = run("analyze", str(two_streams), "-o", "yaml")
    assert r.code == 0 and yaml.safe_load(r.stdout)["streams"][1]["history"] == "ShA"
    r = run("analyze", str(two_streams), "-o", "wide")
    assert r.code == 0 and "CLIENT ISN" in r.stdout and "1000" in r.stdout


def test_stream_flag_table_and_json_detail(two_streams):
    r = run("analyze", str(two_streams), "--stream", "0")
    assert r.code == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [row[0] for row in rows] == [str(i) for i in range(1, 10)]
    assert rows[1][2:8] == ["10.0.0.2:80", "10.0.0.1:40000", "58", "0", "SYN,ACK", "0x012"]
    assert rows[3][8:11] == ["1", "1", str(502 << 7)]  # relative seq/ack, scaled window
    assert "TCP stream 0: 9 packets" in r.stderr
    r = run("analyze", str(two_streams), "--stream", "1", "-o", "json")
    assert [p["frame"] for p in r.json["detail"]["packets"]] == [10, 11, 12]
    assert r.json["detail"]["packets"][1]["flags"] == "SYN,ACK"


def test_stream_out_of_range_names_the_valid_range(two_streams):
    r = run("analyze", str(two_streams), "--stream", "12")
    assert r.code == ExitCode.NOT_FOUND
    assert r.stderr.strip() == "kubectl-whose: error: --stream 12: the capture has 2 TCP streams (0–1)"
    r = run("analyze", str(two_streams), "--stream", "0", "--proto", "udp")
    assert r.code == ExitCode.NOT_FOUND and "the capture has no UDP streams" in r.stderr


def test_proto_filter(tmp_path):
    path = tmp_path / "mixed.pcap"
    dns = (T0, g.eth(g.ipv4("10.0.0.1", "10.0.0.53", g.udp(5000, 53, b"q"), proto=17)))
    path.write_bytes(g.pcap([dns] + g.http_conversation(t0=T0 + 1)))
    assert [s["proto"] for s in run("analyze", str(path), "--proto", "udp", "-o", "json").json["streams"]] == ["udp"]
    assert [s["proto"] for s in run("analyze", str(path), "--proto", "tcp", "-o", "json").json["streams"]] == ["tcp"]
    r = run("analyze", str(path), "--proto", "udp")
    assert "udp/0" in r.stdout and "10.0.0.53:53" in r.stdout


def test_stdin_dash(two_streams):
    r = run("analyze", "-", "-o", "json", input=two_streams.read_bytes())
    assert r.code == 0 and r.json["packets"] == 12


def test_truncated_capture_still_prints_what_was_read(tmp_path, two_streams):
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(two_streams.read_bytes()[:-20])
    r = run("analyze", str(cut))
    assert r.code == 0
    assert "11 packets, 2 TCP streams" in r.stderr and "capture cut short after frame 11" in r.stderr
    assert "warning: capture ended mid-packet after frame 11" in r.stderr
    assert run("analyze", str(cut), "-o", "json").json["truncated"] is True


@pytest.mark.parametrize("content,code,text", [
    (None, ExitCode.NOT_FOUND, "no such file"),
    (b"", ExitCode.BAD_INPUT, "is empty (0 bytes)"),
    (b"GET / HTTP/1.1\r\n\r\n", ExitCode.BAD_INPUT, "is not a pcap or pcapng file (magic 0x47455420)"),
])
def test_bad_files_are_one_line_and_a_distinct_code(tmp_path, content, code, text):
    path = tmp_path / "f.pcap"
    if content is not None:
        path.write_bytes(content)
    r = run("analyze", str(path))
    assert r.code == code
    assert r.stderr.count("\n") == 1 and text in r.stderr and "Traceback" not in r.stderr


def test_directory_is_bad_input(tmp_path):
    r = run("analyze", str(tmp_path))
    assert r.code == ExitCode.BAD_INPUT and "is a directory" in r.stderr


def test_unknown_link_type_is_a_warning_not_a_crash(tmp_path):
    path = tmp_path / "bt.pcap"
    path.write_bytes(g.pcap([(T0, b"\x01\x02\x03")], linktype=187))
    r = run("analyze", str(path), "-o", "json")
    assert r.code == 0 and r.json["streams"] == [] and r.json["frames_without_transport"] == 1
    assert "LINKTYPE_187" in r.json["warnings"][0]
    r = run("analyze", str(path))
    assert r.code == 0 and "no TCP or UDP streams" in r.stderr


def test_ipv6_table_stays_within_120_columns(tmp_path):
    path = tmp_path / "v6.pcap"
    recs = g.http_conversation("fd00:1234:5678:9abc:def0:1234:5678:9abc", "fd00:1234:5678:9abc:def0:1234:5678:9abd",
                               ip=g.ipv6)
    path.write_bytes(g.pcap(recs))
    for args in ((), ("--stream", "0")):
        r = run("analyze", str(path), *args)
        assert r.code == 0 and all(len(line) <= 120 for line in r.stdout.splitlines())
        assert "[fd00:1234:" in r.stdout


def test_help_has_examples():
    r = run("analyze", "--help")
    assert r.code == 0 and "Examples:" in r.stdout and "--stream 3" in r.stdout


def test_real_process_reads_a_pipe(two_streams):
    """The console entry point, fed through a real pipe (no seek possible)."""
    cat = subprocess.Popen(["cat", str(two_streams)], stdout=subprocess.PIPE)
    proc = subprocess.run([sys.executable, "-m", "kubectl_whose", "analyze", "-", "-o", "json"], stdin=cat.stdout,
                          capture_output=True, timeout=60)
    cat.wait()
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["streams"][0]["packets"] == 9
    r = run_process(["analyze", str(two_streams), "--stream", "5"])
    assert r.returncode == ExitCode.NOT_FOUND and b"Traceback" not in r.stderr


def test_a_big_table_is_written_line_by_line_with_the_same_columns(tmp_path):
    """Above 500 rows rich is bypassed (it would take minutes for 100 000 streams); same columns."""
    path = tmp_path / "many.pcap"
    recs = []
    for i in range(600):
        recs += g.http_conversation(cport=20000 + i, t0=T0 + i * 10**6)[: 3 + i % 2]
    path.write_bytes(g.pcap(recs))
    r = run("analyze", str(path))
    assert r.code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["STREAM", "CLIENT", "SERVER"] and set(lines[1]) == {"─"}
    rows = [line.split() for line in lines[2:]]
    assert len(rows) == 600 and rows[0][0] == "tcp/1" and rows[-1][0] == "tcp/598"  # 4-packet streams first
    assert rows[0][1:5] == ["10.0.0.1:20001", "10.0.0.2:80", "3/1", "184/58"] and rows[-1][7:9] == ["S1", "ShA"]
    assert all(len(line) <= 120 for line in lines)
    assert "2100 packets, 600 TCP streams" in r.stderr
