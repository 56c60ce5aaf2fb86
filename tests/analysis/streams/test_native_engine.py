"""The native engine (`analysis/streams/native/_engine.c`) held to the answers of the Python engine it transcribes.

tshark judges the engine that runs by default (test_analyze_oracle.py and test_crafted_oracle.py use the
native one when it is built, as CI does); here the two engines meet on the same inputs, so that both
agree with tshark: every real capture scenario with every `--stream N` table and each `--proto`, the
crafted oracle captures, hypothesis-made exchanges (including the mid-conversation SYNs, time going
backwards and zero timestamps the tshark tests leave out), mutated captures, live snapshots and any
chunking of the input. Compared: the summary dict, the `-o json` text, the live view and the errors.
"""
from __future__ import annotations

import io
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubectl_whose.analysis.streams.engine import choose, native_engine
from kubectl_whose.analysis.streams import CaptureAnalyzer
from kubectl_whose.errors import ExitCode, WhoseError
from kubectl_whose.render.summary_json import write_json
from tests.helpers import pcapgen as g
from tests.helpers.captures import SCENARIOS as REAL_SCENARIOS
from tests.analysis.streams.test_fuzz import mutate
from tests.helpers.cli import run

needs_native = pytest.mark.skipif(native_engine() is None and not os.environ.get("CI"),
                                  reason="the native engine is not built here (no C compiler at install time)")
T0 = 1_700_000_000 * 10**9


def test_native_engine_is_built_where_ci_runs():
    if native_engine() is None:
        assert not os.environ.get("CI"), "CI must test the native engine: `pip install -e .` did not build " \
                                         "kubectl_whose/analysis/streams/native/_engine.c (see the pip output)"
        pytest.skip("the native engine is not built here")
    assert choose() == "native" and choose("python") == "python"


class Recorder:
    """An engine seen through its interface: every call the analyzer makes, with its arguments and answer."""

    def __init__(self, engine, log: list):
        self._engine, self._log, self.name = engine, log, engine.name

    def __getattr__(self, method):
        bound = getattr(self._engine, method)

        def call(*args):
            answer = bound(*args)
            self._log.append((method, _plain(args), _plain(answer)))
            return answer

        return call


def _plain(value):
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a reader window: where it starts
        return (type(value).__name__, value.pos, value.frames, value.big_endian)
    if isinstance(value, (tuple, list)):
        return type(value)(_plain(v) for v in value)
    return "general" if callable(value) else value


def interface_methods() -> set:
    from kubectl_whose.analysis.streams.engine import StreamEngine

    return {n for n in vars(StreamEngine) if not n.startswith("_") and callable(getattr(StreamEngine, n))}


# How records reach the table is the engine's own business: the native reader hands a block it cannot take (a
# timestamp beyond 64 bits of nanoseconds) back to Python, which feeds it with timestamp()/frame(). What the table
# answers must not differ.
FEEDING = {"feed_pcap", "feed_pcapng", "timestamp", "frame"}


def engine_answers(engine, log: list) -> list:
    """The answers the analyzer asked for while feeding (live snapshots), then every result method of the
    interface on every row."""
    n = engine.order(True, True)
    out = [call for call in log if call[0] not in FEEDING] + [("order", n), ("counts", engine.counts()), ("join_candidates", engine.join_candidates()),
                       ("top", engine.top(3)), ("json_rows", engine.json_rows(0, n, T0, ",")),
                       ("detail_endpoints", engine.detail_endpoints("tcp"), engine.detail_endpoints("udp")),
                       ("take_detail", engine.take_detail())]
    out += [("row", i, engine.row(i, T0), engine.is_udp(i), engine.json_rows(i, i + 1, T0, "")) for i in range(n)]
    return out


def outcome(data: bytes, engine: str, chunk: int = 1 << 20, **kw):
    """Everything a user can see of one analysis: the dict, the JSON text, live snapshots; or the error.
    Last, the engine's answers method by method (`engine_answers`)."""
    a = CaptureAnalyzer(engine=engine, **kw)
    assert a.engine.name == engine
    log: list = []
    a.engine = Recorder(a.engine, log)
    snaps = []
    try:
        for i in range(0, len(data), chunk):
            a.feed(data[i:i + chunk])
            snaps.append(a.snapshot(3).to_dict())
        summary = a.finish()
    except WhoseError as e:
        return ("error", e.code, str(e), log)
    out = io.StringIO()
    write_json(summary, out)
    return summary.to_dict(), out.getvalue(), list(summary.iter_json_rows()), summary.row_counts(), \
        summary.join_candidates(), snaps, engine_answers(a.engine._engine, log)


