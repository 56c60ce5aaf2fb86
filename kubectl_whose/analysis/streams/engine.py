"""The stream engine's one interface, and which implementation analyses a capture.

Two engines compute the same rows (tshark 4.0.17's stream figures, Zeek's states): `PythonEngine`
(`analysis.streams.python.engine`: `streams`, `tcp_analysis`, `conn_state`), the reference that runs
anywhere, and its transcription in C (`_engine.c`, wrapped by `analysis.streams.native.engine`), built by
`pip install` when a compiler is there and skipped otherwise (a krew archive is pure Python).
`CaptureAnalyzer` holds one of them and never asks which; tests/analysis/streams/test_native_engine.py compares the
two method by method, and every capture goes through tshark too.

`KUBECTL_WHOSE_ENGINE=python` forces the Python engine (to compare, or to rule the C one out);
`=native` makes a missing native engine an error instead of a silent fallback (CI sets it).
"""
from __future__ import annotations

import os
from typing import Callable, List, Optional, Protocol, Tuple

from kubectl_whose.errors import ExitCode, WhoseError

ENGINES = ("native", "python")
ENV = "KUBECTL_WHOSE_ENGINE"

# general(frame_no, ts_ns, linktype, orig_len, frame): the analyzer's general decoder, for frames an
# engine's plain-frame decoder declines; its events come back through tcp_packet/udp_packet/..._quote
General = Callable[[int, int, int, int, bytes], None]
# (pos, frames, packets, bytes, first_ts|None, last_ts|None, stop): how far a feed got. `stop` of
# feed_pcap: the impossible record length it stopped before, else -1; of feed_pcapng: 1 when it
# stopped at a block that is not a plain enhanced packet block (the reader takes that one), else 0.
Fed = Tuple[int, int, int, int, Optional[int], Optional[int], int]


class StreamEngine(Protocol):
    """Constructed as `Engine(want_tcp, want_udp, detail_tcp, detail_udp)` (-1: no --stream N)."""

    name: str  # "python" | "native"

    # events (addresses packed, 4 or 16 bytes; fields as `analysis.pcap.decode` documents them)
    def tcp_packet(self, frame: int, ts: int, orig_len: int, src: bytes, dst: bytes, sport: int, dport: int,
                   seq: int, ack: int, flags: int, win: int, seglen: int, wscale: int, encap) -> None: ...
    def udp_packet(self, frame: int, ts: int, orig_len: int, src: bytes, dst: bytes, sport: int, dport: int,
                   paylen: int, encap) -> None: ...
    def tcp_quote(self, frame: int, ts: int, orig_len: int, src: bytes, dst: bytes, sport: int, dport: int,
                  seq: int, ack: int, flags: int, win: int, encap) -> None: ...
    def udp_quote(self, frame: int, ts: int, orig_len: int, src: bytes, dst: bytes, sport: int, dport: int,
                  paylen: int, encap) -> None: ...

    # frames and records
    def frame(self, frame_no: int, ts: int, linktype: int, orig_len: int, data: bytes) -> bool:
        """Decode a plain frame into the table; False: it is not plain, take the general path."""
    def timestamp(self, ts: int) -> int:
        """A record's timestamp as this engine keeps it (the native one clamps to 64 bits)."""
    def feed_pcap(self, window, general: General) -> Fed:
        """Every complete record of a `capture_file.PcapWindow`."""
    def feed_pcapng(self, window, general: General) -> Fed:
        """The enhanced packet blocks at the start of a `capture_file.PcapngWindow`."""

    # results: rows are positions in the order `order()` sorted them
    def counts(self) -> Tuple[int, int]:
        """(TCP streams, UDP streams) allocated, quoted-only ones included."""
    def order(self, tcp: bool, udp: bool) -> int:
        """Sort the streams with packets (busiest first, then index, TCP first); their number."""
    def row(self, i: int, file_first: int) -> tuple:
        """Row i in `rows.ROW_KEYS` order, `flags` as (SYN, FIN, RST)."""
    def json_rows(self, lo: int, hi: int, file_first: int, sep: str) -> str:
        """Rows lo..hi-1 as compact JSON objects joined by sep."""
    def is_udp(self, i: int) -> bool: ...
    def join_candidates(self) -> List[int]:
        """Rows a NAT-split join can use (`analysis.pod.connections`)."""
    def top(self, n: int) -> List[tuple]:
        """The n busiest streams so far: (proto, index, client, server, packets, bytes)."""
    def detail_endpoints(self, proto: str) -> Optional[Tuple[str, str]]:
        """(flow 0, flow 1) endpoints of the --stream N stream, None when it has no packet."""
    def take_detail(self) -> list:
        """The raw per-packet tuples of --stream N (`summary.detail_rows`), handed over once."""
    def memory(self) -> int:
        """Bytes the stream table holds (native), 0 where not measured."""


def native_engine():
    """The `Engine` class of the compiled module, or None when it was not built."""
    try:
        from kubectl_whose.analysis.streams.native._engine import Engine
    except ImportError:
        return None
    return Engine


def choose(engine: Optional[str] = None) -> str:
    """'native' or 'python': the argument, else $KUBECTL_WHOSE_ENGINE, else the best available."""
    wanted = (engine or os.environ.get(ENV) or "auto").strip().lower()
    if wanted not in ENGINES + ("auto",):
        raise WhoseError(f"{ENV}={wanted!r}: use native, python or auto", ExitCode.USAGE)
    if wanted == "python":
        return "python"
    if native_engine() is not None:
        return "native"
    if wanted == "native":
        raise WhoseError("the native analysis engine is not built (kubectl_whose/analysis/streams/native/_engine.c); "
                         f"reinstall with a C compiler (pip install --force-reinstall kubectl-whose) or unset {ENV}",
                         ExitCode.TOOL_MISSING)
    return "python"


def make_engine(name: str, want_tcp: bool, want_udp: bool, detail_tcp: int, detail_udp: int) -> StreamEngine:
    """A new engine of that name ('native' or 'python', as `choose` returns it)."""
    if name == "native":
        from kubectl_whose.analysis.streams.native.engine import NativeEngine

        return NativeEngine(native_engine(), want_tcp, want_udp, detail_tcp, detail_udp)
    from kubectl_whose.analysis.streams.python.engine import PythonEngine

    return PythonEngine(want_tcp, want_udp, detail_tcp, detail_udp)


def analysis_engine() -> Tuple[str, Optional[str]]:
    """The engine `analyze`/`capture` will use and, when it is the Python one, why.

    Raises the same WhoseError those commands would (a bad or unsatisfiable KUBECTL_WHOSE_ENGINE),
    so `version` never claims an engine the analysis would refuse to run.
    """
    engine = choose()
    if engine == "native":
        return engine, None
    built = native_engine() is not None
    if (os.environ.get(ENV) or "").strip().lower() == "python":
        return engine, f"forced by {ENV}=python; the native engine is {'' if built else 'not '}built"
    # an ImportError other than "no such module" (a foreign libc, a damaged file) lands here too
    return engine, "the native engine is not built in this install (a pure-Python archive, or no C compiler)"
