"""Zeek's own test baselines (../shared/external/zeek/) as an oracle for `state` and `history`.

The folder holds traces from Zeek's test suite and the conn.log Zeek wrote for each (`index.tsv`
names the test, the trace, the baseline and the flags, see its README). This module reads a
baseline, runs our analysis on its trace and pairs every TCP/UDP connection Zeek logged with one of
our streams.

How connections are matched, since btest masks `ts` in most baselines:
* by protocol and the unordered pair of endpoints (Zeek's 5-tuple without orientation: our streams
  are tshark's, keyed on the unordered pair);
* when a pair has several connections on either side (Zeek splits a 4-tuple after a time-out, tshark
  on port reuse), by start time where `ts` is not masked; else by the total packet count, then by the
  duration, then in log order (Zeek writes a connection when it ends; our rows are busiest first, so
  both sides are put in a canonical order before pairing).
A connection left without a partner on our side is reported `missing`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

def _find_zeek_dir() -> Path:
    """$KUBECTL_WHOSE_ZEEK_DIR, else the first `shared/external/zeek` beside the repository or above it
    (the main checkout has it at ../shared, a worktree a few levels further up)."""
    if os.environ.get("KUBECTL_WHOSE_ZEEK_DIR"):
        return Path(os.environ["KUBECTL_WHOSE_ZEEK_DIR"])
    repo = Path(__file__).resolve().parents[2]
    for parent in repo.parents:
        if (parent / "shared" / "external" / "zeek").is_dir():
            return parent / "shared" / "external" / "zeek"
    return repo.parent / "shared" / "external" / "zeek"


ZEEK_DIR = _find_zeek_dir()

# Zeek's column names, and the ones a few logging-framework tests renamed them to
_ALIASES = {"orig_h": ("id.orig_h", "id_orig_h", "src", "src_ip"), "orig_p": ("id.orig_p", "id_orig_p", "src_port"),
            "resp_h": ("id.resp_h", "id_resp_h", "dst", "dst_ip"), "resp_p": ("id.resp_p", "id_resp_p", "dst_port")}


def zeek_unavailable_reason() -> Optional[str]:
    if not (ZEEK_DIR / "index.tsv").is_file():
        return f"Zeek's test baselines are not here ({ZEEK_DIR}/index.tsv missing; they live in ../shared/external/zeek)"
    return None


@dataclass(frozen=True)
class Run:
    """One row of index.tsv: a Zeek test that ran one trace."""

    test: str
    trace: Path
    baseline: Path
    flags: Tuple[str, ...]

    @property
    def bare(self) -> bool:  # zeek -b: only the analyzers the test script loads (fewer likely server ports)
        return "-b" in self.flags

    @property
    def checksums_ignored(self) -> bool:  # zeek -C
        return "-C" in self.flags


def runs() -> List[Run]:
    out = []
    lines = (ZEEK_DIR / "index.tsv").read_text().splitlines()
    for line in lines[1:]:
        test, _file, trace, baseline, flags = line.split("\t")[:5]
        out.append(Run(test, ZEEK_DIR / trace, ZEEK_DIR / baseline, tuple(flags.split()) if flags != "-" else ()))
    return out


def traces() -> List[Path]:
    """Every distinct trace the index names."""
    return sorted({r.trace for r in runs()})


@dataclass
class ZeekConn:
    ts: Optional[float]
    proto: str
    orig: str  # "ip:port" / "[ip]:port", as our rows write endpoints
    resp: str
    duration: Optional[float]
    state: str
    history: str
    orig_pkts: Optional[int]
    resp_pkts: Optional[int]
    tunnel: bool  # Zeek found it inside a tunnel (tunnel_parents set)


def _endpoint(host: str, port: str) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def read_conn_log(path: Path) -> List[ZeekConn]:
    names: List[str] = []
    conns = []
    for line in path.read_text().splitlines():
        if line.startswith("#fields"):
            names = line.split("\t")[1:]
            continue
        if line.startswith("#") or not line.strip():
            continue
        row = dict(zip(names, line.split("\t")))
        get = lambda key: next((row[a] for a in _ALIASES[key] if a in row), None)  # noqa: E731
        proto = row.get("proto")
        if proto not in ("tcp", "udp"):
            continue  # ICMP and other transports have no stream here (README: not emulated)
        num = lambda key, kind=int: None if row.get(key) in (None, "-", "(empty)") or "X" in row[key] \
            else kind(row[key])  # noqa: E731
        history = row.get("history", "-")
        conns.append(ZeekConn(num("ts", float), proto, _endpoint(get("orig_h"), get("orig_p")),
                              _endpoint(get("resp_h"), get("resp_p")), num("duration", float),
                              row.get("conn_state", "-"), "" if history == "-" else history,
                              num("orig_pkts"), num("resp_pkts"), row.get("tunnel_parents", "-") not in ("-", "(empty)")))
    return conns


@dataclass
class Pair:
    zeek: ZeekConn
    ours: Optional[dict]  # the stream row, None when no stream of ours matched

    @property
    def state_equal(self) -> bool:
        return self.ours is not None and self.ours["state"] == self.zeek.state

    @property
    def history_equal(self) -> bool:
        return self.ours is not None and self.ours["history"] == self.zeek.history

    def packets(self) -> Optional[Tuple[int, int]]:
        """Our packets in Zeek's directions (orig, resp)."""
        if self.ours is None:
            return None
        if self.ours["client"] == self.zeek.orig:
            return self.ours["client_packets"], self.ours["server_packets"]
        return self.ours["server_packets"], self.ours["client_packets"]

    @property
    def packets_equal(self) -> bool:
        return self.zeek.orig_pkts is not None and self.packets() == (self.zeek.orig_pkts, self.zeek.resp_pkts)

    def describe(self) -> str:
        z, o = self.zeek, self.ours
        ours = "no stream" if o is None else f"{o['proto']}/{o['index']} {o['state']} {o['history']!r} pkts {self.packets()}"
        return f"{z.proto} {z.orig}→{z.resp}: zeek {z.state} {z.history!r} pkts {(z.orig_pkts, z.resp_pkts)}; ours {ours}"


