"""Fuzz the capture reader and analyser with mutated real captures and random bytes.

Whatever the input, `analyze_file` and `CaptureAnalyzer.feed` (in random chunk sizes) either return a
summary that serialises to JSON or raise `WhoseError(BAD_INPUT)`; never another exception. The
chunking must not change the answer. The CLI never prints a traceback and exits 0, 3 or 17 (a link
type we do not decode, when a mutation hits the header's link type field).
Mutations start from real tcpdump/editcap/mergecap files (tests/helpers/captures.py): bit flips, cuts,
inserted and deleted bytes, and record-length fields overwritten with 0, 1, huge or off-by-some
values (the "wrong lengths / huge caplen" cases a cut `tcpdump -w -` stream or a bad disk gives).
Bounded: a few hundred examples in total, well under 30 s.
"""
from __future__ import annotations

import json
import struct
import tempfile
from pathlib import Path
from typing import List

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from kubectl_whose.analysis.streams import CaptureAnalyzer, analyze_file
from kubectl_whose.errors import ExitCode, WhoseError

pytestmark = [pytest.mark.root]

BASES = ("http_short", "pcapng", "pcapng_multi", "pcapng_nano", "any_sll2", "any_sll", "nano", "vxlan_4789",
         "ipv6", "udp", "abort", "truncated", "tun_raw", "icmp_quote", "midstream", "replay_geneve", "replay_gre",
         "replay_qinq", "nflog", "replay_pppoe_qinq", "replay_mpls_vlan", "replay_pbb")
FUZZ = settings(max_examples=600, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class Corpus:
    """The real captures as bytes; a short repr, because hypothesis prints its arguments on failure."""

    def __init__(self, captures):
        self.data = {name: captures.get(name).path.read_bytes() for name in BASES}

    def __getitem__(self, name: str) -> bytes:
        return self.data[name]

    def __repr__(self) -> str:
        return f"Corpus({', '.join(self.data)})"


@pytest.fixture(scope="session")
def corpus(captures) -> Corpus:
    return Corpus(captures)


@pytest.fixture(scope="session")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "input.cap"


def length_fields(data: bytes) -> List[int]:
    """Offsets of the length fields a reader trusts: pcap incl_len/orig_len of every record, pcapng
    block total lengths and EPB captured/original lengths. Walks the real file's structure."""
    out: List[int] = []
    if len(data) < 24:
        return out
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = "<" if magic[0] in (0xD4, 0x4D) else ">"
        pos = 24
        while pos + 16 <= len(data):
            out += [pos + 8, pos + 12]
            pos += 16 + struct.unpack_from(e + "I", data, pos + 8)[0]
    elif magic == b"\x0a\x0d\x0d\x0a":
        e = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        pos = 0
        while pos + 12 <= len(data):
            btype, blen = struct.unpack_from(e + "II", data, pos)
            out.append(pos + 4)
            if btype == 6:  # EPB: interface, ts hi, ts lo, captured len, original len
                out += [pos + 20, pos + 24]
            if blen < 12:
                break
            pos += blen
    return out


LENGTH_VALUES = st.sampled_from([0, 1, 7, 12, 15, 16, 0xFFFF, 262145, 0x7FFFFFFF, 0xFFFFFFFF])

mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 30), st.integers(0, 7)),
    st.tuples(st.just("cut"), st.integers(0, 1 << 30)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 30), st.binary(min_size=1, max_size=48)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 30), st.integers(1, 48)),
    st.tuples(st.just("length"), st.integers(0, 1 << 30), LENGTH_VALUES, st.booleans()),
)


def mutate(data: bytes, mutations) -> bytes:
    buf = bytearray(data)
    for m in mutations:
        if not buf:
            break
        kind, pos = m[0], m[1] % len(buf)
        if kind == "flip":
            buf[pos] ^= 1 << m[2]
        elif kind == "cut":
            del buf[pos:]
        elif kind == "insert":
            buf[pos:pos] = m[2]
        elif kind == "delete":
            del buf[pos:pos + m[2]]
        else:
            fields = length_fields(bytes(buf))
            if fields:
                off = fields[m[1] % len(fields)]
                if off + 4 <= len(buf):
                    buf[off:off + 4] = struct.pack("<I" if m[3] else ">I", m[2])
    return bytes(buf)


def analyse_whole(path: Path):
    """The summary as a dict, or None when the input was rejected the one allowed way."""
    try:
        summary = analyze_file(str(path))
    except WhoseError as e:
        assert e.code == ExitCode.BAD_INPUT, f"{e.code!r}: {e}"
        assert str(e) and "\n" not in str(e)
        return None
    d = summary.to_dict()
    json.dumps(d)
    assert all(s["packets"] >= 1 for s in d["streams"])
    return d


def analyse_chunks(data: bytes, sizes: List[int]):
    analyzer = CaptureAnalyzer()
    try:
        pos, i = 0, 0
        while pos < len(data):
            size = sizes[i % len(sizes)]
            analyzer.feed(data[pos:pos + size])
            pos, i = pos + size, i + 1
        return analyzer.finish().to_dict()
    except WhoseError as e:
        assert e.code == ExitCode.BAD_INPUT, f"{e.code!r}: {e}"
        return None


