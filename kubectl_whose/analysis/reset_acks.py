"""The raw ack of the first RST in each stream that begins with a reset, read from the capture.

A SYN redirected to a port nobody listens on is refused by the pod's own kernel; after reverse NAT
the RST looks like it came from the original destination and lands in a stream of its own. Its
raw ack (= the SYN's ISN + 1) is what proves which SYN it refuses. The stream summary carries the
SYN-ACK's ack (`synack_ack`) but not the RST's, so this module reads those few acks with the
engine's own reader and decoder (no second pcap parser) and hands them to
`connections.join_connections(..., reset_acks=...)` keyed by stream index.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

from kubectl_whose.analysis.capture_file import CaptureReader, open_source, read_chunks
from kubectl_whose.analysis.decode import EV_TCP, decode_fast, decode_frame, format_endpoint

TH_RST, TH_SYN, TH_ACK = 0x04, 0x02, 0x10


def reset_answer_streams(summary: Any) -> Dict[Tuple[str, str], Dict[str, Any]]:
    """Streams with no SYN and no SYN-ACK but a RST: the only ones a reset can have answered from outside."""
    from kubectl_whose.analysis.summary_rows import stream_rows

    out = {}
    for s in stream_rows(summary):
        if s.get("proto") != "tcp" or s.get("client_isn") is not None or s.get("synack_ack") is not None:
            continue
        if (s.get("flags") or {}).get("RST"):
            out[tuple(sorted((s["client"], s["server"])))] = s
    return out


def reset_acks(source, summary: Any) -> Dict[int, int]:
    """stream index -> raw ack of its first RST+ACK, for the streams `reset_answer_streams` picks."""
    wanted = reset_answer_streams(summary)
    if not wanted:
        return {}
    found: Dict[int, int] = {}
    fobj, name, owned = open_source(source)
    reader = CaptureReader(name)
    try:
        for chunk in read_chunks(fobj):
            reader.feed(chunk)
            for frame_no, _ts, linktype, _caplen, _orig, frame in reader.records():
                ev = decode_fast(linktype, frame)
                events = [ev] if ev is not None else _safe_decode(linktype, frame)
                for e in events:
                    if e[0] != EV_TCP or e[7] & (TH_RST | TH_ACK) != (TH_RST | TH_ACK) or e[7] & TH_SYN:
                        continue
                    key = tuple(sorted((format_endpoint(e[1], e[3]), format_endpoint(e[2], e[4]))))
                    s = wanted.get(key)
                    if s is not None and s["index"] not in found and frame_no >= s.get("first_frame", 0):
                        found[s["index"]] = e[6]
            if len(found) == len(wanted):
                break
    finally:
        if owned:
            fobj.close()
    return found


def _safe_decode(linktype: int, frame: bytes):
    try:
        return decode_frame(linktype, frame)
    except (IndexError, ValueError):
        return []
