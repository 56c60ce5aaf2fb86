"""The feed loop: pcap/pcapng bytes in any chunking in, a `CaptureSummary` out.

`capture` feeds `CaptureAnalyzer` chunks from the exec stream and calls `snapshot()` for its live
view; `analyze FILE` calls `analyze_file`. Both run the very same code. The engine is whichever
`engine.choose` picks; nothing here asks which.
"""
from __future__ import annotations

import struct
from typing import Optional

from kubectl_whose.analysis.pcap.decode import EV_TCP, EV_TCP_QUOTE, EV_UDP, decode_frame
from kubectl_whose.analysis.pcap.fragments import Reassembly
from kubectl_whose.analysis.pcap.gunzip import gunzip_if_compressed
from kubectl_whose.analysis.pcap.linktypes import LINKTYPES, linktype_name
from kubectl_whose.analysis.pcap.reader import CaptureReader, open_source, read_chunks
from kubectl_whose.analysis.streams.engine import choose as choose_engine, make_engine
from kubectl_whose.analysis.streams.rows import Rows, tcp_detail_row, udp_detail_row
from kubectl_whose.analysis.streams.summary import PROTOS, CaptureSummary, LiveStats


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


def analyze_per_pod(path: str, proto: str = "all") -> list:
    """A merged capture of several pods (`collect.pcapng_merge`), one analysis per pod: [(PodInterfaces,
    CaptureSummary)] in the order the pods first appear, each over exactly its pod's frames."""
    from kubectl_whose.analysis.pcap.demux import PodDemux

    demux, analyzers = PodDemux(), {}
    fobj, name, owned = open_source(path)
    try:
        for chunk in read_chunks(fobj):
            for label, data in demux.feed(chunk):
                if label not in analyzers:
                    analyzers[label] = CaptureAnalyzer(proto, name=f"{name} ({label})")
                analyzers[label].feed(data)
    finally:
        if owned:
            fobj.close()
    return [(demux.pods[label], a.finish()) for label, a in analyzers.items()]
