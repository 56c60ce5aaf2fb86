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
  both sides are put in a canonical order before pairing);
* some tests wrote their log through zeek-cut with a few columns only (`uid service history`): such
  a row is paired with a stream that fits the columns it has (hosts, responder port, protocol), one
  with the same history first, else the first by frame. With one connection per trace, as in all of
  them but a few, that is exact; it could only hide two connections swapping their histories.
A connection left without a partner on our side has `ours` None.
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
    proto: Optional[str]  # None: the log has no proto column
    orig: Optional[str]  # "ip:port" / "[ip]:port", as our rows write endpoints; None: not in the log
    resp: Optional[str]
    duration: Optional[float]
    state: Optional[str]  # None: not in the log
    history: str
    orig_pkts: Optional[int]
    resp_pkts: Optional[int]
    tunnel: bool  # Zeek found it inside a tunnel (tunnel_parents set)
    orig_h: Optional[str] = None  # what a zeek-cut log kept of the endpoints
    resp_h: Optional[str] = None
    resp_p: Optional[int] = None


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
        if not names:  # a zeek-cut log: its first line names the columns
            names = line.split("\t")
            continue
        row = dict(zip(names, line.split("\t")))
        get = lambda key: next((row[a] for a in _ALIASES[key] if a in row), None)  # noqa: E731
        proto = row.get("proto")
        if proto is not None and proto not in ("tcp", "udp"):
            continue  # ICMP and other transports have no stream here (README: not emulated)
        num = lambda key, kind=int: None if row.get(key) in (None, "-", "(empty)") or "X" in row[key] \
            else kind(row[key])  # noqa: E731
        history = row.get("history", "-")
        orig_h, orig_p, resp_h, resp_p = get("orig_h"), get("orig_p"), get("resp_h"), get("resp_p")
        full = None not in (orig_h, orig_p, resp_h, resp_p)
        conns.append(ZeekConn(num("ts", float), proto, _endpoint(orig_h, orig_p) if full else None,
                              _endpoint(resp_h, resp_p) if full else None, num("duration", float),
                              row.get("conn_state"), "" if history == "-" else history, num("orig_pkts"),
                              num("resp_pkts"), row.get("tunnel_parents", "-") not in ("-", "(empty)"),
                              orig_h, resp_h, int(resp_p) if resp_p not in (None, "-") else None))
    return conns


@dataclass
class Pair:
    zeek: ZeekConn
    ours: Optional[dict]  # the stream row, None when no stream of ours matched

    @property
    def state_equal(self) -> bool:
        """Equal, or not in Zeek's log."""
        return self.ours is not None and self.zeek.state in (None, self.ours["state"])

    @property
    def history_equal(self) -> bool:
        return self.ours is not None and self.ours["history"] == self.zeek.history

    def packets(self) -> Optional[Tuple[int, int]]:
        """Our packets in Zeek's directions (orig, resp)."""
        if self.ours is None:
            return None
        orig = self.zeek.orig or self._orig_from_history()
        if self.ours["client"] == orig:
            return self.ours["client_packets"], self.ours["server_packets"]
        return self.ours["server_packets"], self.ours["client_packets"]

    @property
    def packets_equal(self) -> bool:
        return self.zeek.orig_pkts is not None and self.packets() == (self.zeek.orig_pkts, self.zeek.resp_pkts)

    def _orig_from_history(self) -> Optional[str]:
        """A zeek-cut log without endpoints: our Zeek view's originator sends the upper-case letters."""
        o = self.ours
        return o["client"] if o["client_packets"] or not o["server_packets"] else o["server"]

    def describe(self) -> str:
        z, o = self.zeek, self.ours
        ours = "no stream" if o is None else f"{o['proto']}/{o['index']} {o['state']} {o['history']!r} pkts {self.packets()}"
        return f"{z.proto} {z.orig}→{z.resp}: zeek {z.state} {z.history!r} pkts {(z.orig_pkts, z.resp_pkts)}; ours {ours}"


def _pair_key(proto: str, a: str, b: str) -> tuple:
    return (proto,) + tuple(sorted((a, b)))


