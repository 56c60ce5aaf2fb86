"""What tshark (Debian 4.0.x) says about a capture, aggregated into the shape of our JSON contract.

One `tshark -T fields` pass per file gives every frame's fields; this module folds them into
per-stream figures exactly as the contract defines them (see `kubectl_whose.analysis.streams.summary`):
streams keyed by (proto, `tcp.stream` / `udp.stream`), bytes = `frame.len`, payload = `tcp.len` /
`udp.length - 8`, start = `frame.time_relative` of the stream's first frame, and so on.

Rules taken from tshark itself, not from our engine:
* Tunnels: tshark prints one value per occurrence, comma-joined ("outer,inner"). TCP is taken from
  the innermost layer; every UDP layer is its own conversation (the VXLAN carrier flow has a
  `udp.stream` too, so inner UDP streams are numbered after it), each paired with the IP layer that
  carries it (found by walking `frame.protocols`).
* A TCP/UDP header quoted inside an ICMP error puts the ICMP frame into that header's stream, as
  `tcp.stream` / `udp.stream` say (a display filter `tcp.stream == N` lists it; the `-z conv` tables
  leave it out). tshark shows no `tcp.len` for it (payload 0), its raw seq in `tcp.seq`, and the
  quoted `udp.length`; the stream's client is never decided by a quoted SYN.
* VXLAN on UDP 8472 is decoded only when the caller passes `-d udp.port==8472,vxlan` (tshark's
  default is 4789 only); `Capture.tshark_args` carries that.
"""
from __future__ import annotations

import math
import subprocess
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

ANALYSIS_FLAGS = (
    "retransmission", "fast_retransmission", "spurious_retransmission", "out_of_order", "lost_segment",
    "ack_lost_segment", "duplicate_ack", "zero_window", "zero_window_probe", "zero_window_probe_ack",
    "keep_alive", "keep_alive_ack", "window_update", "window_full", "reused_ports",
)

FIELDS = (
    "frame.number", "frame.len", "frame.time_relative", "frame.time_epoch", "frame.protocols",
    "ip.src", "ip.dst", "ipv6.src", "ipv6.dst",
    "tcp.stream", "tcp.srcport", "tcp.dstport", "tcp.len", "tcp.flags", "tcp.seq", "tcp.seq_raw", "tcp.ack",
    "tcp.ack_raw", "tcp.window_size", "tcp.time_relative", "tcp.analysis.initial_rtt",
    "udp.stream", "udp.srcport", "udp.dstport", "udp.length",
    *(f"tcp.analysis.{name}" for name in ANALYSIS_FLAGS),
)

# Wireshark's order of flag names ("SYN, ACK", "FIN, PSH, ACK"): tcp_flags_to_str() in packet-tcp.c
FLAG_NAMES = ((0x001, "FIN"), (0x002, "SYN"), (0x004, "RST"), (0x008, "PSH"), (0x010, "ACK"), (0x020, "URG"),
              (0x040, "ECE"), (0x080, "CWR"), (0x100, "NS"))


def flag_names(flags: int) -> str:
    return ",".join(name for bit, name in FLAG_NAMES if flags & bit)


def endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@dataclass
class Frame:
    """One frame's share of one stream (a VXLAN frame with inner UDP belongs to two UDP streams)."""

    number: int
    length: int
    time: float
    epoch: float
    src: str
    dst: str
    payload: int
    flags: int = 0
    seq: Optional[int] = None
    seq_raw: Optional[int] = None
    ack: Optional[int] = None
    ack_raw: Optional[int] = None
    window: Optional[int] = None
    tcp_time: Optional[float] = None
    initial_rtt: Optional[float] = None
    analysis: Tuple[str, ...] = ()
    encapsulated: bool = False
    quoted: bool = False  # a header quoted in an ICMP error


@dataclass
class OracleResult:
    packets: int
    streams: Dict[Tuple[str, int], dict]
    frames: Dict[Tuple[str, int], List[Frame]] = field(default_factory=dict)
    stderr: str = ""
    first_epoch: Optional[float] = None  # frame.time_epoch of frame 1 (any protocol)

    def detail(self, proto: str, index: int) -> List[dict]:
        """The `--stream N` flag table as tshark shows it, one dict per packet (contract keys)."""
        return [{
            "frame": f.number, "time": f.tcp_time, "src": f.src, "dst": f.dst, "length": f.length,
            "segment_length": f.payload, "flags": flag_names(f.flags), "flags_hex": f"0x{f.flags:03x}",
            "seq": f.seq, "ack": f.ack, "window": f.window, "analysis": sorted(f.analysis),
        } for f in self.frames[(proto, index)]]


def _last(value: str) -> str:
    return value.split(",")[-1] if value else ""


def _int(value: str, base: int = 10) -> Optional[int]:
    value = _last(value)
    return int(value, base) if value else None


