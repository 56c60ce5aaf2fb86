"""What one analysis found: `CaptureSummary` (the rows on demand, the head figures, `--stream N`'s
packets) and the live view's `LiveStats`; `analyzer.CaptureAnalyzer` builds them.

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

from dataclasses import dataclass
from typing import Iterator, List, Optional

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
    """The result of one analysis. Stream rows are built on demand (`rows.Rows`), so a capture with 100 000
    streams can be written out row by row (`iter_streams`, `json_chunks`) without holding every row at once;
    `streams` (a list) and `to_dict()` build them all."""

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