def _pair_key(proto: str, a: str, b: str) -> tuple:
    return (proto,) + tuple(sorted((a, b)))


def match(conns: Sequence[ZeekConn], streams: Sequence[dict]) -> List[Pair]:
    """Pair each Zeek connection with one of our stream rows (see the module's docstring)."""
    ours: Dict[tuple, List[dict]] = {}
    for s in sorted(streams, key=lambda s: s["index"]):
        ours.setdefault(_pair_key(s["proto"], s["client"], s["server"]), []).append(s)
    theirs: Dict[tuple, List[ZeekConn]] = {}
    for c in conns:
        theirs.setdefault(_pair_key(c.proto, c.orig, c.resp), []).append(c)
    pairs = []
    for key, group in theirs.items():
        mine = list(ours.get(key, []))
        if len(group) > 1 or len(mine) > 1:
            if all(c.ts is not None for c in group):
                group = sorted(group, key=lambda c: c.ts)
                mine.sort(key=lambda s: s["first_abs_ts"])
            else:
                group = sorted(group, key=lambda c: (-((c.orig_pkts or 0) + (c.resp_pkts or 0)), -(c.duration or 0)))
                mine.sort(key=lambda s: (-s["packets"], -s["duration"]))
        for i, c in enumerate(group):
            pairs.append(Pair(c, mine[i] if i < len(mine) else None))
    return pairs


@dataclass
class RunReport:
    run: Run
    pairs: List[Pair] = field(default_factory=list)
    error: Optional[str] = None

    def counts(self) -> Tuple[int, int, int, int, int]:
        """(connections, state equal, history equal, packets compared, packets equal)."""
        p = self.pairs
        compared = [x for x in p if x.zeek.orig_pkts is not None]
        return (len(p), sum(x.state_equal for x in p), sum(x.history_equal for x in p), len(compared),
                sum(x.packets_equal for x in compared))


def compare_run(run: Run, engine: Optional[str] = None) -> RunReport:
    from kubectl_whose.analysis.streams import analyze_file
    from kubectl_whose.errors import WhoseError

    report = RunReport(run)
    try:
        summary = analyze_file(str(run.trace), engine=engine)
    except WhoseError as e:
        report.error = str(e)
        summary = None
    report.pairs = match(read_conn_log(run.baseline), list(summary.iter_streams()) if summary else [])
    return report
