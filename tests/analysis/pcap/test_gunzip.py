"""gzip-compressed captures (`analysis.pcap.gunzip`), read as tshark reads them: tshark on the very same
`.gz` file is the oracle; cut, corrupt and padded gzip streams, several members, and the output bound
that keeps a zip bomb from taking memory."""
from __future__ import annotations

import gzip
import zlib

import pytest

from kubectl_whose.analysis.pcap.gunzip import MAX_PIECE, gunzip_if_compressed
from kubectl_whose.analysis.streams import analyze_file
from kubectl_whose.errors import ExitCode, WhoseError
from tests.helpers import pcapgen as g
from tests.helpers.cli import run
from tests.helpers.tshark_oracle import analyze as tshark_analyze

T0 = 1_700_000_000 * 10**9


def conversations(n: int = 30) -> bytes:
    recs = []
    for i in range(n):
        recs += g.http_conversation(cport=40000 + i, isn_c=1000 + i, t0=T0 + i * 10**7)
    return g.pcap(sorted(recs, key=lambda r: r[0]), nano=True)


@pytest.mark.parametrize("scenario", ["http_short", "pcapng_multi", "loss"])
def test_a_gzipped_capture_gives_what_tshark_reads_from_the_same_gz(scenario, captures, tmp_path):
    cap = captures.get(scenario)
    gz = tmp_path / (cap.path.name + ".gz")
    gz.write_bytes(gzip.compress(cap.path.read_bytes()))
    ours = analyze_file(str(gz))
    truth = tshark_analyze(gz, cap.tshark_args)
    assert ours.packets == truth.packets and not ours.truncated
    rows = {(r["proto"], r["index"]): r for r in ours.streams}
    assert sorted(rows) == sorted(truth.streams)
    for key, want in truth.streams.items():
        assert (rows[key]["packets"], rows[key]["payload_bytes"]) == (want["packets"], want["payload_bytes"]), key
    assert ours.to_dict() == analyze_file(str(cap.path)).to_dict()


def test_several_members_read_as_one_stream_and_padding_is_ignored(tmp_path):
    data = conversations()
    plain = analyze_file(g_path(tmp_path, "plain.pcap", data)).to_dict()
    cut = 12_345  # inside a record: the second member carries the rest of it
    joined = gzip.compress(data[:cut]) + gzip.compress(data[cut:]) + b"\x00" * 512
    summary = analyze_file(g_path(tmp_path, "two.pcap.gz", joined))
    assert summary.to_dict() == plain and not summary.warnings


def test_a_cut_gzip_keeps_the_frames_before_the_cut(tmp_path):
    data = conversations()
    gz = gzip.compress(data)
    summary = analyze_file(g_path(tmp_path, "cut.pcap.gz", gz[:len(gz) * 2 // 3]))
    whole = analyze_file(g_path(tmp_path, "whole.pcap.gz", gz))
    assert summary.truncated and 0 < summary.packets < whole.packets
    assert any("gzip stream ends early" in w for w in summary.warnings)
    r = run("analyze", str(tmp_path / "cut.pcap.gz"))
    assert r.code == 0 and "gzip stream ends early" in r.stderr and "Traceback" not in r.stderr


def test_trailing_garbage_after_the_gzip_data_is_reported_not_fatal(tmp_path):
    summary = analyze_file(g_path(tmp_path, "junk.pcap.gz", gzip.compress(conversations()) + b"not gzip at all"))
    assert not summary.truncated and summary.packets == 30 * 9
    assert summary.warnings == ["15 bytes after the end of the gzip data were ignored"]


def test_corrupt_gzip_from_the_start_is_one_line_and_bad_input(tmp_path):
    path = g_path(tmp_path, "bad.pcap.gz", b"\x1f\x8b\x08\x00" + b"\xff" * 200)
    with pytest.raises(WhoseError) as e:
        analyze_file(path)
    assert e.value.code == ExitCode.BAD_INPUT and "gzip-compressed but its data is corrupt" in str(e.value)
    r = run("analyze", path)
    assert r.code == ExitCode.BAD_INPUT and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_a_gzip_from_stdin_is_read_too():
    data = gzip.compress(conversations(3))
    r = run("analyze", "-", "-o", "json", input=data)
    assert r.code == 0 and '"packets": 27' in r.stdout


def test_inflated_output_is_handed_on_in_bounded_pieces():
    """A small gzip that inflates to 64 MiB (here zeros; a real bomb is the same) never becomes
    one 64 MiB string: memory stays flat whatever the ratio."""
    size = 64 << 20
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    gz = comp.compress(b"\x00" * size) + comp.flush()
    assert len(gz) < size // 500
    pieces = list(gunzip_if_compressed(iter([gz[i:i + 65536] for i in range(0, len(gz), 65536)]),
                                       lambda *a: pytest.fail(f"unexpected warning {a}")))
    assert sum(map(len, pieces)) == size and max(map(len, pieces)) <= MAX_PIECE


def g_path(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)
