"""Feeding the native engine (`_engine.c`): what `fastpath.py` and `CaptureAnalyzer.feed` do for the
Python engine, and the `--stream N` rows built from the raw tuples the engine collects.

Classic pcap records and runs of pcapng enhanced packet blocks are read in C straight out of the
reader's buffer; every other pcapng block (section and interface headers, statistics, the old
packet blocks, anything odd) is read by `CaptureReader.pcapng_step`, one at a time. Frames the C
decoder declines go to `CaptureAnalyzer._general`, whose events land in the same C table.
"""
from __future__ import annotations

# the engine keeps nanoseconds in 64 bits: a pcapng timestamp beyond year 2262 is clamped
MIN_TS, MAX_TS = -(1 << 63), (1 << 63) - 1


def feed_native(analyzer) -> None:
    reader = analyzer.reader
    engine = analyzer.table
    if reader.format == "pcap":
        pos, frames, packets, nbytes, first, last, bad = engine.feed_pcap(
            reader._buf, reader._pos, reader._big_endian, reader._ns, reader._rec_len, reader._pcap_linktype,
            reader.frames, analyzer._general)
        _add(analyzer, packets, nbytes, first, last)
        reader.frames, reader._pos = frames, pos
        if bad >= 0:
            reader._corrupt(f"record length {bad} is impossible")
        return
    big = reader._endian == ">"
    while True:
        # runs of enhanced packet blocks in C; any other block (or an odd one) here, one at a time
        pos, frames, packets, nbytes, first, last, stopped = engine.feed_pcapng(
            reader._buf, reader._pos, big, _interfaces(reader), reader.frames, analyzer._general)
        _add(analyzer, packets, nbytes, first, last)
        reader.frames, reader._pos = frames, pos
        if not stopped:
            return
        more, rec = reader.pcapng_step()
        if not more:
            return
        big = reader._endian == ">"  # a new section may change the byte order
        if rec is not None:
            frame_no, ts, linktype, _caplen, orig_len, frame = rec
            ts = max(MIN_TS, min(MAX_TS, ts))
            analyzer._count(ts, orig_len)
            if not engine.frame(frame_no, ts, linktype, orig_len, frame):
                analyzer._general(frame_no, ts, linktype, orig_len, frame)


def _add(analyzer, packets: int, nbytes: int, first, last) -> None:
    if packets:
        if analyzer.packets == 0:
            analyzer.first_ts = first
        analyzer.last_ts = last
        analyzer.packets += packets
        analyzer.bytes += nbytes


def _interfaces(reader) -> tuple:
    """The section's interfaces for C; one whose time units do not fit 64 bits is left to Python."""
    out = []
    for i in reader._ifaces:
        if all(MIN_TS <= v <= MAX_TS for v in (i.units_num, i.units_den, i.offset_ns)):
            out.append((i.linktype, i.units_num, i.units_den, i.offset_ns))
        else:
            out.append((-1, 1, 1, 0))
    return tuple(out)


def native_detail(engine, proto: str) -> list:
    """The `detail.packets` rows of `--stream N`, from the raw tuples the engine collected."""
    from kubectl_whose.analysis.streams import tcp_detail_row, udp_detail_row

    raw = engine.take_detail()
    ends = engine.detail_endpoints(proto)
    if not raw or ends is None:
        return []
    if proto == "udp":
        return [udp_detail_row(frame, dts, ends[d], ends[1 - d], length, paylen)
                for frame, dts, length, d, paylen in raw]
    return [tcp_detail_row(frame, dts, ends[d], ends[1 - d], length, seglen, flags, seq, ack, window, ta)
            for frame, dts, length, d, seglen, flags, seq, ack, window, ta in raw]