def _ip_layers(protocols: List[str], row: Dict[str, str]) -> List[Tuple[str, str]]:
    """The source/destination of each IP layer, in protocol order, as (src, dst) strings."""
    v4s, v4d = row["ip.src"].split(","), row["ip.dst"].split(",")
    v6s, v6d = row["ipv6.src"].split(","), row["ipv6.dst"].split(",")
    layers, n4, n6 = [], 0, 0
    for proto in protocols:
        if proto == "ip":
            layers.append((v4s[n4], v4d[n4]))
            n4 += 1
        elif proto == "ipv6":
            layers.append((v6s[n6], v6d[n6]))
            n6 += 1
    return layers


def run_tshark(path, extra_args: Sequence[str] = ()) -> Tuple[List[Dict[str, str]], str]:
    argv = ["tshark", "-n", "-r", str(path), *extra_args, "-T", "fields", "-E", "separator=/t",
            "-E", "occurrence=a", "-E", "aggregator=,"]
    for name in FIELDS:
        argv += ["-e", name]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    # A file cut mid-record makes tshark exit 2 after printing every whole frame (that is the oracle
    # for "truncated"); anything else without output is a broken oracle run.
    if proc.returncode not in (0, 2) or (proc.returncode == 2 and not proc.stdout):
        raise RuntimeError(f"tshark failed ({proc.returncode}): {proc.stderr}")
    rows = [dict(zip(FIELDS, line.split("\t"))) for line in proc.stdout.splitlines()]
    return rows, proc.stderr


def analyze(path, extra_args: Sequence[str] = ()) -> OracleResult:
    rows, stderr = run_tshark(path, extra_args)
    frames: Dict[Tuple[str, int], List[Frame]] = {}
    for row in rows:
        protocols = row["frame.protocols"].split(":")
        # headers quoted inside an ICMP error are in no conversation (tshark's tap is not called);
        # layers before the ICMP (a VXLAN carrier's outer UDP) still are
        quoted_from = min((i for i, p in enumerate(protocols) if p in ("icmp", "icmpv6")), default=len(protocols))
        base = dict(number=int(row["frame.number"]), length=int(row["frame.len"]),
                    time=float(row["frame.time_relative"]), epoch=float(row["frame.time_epoch"]))
        ips = _ip_layers(protocols, row)
        # (proto, its IP layer's (src, dst), quoted in an ICMP error, IP layers that carry it)
        depths = [sum(1 for q in protocols[:i] if q in ("ip", "ipv6")) for i in range(len(protocols))]
        transports = [(p, ips[depths[i] - 1], i >= quoted_from, depths[min(i, quoted_from)])
                      for i, p in enumerate(protocols) if p in ("tcp", "udp")]
        udp_fields = [row[k].split(",") for k in ("udp.stream", "udp.srcport", "udp.dstport", "udp.length")]
        n_udp = 0
        for proto, (src, dst), quoted, ip_layers in transports:
            encapsulated = ip_layers > 1  # inside a tunnel (VXLAN, Geneve, GRE, IP-in-IP); a VLAN tag is not one
            if proto == "udp":
                if n_udp >= len(udp_fields[0]) or not udp_fields[0][n_udp]:
                    n_udp += 1
                    continue  # no udp.stream: tshark found no usable header here
                stream, sport, dport, length = (int(f[n_udp]) for f in udp_fields)
                n_udp += 1
                frames.setdefault(("udp", stream), []).append(Frame(
                    src=endpoint(src, sport), dst=endpoint(dst, dport), payload=length - 8,
                    encapsulated=encapsulated, quoted=quoted, **base))
            elif _last(row["tcp.stream"]):  # (a quoted TCP header is always the last layer: _last() below)
                flags = _int(row["tcp.flags"], 16)
                rtt = _last(row["tcp.analysis.initial_rtt"])
                tcp_time = _last(row["tcp.time_relative"])
                frames.setdefault(("tcp", _int(row["tcp.stream"])), []).append(Frame(
                    src=endpoint(src, _int(row["tcp.srcport"])), dst=endpoint(dst, _int(row["tcp.dstport"])),
                    payload=_int(row["tcp.len"]) or 0, flags=flags, seq=_int(row["tcp.seq"]),
                    seq_raw=_int(row["tcp.seq_raw"]), ack=_int(row["tcp.ack"]), ack_raw=_int(row["tcp.ack_raw"]),
                    window=_int(row["tcp.window_size"]), tcp_time=float(tcp_time) if tcp_time else None,
                    initial_rtt=float(rtt) if rtt else None, encapsulated=encapsulated, quoted=quoted,
                    analysis=tuple(n for n in ANALYSIS_FLAGS if row[f"tcp.analysis.{n}"]), **base))
    streams = {key: _summarise(key, fs) for key, fs in frames.items()}
    first_epoch = float(rows[0]["frame.time_epoch"]) if rows else None
    return OracleResult(packets=len(rows), streams=streams, frames=frames, stderr=stderr, first_epoch=first_epoch)