def assert_same(data: bytes, chunk: int = 1 << 20, **kw):
    native, python = outcome(data, "native", chunk, **kw), outcome(data, "python", chunk, **kw)
    if native[0] == "error" or python[0] == "error":
        assert native == python
        return native
    for what, n, p in zip(("dict", "json text", "json rows", "row counts", "join candidates", "snapshots",
                           "engine methods"), native, python):
        if n != p and what == "dict":
            for key in n:
                if n[key] != p[key] and key == "streams":
                    diff = next((a, b) for a, b in zip(n[key], p[key]) if a != b)
                    pytest.fail(f"streams differ, first at\n native {diff[0]}\n python {diff[1]}")
                assert n[key] == p[key], key
        if n != p and what == "engine methods":
            first = next(i for i, (a, b) in enumerate(zip(n, p)) if a != b) if len(n) == len(p) else min(len(n),
                                                                                                        len(p))
            pytest.fail(f"the engines answer differently, first at call {first}:\n native {n[first:first + 1]}\n"
                        f" python {p[first:first + 1]}")
        assert n == p, what
    return native


def test_both_engines_implement_the_whole_interface():
    from kubectl_whose.analysis.streams.python.engine import PythonEngine

    methods = interface_methods()
    assert {"tcp_packet", "feed_pcap", "feed_pcapng", "row", "take_detail"} <= methods
    assert not [m for m in methods if not callable(getattr(PythonEngine(), m, None))]
    if native_engine() is not None:
        from kubectl_whose.analysis.streams.native.engine import NativeEngine

        assert not [m for m in methods if not callable(getattr(NativeEngine(native_engine()), m, None))]


@needs_native
@pytest.mark.parametrize("scenario", REAL_SCENARIOS)
def test_real_captures_give_the_same_summary_tables_and_json(scenario, captures):
    data = captures.get(scenario).path.read_bytes()
    whole = assert_same(data)
    summary = whole[0]
    assert summary["packets"] > 0
    tcp = sorted(r["index"] for r in summary["streams"] if r["proto"] == "tcp")
    for index in tcp[:3] + tcp[-1:]:
        detail = assert_same(data, detail_stream=index)[0]["detail"]
        assert detail["packets"], f"--stream {index} of {scenario} has no rows"
    udp = [r["index"] for r in summary["streams"] if r["proto"] == "udp"]
    if udp:
        assert_same(data, proto="udp", detail_stream=udp[0], detail_proto="udp")
    assert_same(data, chunk=4093, proto="tcp")


@needs_native
def test_crafted_oracle_captures_give_the_same_answers():
    from tests.analysis.streams.test_crafted_oracle import SCENARIOS as CRAFTED, random_conversation, random_mix

    inputs = {name: make() for name, make in CRAFTED.items()}
    inputs.update({f"random_{s}": g.pcap(random_conversation(s), nano=True) for s in range(20)})
    inputs.update({f"mix_{s}": g.pcap(random_mix(s), nano=True) for s in range(20)})
    for name, data in inputs.items():
        summary = assert_same(data, chunk=777)[0]
        assert summary["streams"], name
        assert_same(data, detail_stream=0)


# --- hypothesis-made exchanges ---------------------------------------------------------------------

ENDS = [("10.0.0.1", "10.0.0.2", 40000, 80), ("10.0.0.1", "10.0.0.2", 40001, 80), ("10.0.0.3", "10.0.0.2", 40000, 80),
        ("fd00::1", "fd00::2", 40000, 443)]
FLAGS = st.one_of(st.sampled_from([g.ACK, g.ACK, g.PSH | g.ACK, g.SYN, g.SYN | g.ACK, g.FIN | g.ACK, g.RST,
                                   g.RST | g.ACK, g.FIN | g.RST, g.SYN | g.FIN, 0]), st.integers(0, 0xFFF))
SEQ = st.one_of(st.sampled_from([0, 1, 999, 1000, 1001, 5000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF]),
                st.integers(0, 0xFFFFFFFF))
