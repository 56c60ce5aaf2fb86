"""Feeding the native engine (`_engine.c`): what `fastpath.py` and `CaptureAnalyzer.feed` do for the
Python engine, and the `--stream N` rows built from the raw tuples the engine collects.

Classic pcap is read record by record in C straight out of the reader's buffer; pcapng records
still come from `CaptureReader` (one Python step per record) and are decoded in C. Frames the C
decoder declines go to `CaptureAnalyzer._general`, whose events land in the same C table.
"""
from __future__ import annotations

from kubectl_whose.analysis.tcp_analysis import analysis_names

# the engine keeps nanoseconds in 64 bits: a pcapng timestamp beyond year 2262 is clamped
MIN_TS, MAX_TS = -(1 << 63), (1 << 63) - 1


def feed_native(analyzer) -> None:
    reader = analyzer.reader
    engine = analyzer.table
    if reader.format == "pcap":
        pos, frames, packets, nbytes, first, last, bad = engine.feed_pcap(
            reader._buf, reader._pos, reader._big_endian, reader._ns, reader._rec_len, reader._pcap_linktype,
            reader.frames, analyzer._general)
        if packets:
            if analyzer.packets == 0:
                analyzer.first_ts = first
            analyzer.last_ts = last
            analyzer.packets += packets
            analyzer.bytes += nbytes
        reader.frames, reader._pos = frames, pos
        if bad >= 0:
            reader._corrupt(f"record length {bad} is impossible")
        return
    decode = engine.frame
    general = analyzer._general
    count = analyzer._count
    for frame_no, ts, linktype, _caplen, orig_len, frame in reader.records():
        if not MIN_TS <= ts <= MAX_TS:
            ts = max(MIN_TS, min(MAX_TS, ts))
        count(ts, orig_len)
        if not decode(frame_no, ts, linktype, orig_len, frame):
            general(frame_no, ts, linktype, orig_len, frame)


def native_detail(engine, proto: str) -> list:
    """The `detail.packets` rows of `--stream N` (same dicts as `StreamTable._tcp_detail`)."""
    from kubectl_whose.analysis.streams import flag_names

    raw = engine.take_detail()
    ends = engine.detail_endpoints(proto)
    if not raw or ends is None:
        return []
    rows = []
    if proto == "udp":
        for frame, dts, length, d, paylen in raw:
            rows.append({"frame": frame, "time": round(dts / 1e9, 9), "src": ends[d], "dst": ends[1 - d],
                         "length": length, "segment_length": paylen, "flags": "", "flags_hex": "0x000", "seq": 0,
                         "ack": None, "window": 0, "analysis": []})
        return rows
    for frame, dts, length, d, seglen, flags, seq, ack, window, ta in raw:
        rows.append({"frame": frame, "time": round(dts / 1e9, 9), "src": ends[d], "dst": ends[1 - d],
                     "length": length, "segment_length": seglen, "flags": flag_names(flags),
                     "flags_hex": f"0x{flags:03x}", "seq": seq, "ack": ack, "window": window,
                     "analysis": analysis_names(ta)})
    return rows