def _summarise(key: Tuple[str, int], frames: List[Frame]) -> dict:
    proto, index = key
    syn = next((f for f in frames if (f.flags & 0x012) == 0x002 and not f.quoted), None)
    synack = next((f for f in frames if (f.flags & 0x012) == 0x012 and not f.quoted), None)
    # client = who sent the (first) pure SYN, else the first sender; server = the other end
    client = syn.src if syn else frames[0].src
    server = syn.dst if syn else frames[0].dst
    mine = [f for f in frames if f.src == client]
    theirs = [f for f in frames if f.src != client]
    count = lambda name: sum(1 for f in frames if name in f.analysis)  # noqa: E731
    summary = {
        "proto": proto, "index": index, "client": client, "server": server,
        "packets": len(frames), "bytes": sum(f.length for f in frames),
        "payload_bytes": sum(f.payload for f in frames),
        "client_packets": len(mine), "server_packets": len(theirs),
        "client_bytes": sum(f.length for f in mine), "server_bytes": sum(f.length for f in theirs),
        "client_payload_bytes": sum(f.payload for f in mine), "server_payload_bytes": sum(f.payload for f in theirs),
        "first_frame": frames[0].number, "start": frames[0].time, "duration": frames[-1].time - frames[0].time,
        "first_abs_ts": frames[0].epoch,
        "encapsulated": frames[0].encapsulated,
    }
    if proto == "tcp":
        summary.update({
            "flags": {name: sum(1 for f in frames if f.flags & bit)
                      for bit, name in ((2, "SYN"), (1, "FIN"), (4, "RST"))},
            "retransmissions": sum(1 for f in frames if {"retransmission", "fast_retransmission",
                                                        "spurious_retransmission"} & set(f.analysis)),
            "zero_window": count("zero_window"), "dup_acks": count("duplicate_ack"),
            "out_of_order": count("out_of_order"), "lost_segments": count("lost_segment"),
            "handshake_rtt": next((f.initial_rtt for f in frames if f.initial_rtt is not None), None),
            "client_isn": syn.seq_raw if syn else None,
            "server_isn": synack.seq_raw if synack else None,
            "synack_ack": synack.ack_raw if synack else None,
        })
    return summary


# --- comparing our rows with the oracle's -----------------------------------------------------------

INT_FIELDS = ("proto", "index", "client", "server", "packets", "bytes", "payload_bytes", "client_packets",
              "server_packets", "client_bytes", "server_bytes", "client_payload_bytes", "server_payload_bytes",
              "first_frame")
TCP_FIELDS = ("flags", "retransmissions", "zero_window", "dup_acks", "out_of_order", "lost_segments",
              "client_isn", "server_isn", "synack_ack")
FLOAT_FIELDS = ("start", "duration", "first_abs_ts")
TOLERANCE = 1e-6


def close(a, b, tolerance: float = TOLERANCE) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(float(a), float(b), rel_tol=0, abs_tol=tolerance)


def stream_diff(ours: dict, theirs: dict, tolerance: float = TOLERANCE) -> List[str]:
    """Every figure of one stream row that differs from tshark's, as "name: ours=... tshark=..."."""
    diffs = []
    fields = INT_FIELDS + (TCP_FIELDS if theirs["proto"] == "tcp" else ())
    for name in fields:
        if ours.get(name) != theirs[name]:
            diffs.append(f"{name}: ours={ours.get(name)!r} tshark={theirs[name]!r}")
    for name in FLOAT_FIELDS + (("handshake_rtt",) if theirs["proto"] == "tcp" else ()):
        if not close(ours.get(name), theirs[name], TOLERANCE if name == "first_abs_ts" else tolerance):
            diffs.append(f"{name}: ours={ours.get(name)!r} tshark={theirs[name]!r}")
    if theirs["encapsulated"] != (ours.get("encapsulation") is not None):
        diffs.append(f"encapsulation: ours={ours.get('encapsulation')!r} tshark inner={theirs['encapsulated']}")
    return diffs


def row_diff(ours: dict, theirs: dict) -> List[str]:
    """Differences of one `--stream N` row from tshark's (`OracleResult.detail`). tshark shows no
    tcp.time_relative for a header quoted with fewer than 20 bytes: no time to compare there."""
    diffs = []
    for name, want in theirs.items():
        got = ours.get(name)
        if name == "time":
            if want is not None and not close(got, want):
                diffs.append(f"time ours={got!r} tshark={want!r}")
        elif name == "analysis":
            if sorted(got or []) != want:
                diffs.append(f"analysis ours={sorted(got or [])} tshark={want}")
        elif got != want:
            diffs.append(f"{name} ours={got!r} tshark={want!r}")
    return diffs