packet = st.tuples(st.integers(0, len(ENDS) - 1), st.integers(0, 1), FLAGS, SEQ, SEQ,
                   st.sampled_from([0, 1, 64, 502, 65535]), st.sampled_from([0, 0, 1, 10, 1448]),
                   st.sampled_from([0, 1, 1000, 3 * 10**6, 10**9, -1000]), st.sampled_from([None, 0, 7, 14, 200]),
                   st.booleans())


def exchange_records(packets, udp_every: int) -> list:
    t, recs = T0, []
    for i, (end, d, flags, seq, ack, win, size, dt, scale, dup) in enumerate(packets):
        a, b, pa, pb = ENDS[end]
        if d:
            a, b, pa, pb = b, a, pb, pa
        t += dt
        if udp_every and i % udp_every == 0:
            l4, proto = g.udp(pa + 1000, pb, b"u" * size), 17
        else:
            opts = g.wscale(scale) if scale is not None else b""
            l4, proto = g.tcp(pa, pb, seq, ack, flags, win, b"z" * size, opts), 6
        ip = g.ipv6(a, b, l4, nxt=proto) if ":" in a else g.ipv4(a, b, l4, proto=proto)
        recs.append((max(t, 0), g.eth(ip, 0x86DD if ":" in a else 0x0800)))
        if dup:
            recs.append(recs[-1])
    return recs