def _fits(c: ZeekConn, s: dict) -> bool:
    """A stream fits what a zeek-cut row kept of its connection."""
    if c.proto is not None and c.proto != s["proto"]:
        return False
    ends = (s["client"], s["server"])
    hosts = {e.rsplit(":", 1)[0].strip("[]") for e in ends}
    if c.orig_h is not None and c.orig_h not in hosts or c.resp_h is not None and c.resp_h not in hosts:
        return False
    return c.resp_p is None or any(e.rsplit(":", 1)[1] == str(c.resp_p) for e in ends)


def match(conns: Sequence[ZeekConn], streams: Sequence[dict]) -> List[Pair]:
    """Pair each Zeek connection with one of our stream rows (see the module's docstring)."""
    ours: Dict[tuple, List[dict]] = {}
    for s in sorted(streams, key=lambda s: s["index"]):
        ours.setdefault(_pair_key(s["proto"], s["client"], s["server"]), []).append(s)
    theirs: Dict[tuple, List[ZeekConn]] = {}
    partial: List[ZeekConn] = []
    for c in conns:
        if c.orig is None or c.proto is None:
            partial.append(c)
        else:
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
    free = sorted((s for s in streams if not any(p.ours is s for p in pairs)), key=lambda s: s["first_frame"])
    for c in partial:
        fitting = [s for s in free if _fits(c, s)]
        pick = next((s for s in fitting if s["history"] == c.history), fitting[0] if fitting else None)
        if pick is not None:
            free.remove(pick)
        pairs.append(Pair(c, pick))
    return pairs


# Why a connection may differ from Zeek's baseline: the parts of Zeek not emulated, as README's "Zeek
# states" lists them. `explain` decides from the data which one applies; a difference none explains is
# a bug.
REASONS = {
    "checksum": "the run validates checksums (no -C) and tshark finds a bad checksum in the stream: Zeek "
                "drops those packets, we read like zeek -C",
    "gap": "Zeek wrote G/g: content gaps need Zeek's reassembler",
    "limits": "Zeek wrote X/x: one of Zeek's analysis limits was reached",
    "split": "Zeek logged this 4-tuple as more connections than tshark has streams, or stopped following "
             "it early (time-outs, Zeek's own reuse rule, an analyzer ending the connection)",
    "bare": "a -b run: only the test's analyzers are loaded, so fewer likely server ports; only the "
            "orientation differs (^, the letters' case)",
    "analyzer flip": "Zeek wrote ^ after the first letter: an application analyzer flipped the roles",
    "tshark": "same state and history, the packet counts are tshark's: it counts frames Zeek does not (ICMP "
              "errors quoting the stream's headers) or not the ones Zeek does (a FabricPath frame, whose "
              "inner frame tshark reads with an FCS, leaving its UDP header short)",
}


def _unflipped(history: str) -> str:
    return history.replace("^", "")


def explain(pair: Pair, run: Run, group: Tuple[int, int], bad_checksum: bool,
            tshark_packets: Optional[Tuple[int, int]]) -> Optional[str]:
    """The reason (a REASONS key) this pair may differ, None when nothing documented explains it.
    `group`: (Zeek connections, our streams) on the pair's 4-tuple; `tshark_packets`: tshark's
    (client, server) packets of the pair's stream."""
    z, o = pair.zeek, pair.ours
    if bad_checksum and not run.checksums_ignored:
        return "checksum"
    if any(c in z.history for c in "Gg"):
        return "gap"
    if any(c in z.history for c in "Xx"):
        return "limits"
    if group[0] > group[1] or o is None:
        return "split"
    ours_pkts = pair.packets()
    if z.orig_pkts is not None and ours_pkts[0] >= z.orig_pkts and ours_pkts[1] >= z.resp_pkts and \
            _unflipped(o["history"]).lower().startswith(_unflipped(z.history).lower()) and ours_pkts != \
            (z.orig_pkts, z.resp_pkts):
        return "split"
    if "^" in z.history[1:]:
        return "analyzer flip"
    if run.bare and _unflipped(z.history) in (_unflipped(o["history"]), _unflipped(o["history"]).swapcase()):
        return "bare"
    if pair.state_equal and pair.history_equal and tshark_packets == (o["client_packets"], o["server_packets"]):
        return "tshark"
    return None