@FUZZ
@given(base=st.sampled_from(BASES), mutations=st.lists(mutation, min_size=1, max_size=4),
       sizes=st.lists(st.integers(1, 5000), min_size=1, max_size=6))
def test_mutated_real_captures_never_crash_and_chunking_does_not_matter(corpus, scratch, base, mutations, sizes):
    data = mutate(corpus[base], mutations)
    scratch.write_bytes(data)
    whole = analyse_whole(scratch)
    chunked = analyse_chunks(data, sizes)
    assert chunked == whole, "the same bytes fed in other chunk sizes gave another answer"


def _crafted_bases() -> dict:
    """Files of the formats and link types no recorded scenario has: NetMon 2.3, and an HTTP exchange
    behind radiotap/802.11, PPP, NFLOG and PPPoE-in-QinQ (tests/helpers/pcapgen.py)."""
    from tests.helpers import pcapgen as g

    ip = [(t, f[14:]) for t, f in g.http_conversation()]
    return {"netmon": g.netmon2(g.http_conversation()),
            "radiotap": g.pcap([(t, g.radiotap(g.wlan_data(p, qos=True), fcs=True)) for t, p in ip], linktype=127),
            "ppp": g.pcap([(t, g.ppp_hdlc(p)) for t, p in ip], linktype=9),
            "nflog": g.pcap([(t, g.nflog(p)) for t, p in ip], linktype=239),
            "pppoe": g.pcap([(t, g.eth(g.pppoe(p), ethertype=0x8864, vlans=[1, 2])) for t, p in ip])}


CRAFTED = _crafted_bases()


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(base=st.sampled_from(sorted(CRAFTED)), mutations=st.lists(mutation, min_size=1, max_size=4),
       sizes=st.lists(st.integers(1, 700), min_size=1, max_size=4))
def test_mutated_files_of_the_general_path_never_crash(scratch, base, mutations, sizes):
    """The general path's decoders (dpkt's and ours) and the NetMon reader on mutated input: a
    summary or BAD_INPUT, never another exception, the same whatever the chunking."""
    data = mutate(CRAFTED[base], mutations)
    scratch.write_bytes(data)
    assert analyse_chunks(data, sizes) == analyse_whole(scratch)


@settings(max_examples=300, deadline=None, database=None)
@given(prefix=st.sampled_from([b"", b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00", b"\x4d\x3c\xb2\xa1\x02\x00\x04\x00",
                               b"\xa1\xb2\xc3\xd4\x00\x02\x00\x04", b"\x0a\x0d\x0d\x0a", b"GMBU\x03\x02\x01\x00",
                               b"RTSS\x00\x01\x01\x00"]),
       body=st.binary(max_size=3000), sizes=st.lists(st.integers(1, 700), min_size=1, max_size=4))
def test_random_bytes_never_crash(scratch, prefix, body, sizes):
    data = prefix + body
    scratch.write_bytes(data)
    whole = analyse_whole(scratch)
    assert analyse_chunks(data, sizes) == whole


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(base=st.sampled_from(BASES), mutations=st.lists(mutation, min_size=1, max_size=3))
def test_cli_never_prints_a_traceback(corpus, base, mutations):
    from tests.helpers.cli import run

    with tempfile.NamedTemporaryFile(suffix=".pcap") as f:
        f.write(mutate(corpus[base], mutations))
        f.flush()
        for args in (("-o", "json"), ("--stream", "0")):
            r = run("analyze", f.name, *args)
            assert "Traceback" not in r.stderr + r.stdout
            # NOT_FOUND: --stream 0 of a file with no stream; UNSUPPORTED_LINK: a link type field hit
            allowed = (ExitCode.OK, ExitCode.BAD_INPUT, ExitCode.UNSUPPORTED_LINK) + \
                ((ExitCode.NOT_FOUND,) if args[0] == "--stream" else ())
            assert r.code in allowed, (r.code, r.stderr)
            if r.code != ExitCode.OK:
                assert r.stderr.startswith("kubectl-whose: error: ") and r.stderr.count("\n") == 1, r.stderr
            elif args[0] == "-o":
                json.loads(r.stdout)


@pytest.mark.parametrize("data, why", [
    (b"", "empty"),
    (b"\xd4\xc3\xb2\xa1", "header cut"),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 4, "not a capture"),
    (b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x4d\x3c\x2b\x1a" + b"\x00" * 4, "pcapng section header cut"),
])
def test_unreadable_inputs_are_bad_input_with_one_line(tmp_path, data, why):
    from tests.helpers.cli import run

    path = tmp_path / "bad.pcap"
    path.write_bytes(data)
    r = run("analyze", str(path))
    assert r.code == ExitCode.BAD_INPUT, (why, r.code, r.stderr)
    assert r.stderr.startswith("kubectl-whose: error: ") and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