@needs_native
@settings(max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(packets=st.lists(packet, min_size=1, max_size=60), udp_every=st.sampled_from([0, 0, 3]),
       detail=st.integers(0, 4), chunk=st.sampled_from([1 << 20, 97]))
def test_random_exchanges_give_the_same_answers(packets, udp_every, detail, chunk):
    data = g.pcap(exchange_records(packets, udp_every), nano=True)
    assert_same(data, chunk=chunk, detail_stream=detail)


@needs_native
@settings(max_examples=60, deadline=None, database=None)
@given(packets=st.lists(packet, min_size=1, max_size=30), linktype=st.sampled_from([1, 113, 276, 101]))
def test_other_link_types_and_pcapng_give_the_same_answers(packets, linktype):
    recs = exchange_records(packets, 0)
    if linktype != 1:
        conv = {113: lambda f: g.sll(f[14:], int.from_bytes(f[12:14], "big")),
                276: lambda f: g.sll2(f[14:], int.from_bytes(f[12:14], "big")), 101: lambda f: f[14:]}[linktype]
        recs = [(t, conv(f)) for t, f in recs]
    assert_same(g.pcap(recs, linktype=linktype), detail_stream=0)
    ng = g.shb() + g.idb(linktype, tsresol=9) + b"".join(g.epb(0, t, f) for t, f in recs)
    assert_same(ng, chunk=333, detail_stream=0)


@needs_native
@settings(max_examples=200, deadline=None, database=None)
@given(base=st.sampled_from(["http_short", "pcapng", "any_sll2", "vxlan_4789", "loss", "ipv6"]),
       mutations=st.lists(st.tuples(st.sampled_from(["flip", "cut", "insert", "delete", "field"]),
                                    st.integers(0, 10**6), st.integers(0, 7), st.booleans()), min_size=1, max_size=4))
def test_mutated_captures_give_the_same_answers_or_the_same_error(captures, base, mutations):
    data = captures.get(base).path.read_bytes()
    muts = [(k, p, (b"\x00\xff" * (x + 1)) if k == "insert" else x * 1000 if k == "field" else x, y)
            for k, p, x, y in mutations]
    assert_same(mutate(data, muts), chunk=4096)


# --- choosing the engine ------------------------------------------------------------------------------

def test_engine_choice_errors_are_one_line_with_their_exit_code(monkeypatch, tmp_path):
    cap = tmp_path / "one.pcap"
    cap.write_bytes(g.pcap(g.http_conversation()))
    r = run("analyze", str(cap), env={"KUBECTL_WHOSE_ENGINE": "fast"})
    assert r.code == ExitCode.USAGE and "KUBECTL_WHOSE_ENGINE='fast': use native, python or auto" in r.stderr
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1
    from kubectl_whose.analysis.streams import engine

    monkeypatch.setattr(engine, "native_engine", lambda: None)
    with pytest.raises(WhoseError) as e:
        engine.choose("native")
    assert e.value.code == ExitCode.TOOL_MISSING and "not built" in str(e.value)
    assert engine.choose() == "python"


@needs_native
def test_forced_python_engine_prints_what_the_native_one_prints(tmp_path):
    cap = tmp_path / "two.pcap"
    cap.write_bytes(g.pcap(g.http_conversation() + g.http_conversation(cport=40001, t0=T0 + 10**9)))
    outs = {e: run("analyze", str(cap), "-o", "json", env={"KUBECTL_WHOSE_ENGINE": e}) for e in ("python", "native")}
    assert outs["python"].code == outs["native"].code == 0
    assert outs["python"].stdout == outs["native"].stdout and '"index": 1' in outs["native"].stdout


@needs_native
def test_a_pcapng_timestamp_beyond_64_bits_is_not_a_crash_and_the_summary_keeps_the_files_time():
    frames = g.http_conversation()
    data = g.shb() + g.idb(1, tsresol=9) + b"".join(g.epb(0, (1 << 64) - 1 - i, f) for i, (_t, f) in
                                                      enumerate(frames))
    a = CaptureAnalyzer(engine="native")
    a.feed(data)
    s = a.finish()
    assert s.packets == len(frames) and s.streams[0]["packets"] == len(frames)
    assert s.first_ts == ((1 << 64) - 1) / 1e9  # frame 1's time as the file says it (the table clamps its own)
    python = CaptureAnalyzer(engine="python")
    python.feed(data)
    assert python.finish().first_ts == s.first_ts


@needs_native
def test_a_history_of_thousands_of_letters_is_kept_whole():
    """Zeek writes F again whenever a FIN ends at another relative sequence number: a peer sending
    70,000 FINs, each one byte further, gets a 70,001-letter history (past any 16-bit length), in
    both engines. (Repeated SYN-ACKs would not do: each re-initialises the endpoint's start seq.)"""
    syn = [(T0, g.eth(g.ipv4("10.0.0.1", "10.0.0.2", g.tcp(40000, 80, 999, 0, g.SYN))))]
    fins = [(T0 + i * 1000, g.eth(g.ipv4("10.0.0.1", "10.0.0.2", g.tcp(40000, 80, 1000 + i, 0, g.FIN))))
            for i in range(1, 70_001)]
    summary = assert_same(g.pcap(syn + fins, nano=True))[0]
    (row,) = summary["streams"]
    assert row["history"] == "S" + "F" * 70_000 and row["flags"]["FIN"] == 70_000


@needs_native
def test_seconds_in_the_json_rows_are_written_as_python_writes_them():
    """The C writer prints start/duration/handshake_rtt straight from integer nanoseconds; Python's
    repr(round(ns / 1e9, 9)) and repr(ns / 1e9) are the reference, including exponent notation
    below 1e-4, negative times and the range where it falls back to Python's own conversion."""
    import random

    from kubectl_whose.analysis.streams.native._engine import seconds_text

    rnd = random.Random(7)
    values = [0, 1, -1, 5, 15, 99_999, 100_000, -100_000, 999_999_999, 10**9, -10**9, 4 * 10**15 - 1, 4 * 10**15,
              -4 * 10**15, 5 * 10**15, 2**62, -(2**62), 2**63 - 1, -(2**63) + 1]
    values += [rnd.randint(-10**16, 10**16) for _ in range(20_000)]
    values += [rnd.choice([1, -1]) * rnd.randint(0, 10**9) * 10**rnd.randint(0, 6) for _ in range(20_000)]
    assert [seconds_text(v, True) for v in values] == [repr(round(v / 1e9, 9)) for v in values]
    assert [seconds_text(v, False) for v in values] == [repr(v / 1e9) for v in values]


@needs_native
def test_the_c_plain_link_types_are_the_python_table():
    """One link-type table: `native/decode.h` takes exactly the plain link types of `linktypes.PLAIN`,
    at the same offsets, and every plain link type is one the general decoder reads too."""
    from kubectl_whose.analysis.streams.native._engine import linktypes
    from kubectl_whose.analysis.pcap.linktypes import LINKTYPES, PLAIN

    assert linktypes() == PLAIN
    assert set(PLAIN) <= set(LINKTYPES) and {1, 113, 276} <= set(PLAIN)
