"""A summary's stream rows, read out of the engine's table on demand.

`CaptureSummary` only asks for rows one at a time (or a few thousand as JSON text), so 100 000
streams never become 100 000 dicts at once. Either engine serves them (`engine.StreamEngine`).
"""
from __future__ import annotations

from typing import Iterator, List, Optional, Tuple

from kubectl_whose.analysis.streams.python.tcp_analysis import analysis_names

JSON_CHUNK = 2000  # rows per text chunk

ROW_KEYS = ("proto", "index", "client", "server", "packets", "bytes", "payload_bytes", "client_packets",
            "server_packets", "client_bytes", "server_bytes", "client_payload_bytes", "server_payload_bytes",
            "first_frame", "start", "duration", "flags", "retransmissions", "zero_window", "dup_acks",
            "out_of_order", "lost_segments", "handshake_rtt", "state", "history", "encapsulation", "client_isn",
            "server_isn", "synack_ack", "rst_ack", "first_abs_ts")


def row_dict(values: tuple) -> dict:
    """A row in ROW_KEYS order (as `row_values` or the native engine give it) as the contract's dict."""
    row = dict(zip(ROW_KEYS, values))
    syn, fin, rst = row["flags"]
    row["flags"] = {"SYN": syn, "FIN": fin, "RST": rst}
    return row


class Rows:
    def __init__(self, engine, count: int, first_ns: Optional[int]):
        self._engine = engine
        self._count = count
        self._first = first_ns or 0

    def __len__(self) -> int:
        return self._count

    def counts(self) -> Tuple[int, int]:
        """(TCP rows, UDP rows)."""
        udp = sum(1 for i in range(self._count) if self._engine.is_udp(i))
        return self._count - udp, udp

    def dicts(self) -> Iterator[dict]:
        row, first = self._engine.row, self._first
        for i in range(self._count):
            yield row_dict(row(i, first))

    def json_rows(self) -> Iterator[str]:
        rows, first = self._engine.json_rows, self._first
        for i in range(self._count):
            yield rows(i, i + 1, first, "")

    def json_chunks(self, sep: str) -> Iterator[str]:
        """Rows joined by `sep`, a few thousand per string: the caller puts `sep` between chunks."""
        rows, first = self._engine.json_rows, self._first
        for lo in range(0, self._count, JSON_CHUNK):
            yield rows(lo, lo + JSON_CHUNK, first, sep)

    def join_candidates(self) -> List[dict]:
        row, first = self._engine.row, self._first
        return [row_dict(row(i, first)) for i in self._engine.join_candidates()]


# --- --stream N: one row per packet -----------------------------------------------------------

def tcp_detail_row(frame: int, dts: int, src: str, dst: str, length: int, seglen: int, flags: int, seq: int,
                   ack: int, window: int, ta: int) -> dict:
    """One row of `--stream N` (`detail.packets`); seq/ack relative as tshark shows them, `dts` in ns
    since the stream's first frame. Both engines build their rows here."""
    return {"frame": frame, "time": round(dts / 1e9, 9), "src": src, "dst": dst, "length": length,
            "segment_length": seglen, "flags": flag_names(flags), "flags_hex": f"0x{flags:03x}", "seq": seq,
            "ack": ack, "window": window, "analysis": analysis_names(ta)}


def udp_detail_row(frame: int, dts: int, src: str, dst: str, length: int, paylen: int) -> dict:
    return {"frame": frame, "time": round(dts / 1e9, 9), "src": src, "dst": dst, "length": length,
            "segment_length": paylen, "flags": "", "flags_hex": "0x000", "seq": 0, "ack": None, "window": 0,
            "analysis": []}


_FLAG_NAMES = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR", "AE")  # 0x100 is "AE" in 4.0.17


def flag_names(flags: int) -> str:
    """Wireshark's names in its order (low bit first), comma-joined: SYN,ACK."""
    names = [name for i, name in enumerate(_FLAG_NAMES) if flags & (1 << i)]
    if flags & 0xE00:
        names.append("Reserved")
    return ",".join(names) if names else "<None>"  # tshark's Info column: [<None>]