def bad_checksum_streams(trace: Path) -> set:
    """Streams with a bad TCP/UDP checksum in some frame, as tshark finds them: ("tcp"|"udp", index)."""
    import subprocess

    argv = ["tshark", "-n", "-r", str(trace), "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
            "-T", "fields", "-E", "occurrence=l", "-e", "tcp.stream", "-e", "tcp.checksum.status",
            "-e", "udp.stream", "-e", "udp.checksum.status"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300).stdout
    bad = set()
    for line in out.splitlines():
        tcp, tcp_ok, udp, udp_ok = (line.split("\t") + [""] * 4)[:4]
        for proto, stream, ok in (("tcp", tcp, tcp_ok), ("udp", udp, udp_ok)):
            if stream and ok == "0":  # tshark's checksum status: 0 bad, 1 good, 2 not verified
                bad.add((proto, int(stream)))
    return bad


@dataclass
class RunReport:
    run: Run
    pairs: List[Pair] = field(default_factory=list)
    reasons: List[Optional[str]] = field(default_factory=list)  # per pair: why it differs (None: equal)
    error: Optional[str] = None

    def counts(self) -> Tuple[int, int, int, int, int, int]:
        """(connections, states in the log, states equal, histories equal, packets in the log, packets equal)."""
        p = self.pairs
        states = [x for x in p if x.zeek.state is not None]
        compared = [x for x in p if x.zeek.orig_pkts is not None]
        return (len(p), len(states), sum(x.state_equal for x in states), sum(x.history_equal for x in p),
                len(compared), sum(x.packets_equal for x in compared))

    def unexplained(self) -> List[Pair]:
        return [p for p, r in zip(self.pairs, self.reasons) if r == "?"]


def agrees(pair: Pair) -> bool:
    return pair.state_equal and pair.history_equal and (pair.zeek.orig_pkts is None or pair.packets_equal)


def compare_run(run: Run, engine: Optional[str] = None, oracle=None) -> RunReport:
    """Our rows for the run's trace against its baseline; `oracle(path)` is tshark_oracle.analyze
    (or a cache of it), asked only when a connection differs."""
    from kubectl_whose.analysis.streams import analyze_file
    from kubectl_whose.errors import WhoseError

    report = RunReport(run)
    try:
        summary = analyze_file(str(run.trace), engine=engine)
    except WhoseError as e:
        report.error = str(e)
        summary = None
    streams = list(summary.iter_streams()) if summary else []
    conns = read_conn_log(run.baseline)
    report.pairs = match(conns, streams)
    bad = truth = None
    zeek_n: Dict[tuple, int] = {}
    ours_n: Dict[tuple, int] = {}
    for c in conns:
        if c.orig is not None:
            key = _pair_key(c.proto, c.orig, c.resp)
            zeek_n[key] = zeek_n.get(key, 0) + 1
    for st in streams:
        key = _pair_key(st["proto"], st["client"], st["server"])
        ours_n[key] = ours_n.get(key, 0) + 1
    for pair in report.pairs:
        if agrees(pair):
            report.reasons.append(None)
            continue
        if bad is None:
            if oracle is None:
                from tests.helpers.tshark_oracle import analyze as oracle
            bad, truth = bad_checksum_streams(run.trace), oracle(run.trace).streams
        key = _pair_key(pair.zeek.proto, pair.zeek.orig, pair.zeek.resp) if pair.zeek.orig else None
        stream = (pair.ours["proto"], pair.ours["index"]) if pair.ours else None
        theirs = truth.get(stream)
        reason = explain(pair, run, (zeek_n.get(key, 0), ours_n.get(key, 0)) if key else (1, 1), stream in bad,
                         (theirs["client_packets"], theirs["server_packets"]) if theirs else None)
        report.reasons.append(reason or "?")
    return report
