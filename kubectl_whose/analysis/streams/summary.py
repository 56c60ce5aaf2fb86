"""The public API of the analysis engine: bytes of a pcap/pcapng in, a `CaptureSummary` out.

`capture` feeds `CaptureAnalyzer` chunks from the exec stream and calls `snapshot()` for its live
view; `analyze FILE` calls `analyze_file`. Both run the very same code.

Two engines compute the same rows (`analysis.streams.engine`): the pure-Python stream table (`streams`,
`tcp_analysis`, `conn_state`), the reference that runs anywhere, and its transcription in C
(`_engine.c`, ~10x faster), used when it is built. tests/test_native_engine.py holds them equal.

JSON contract of `CaptureSummary.to_dict()` (stable; copied to README):

    {"packets": int,            # frames read (all frames, as tshark counts them)
     "truncated": bool, "warnings": [str], "linktypes": [str],
     "first_ts": float|null,    # epoch seconds of frame 1
     "frames_without_transport": int,   # frames with no TCP/UDP header we could decode
     "streams": [               # busiest first (packets desc, then index, TCP before UDP)
       {"proto": "tcp"|"udp", "index": int,          # == tcp.stream / udp.stream (tshark 4.0.17)
        "client": "ip:port", "server": "ip:port",    # client = sender of the first pure SYN, else the
                                                     # first sender; IPv6 as [addr]:port
        "packets": int, "bytes": int,                # frames, and the sum of frame orig_len (conv table bytes)
        "payload_bytes": int,                        # sum of tcp.len / UDP payload length
        "client_packets", "server_packets", "client_bytes", "server_bytes",
        "client_payload_bytes", "server_payload_bytes": int,
        "first_frame": int, "start": float,          # start = seconds since frame 1 (frame.time_relative)
        "duration": float,                           # last frame − first frame of the stream, seconds
        "flags": {"SYN": int, "FIN": int, "RST": int},   # packets with that flag set
        "retransmissions": int,                      # tcp.analysis.retransmission ∪ fast ∪ spurious
        "zero_window": int, "dup_acks": int, "out_of_order": int, "lost_segments": int,
        "handshake_rtt": float|null,                 # == tcp.analysis.initial_rtt, seconds
        "state": str, "history": str,                # Zeek conn_state / history
        "encapsulation": str|null,                   # e.g. "vxlan 10.0.0.1→10.0.0.2 vni 42"
        "client_isn": int|null, "server_isn": int|null,   # raw seq of the first SYN / SYN-ACK
        "synack_ack": int|null,                      # raw ack number of the first SYN-ACK
        "rst_ack": int|null,                         # raw ack number of the first RST+ACK
        "first_abs_ts": float}],                     # epoch seconds of the stream's first frame
     "detail": null | {"proto": str, "index": int, "packets": [   # only with --stream N
         {"frame": int, "time": float,               # seconds since the stream's first frame (tcp.time_relative)
          "src": "ip:port", "dst": "ip:port", "length": int,   # frame orig_len
          "segment_length": int,                     # tcp.len (UDP: payload length)
          "flags": "SYN,ACK", "flags_hex": "0x012",  # Wireshark's names and 3-hex-digit form
          "seq": int, "ack": int,                    # as tcp.seq / tcp.ack: relative (ack: the raw field
                                                     # when the ACK flag is not set, as tshark shows it)
          "window": int,                             # tcp.window_size (scaled as tshark computes it)
          "analysis": [str]}]}}                      # tcp.analysis.<name> for each flag set
UDP streams carry the same keys; TCP-only ones are 0 or null.

Agreement with tshark 4.0.17 (the installed oracle) and the deliberate differences:
* every figure above equals what `tshark -T fields` gives for that tcp.stream/udp.stream, including
  IP fragment reassembly (a fragmented datagram counts in the frame that completes it), ICMP errors
  (the quoted header takes a stream index; the frame joins no stream) and the 4.0.x port-reuse rule
  (see `analysis.streams.python.table`);
* VXLAN on UDP 8472 (flannel, Cilium, the Linux default) is decoded like 4789, so its inner streams
  appear; tshark 4.0 needs `-d udp.port==8472,vxlan` for that (tests run it with that flag);
* `state`/`history` follow Zeek's definitions (`analysis.streams.python.conn_state`) on tshark's streams; Zeek's own
  time-outs, checksum (`C`) and gap (`G`) letters are not emulated;
* `handshake_rtt` is what tshark shows: it computes the RTT at the handshake's ACK but shows it only
  on frames that carry its analysis subtree (a flag, an exact ACK of an unacked segment, data in
  flight), so a stream with no such frame after that ACK has none (`tcp_analysis._unacked`).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterator, List, Optional

from kubectl_whose.analysis.pcap.reader import CaptureReader, open_source, read_chunks
from kubectl_whose.analysis.pcap.gunzip import gunzip_if_compressed
from kubectl_whose.analysis.pcap.decode import EV_TCP, EV_TCP_QUOTE, EV_UDP, decode_frame
from kubectl_whose.analysis.streams.engine import choose as choose_engine, make_engine
from kubectl_whose.analysis.pcap.fragments import Reassembly
from kubectl_whose.analysis.pcap.linktypes import LINKTYPES, linktype_name
from kubectl_whose.analysis.streams.rows import Rows
from kubectl_whose.analysis.streams.python.table import tcp_detail_row, udp_detail_row
from kubectl_whose.errors import ExitCode, WhoseError

PROTOS = ("tcp", "udp", "all")


@dataclass
class LiveStats:
    packets: int
    bytes: int
    first_ts: Optional[float]
    last_ts: Optional[float]
    tcp_streams: int
    udp_streams: int
    top: List[dict]

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class CaptureSummary:
    """The result of one analysis. Stream rows are built on demand (`row_source.Rows`), so a capture with 100 000 streams can be written out row by row
    (`iter_streams`, `json_chunks`) without holding every row at once; `streams` (a list) and
    `to_dict()` build them all."""

    def __init__(self, packets: int, truncated: bool, warnings: List[str], linktypes: List[str],
                 first_ts: Optional[float], rows, detail: Optional[dict] = None, tcp_stream_count: int = 0,
                 udp_stream_count: int = 0, frames_without_transport: int = 0, bytes: int = 0):
        self.packets = packets
        self.truncated = truncated
        self.warnings = warnings
        self.linktypes = linktypes
        self.first_ts = first_ts
        self.detail = detail
        self.tcp_stream_count = tcp_stream_count
        self.udp_stream_count = udp_stream_count
        self.frames_without_transport = frames_without_transport
        self.bytes = bytes
        self._source = rows
        self._rows: Optional[List[dict]] = None

    def __len__(self) -> int:
        return len(self._source)

    def row_counts(self):
        """(TCP rows, UDP rows) in `streams`."""
        return self._source.counts()

    def iter_streams(self) -> Iterator[dict]:
        if self._rows is not None:
            yield from self._rows
            return
        yield from self._source.dicts()

    def iter_json_rows(self) -> Iterator[str]:
        """Each row of `streams` as compact JSON text, without building the dicts."""
        return self._source.json_rows()

    def json_chunks(self, sep: str) -> Iterator[str]:
        """The rows as JSON text, several per string joined by `sep`; put `sep` between the strings."""
        return self._source.json_chunks(sep)

    def join_candidates(self) -> List[dict]:
        """The rows a NAT-split join can use (`analysis.pod.connections`), without building the others."""
        return self._source.join_candidates()

    @property
    def streams(self) -> List[dict]:
        if self._rows is None:
            self._rows = list(self.iter_streams())
        return self._rows

    def head(self) -> dict:
        """Every top-level key of the JSON contract except `streams` and `detail`."""
        return {"packets": self.packets, "truncated": self.truncated, "warnings": list(self.warnings),
                "linktypes": list(self.linktypes), "first_ts": self.first_ts,
                "frames_without_transport": self.frames_without_transport}

    def to_dict(self) -> dict:
        return {**self.head(), "streams": self.streams, "detail": self.detail}

    def stream_count(self, proto: str) -> int:
        return self.tcp_stream_count if proto == "tcp" else self.udp_stream_count


def check_stream_index(proto: str, index: int, count: int) -> None:
    """The `--stream N` range check, one sentence naming the valid range."""
    if 0 <= index < count:
        return
    name = proto.upper()
    have = f"no {name} streams" if count == 0 else \
        f"1 {name} stream (0)" if count == 1 else f"{count} {name} streams (0–{count - 1})"
    raise WhoseError(f"--stream {index}: the capture has {have}", ExitCode.NOT_FOUND)


class CaptureAnalyzer:
    """Feed pcap/pcapng bytes in any chunking; `snapshot()` while running, `finish()` at the end.

    The reader keeps the bytes; the engine (`engine.StreamEngine`, whichever was chosen) reads whole
    records out of the reader's window and hands every frame its plain-frame decoder declines to
    `_general`, whose events go back into the same engine."""

    def __init__(self, proto: str = "all", detail_stream: Optional[int] = None, detail_proto: str = "tcp",
                 name: str = "input", fast_path: bool = True, engine: Optional[str] = None):
        if proto not in PROTOS:
            raise ValueError(f"proto must be one of {', '.join(PROTOS)}")
        self.proto = proto
        self.reader = CaptureReader(name)
        self._want_tcp = proto in ("tcp", "all") or detail_proto == "tcp" and detail_stream is not None
        self._want_udp = proto in ("udp", "all") or detail_proto == "udp" and detail_stream is not None
        want = -1 if detail_stream is None else detail_stream
        self.engine = make_engine(choose_engine(engine), self._want_tcp, self._want_udp,
                                  want if detail_proto == "tcp" else -1, want if detail_proto == "udp" else -1)
        self.detail_stream = detail_stream
        self.detail_proto = detail_proto
        self.packets = 0
        self.bytes = 0
        self.first_ts: Optional[int] = None
        self.last_ts: Optional[int] = None
        self.no_transport = 0
        self.unsupported: dict = {}
        self.frags = Reassembly()
        self.fast_path = fast_path  # False: every frame through decode_frame (tests compare both paths)

    def feed(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        window = reader.window()
        if window is None:
            return
        if not self.fast_path:
            for frame_no, ts, linktype, _caplen, orig_len, frame in reader.records():
                self._count(ts, orig_len)
                self._general(frame_no, ts, linktype, orig_len, frame)
            return
        engine = self.engine
        if reader.format == "pcap":
            fed = engine.feed_pcap(window, self._general)
            self._consumed(fed)
            if fed[6] >= 0:
                reader.corrupt(f"record length {fed[6]} is impossible")
            return
        while True:
            # runs of enhanced packet blocks in the engine; any other block (or an odd one) here, one at a time
            fed = engine.feed_pcapng(window, self._general)
            self._consumed(fed)
            if not fed[6]:
                return
            more, rec = reader.pcapng_step()
            if not more:
                return
            if rec is not None:
                frame_no, ts, linktype, _caplen, orig_len, frame = rec
                ts = engine.timestamp(ts)
                self._count(ts, orig_len)
                if not engine.frame(frame_no, ts, linktype, orig_len, frame):
                    self._general(frame_no, ts, linktype, orig_len, frame)
            window = reader.window()  # a new section may change the byte order and the interfaces
            if window is None:
                return

    def _consumed(self, fed) -> None:
        pos, frames, packets, nbytes, first, last, _stop = fed
        self.reader.consumed(pos, frames)
        if packets:
            if self.packets == 0:
                self.first_ts = first
            self.last_ts = last
            self.packets += packets
            self.bytes += nbytes

    def _count(self, ts: int, orig_len: int) -> None:
        self.packets += 1
        self.bytes += orig_len
        if self.packets == 1:
            self.first_ts = ts
        self.last_ts = ts

    def _general(self, frame_no: int, ts: int, linktype: int, orig_len: int, frame: bytes) -> None:
        if linktype not in LINKTYPES:
            self.unsupported[linktype] = self.unsupported.get(linktype, 0) + 1
            self.no_transport += 1
            return
        try:
            events = decode_frame(linktype, frame, self.frags)
        except (IndexError, ValueError, struct.error):  # a header that lies about its length: count it
            events = []
        if not any(ev[0] <= EV_UDP for ev in events):  # nothing but a quote in an ICMP error
            self.no_transport += 1
        engine = self.engine
        for ev in events:
            kind = ev[0]
            if kind == EV_TCP:
                if self._want_tcp:
                    engine.tcp_packet(frame_no, ts, orig_len, *ev[1:])
            elif kind == EV_UDP:
                if self._want_udp:
                    engine.udp_packet(frame_no, ts, orig_len, *ev[1:])
            elif kind == EV_TCP_QUOTE:
                if self._want_tcp:
                    engine.tcp_quote(ts, *ev[1:])
            elif self._want_udp:
                engine.udp_quote(ts, *ev[1:])

    def snapshot(self, top: int = 5) -> LiveStats:
        tcp_n, udp_n = self.engine.counts()
        return LiveStats(self.packets, self.bytes, _sec(self.first_ts), _sec(self.last_ts), tcp_n, udp_n,
                         [dict(zip(_BRIEF_KEYS, b)) for b in self.engine.top(top)])

    def finish(self) -> CaptureSummary:
        self.reader.close()
        warnings = list(self.reader.warnings)
        for linktype, n in sorted(self.unsupported.items()):
            warnings.append(f"link type {linktype_name(linktype)} ({linktype}) is not supported: "
                            f"{n} frames not decoded")
        engine = self.engine
        rows = Rows(engine, engine.order(self.proto in ("tcp", "all"), self.proto in ("udp", "all")), self.first_ts)
        detail = None
        if self.detail_stream is not None:
            detail = {"proto": self.detail_proto, "index": self.detail_stream,
                      "packets": detail_rows(engine, self.detail_proto)}
        return CaptureSummary(self.packets, self.reader.truncated, warnings,
                              [linktype_name(lt) for lt in self.reader.linktypes], _sec(self.first_ts), rows, detail,
                              *engine.counts(), self.no_transport, self.bytes)


def detail_rows(engine, proto: str) -> list:
    """The `detail.packets` rows of `--stream N`, from the raw tuples the engine collected."""
    raw = engine.take_detail()
    ends = engine.detail_endpoints(proto)
    if not raw or ends is None:
        return []
    if proto == "udp":
        return [udp_detail_row(frame, dts, ends[d], ends[1 - d], length, paylen)
                for frame, dts, length, d, paylen in raw]
    return [tcp_detail_row(frame, dts, ends[d], ends[1 - d], length, seglen, flags, seq, ack, window, ta)
            for frame, dts, length, d, seglen, flags, seq, ack, window, ta in raw]


def _sec(ns: Optional[int]) -> Optional[float]:
    return None if ns is None else ns / 1e9


_BRIEF_KEYS = ("proto", "index", "client", "server", "packets", "bytes")


def analyze_file(path_or_fileobj, proto: str = "all", detail_stream: Optional[int] = None,
                 detail_proto: str = "tcp", engine: Optional[str] = None) -> CaptureSummary:
    """Analyse a capture file, a file object or a pipe (`-` is stdin), streaming it in chunks;
    gzip-compressed input is inflated on the way (`analysis.pcap.gunzip`)."""
    fobj, name, owned = open_source(path_or_fileobj)
    analyzer = CaptureAnalyzer(proto, detail_stream, detail_proto, name=name, engine=engine)
    reader = analyzer.reader

    def warn(text: str, cut: bool) -> None:
        reader.warnings.append(text)
        reader.truncated = reader.truncated or cut

    try:
        for chunk in gunzip_if_compressed(read_chunks(fobj), warn, name):
            analyzer.feed(chunk)
    finally:
        if owned:
            fobj.close()
    return analyzer.finish()
