"""Where a summary's stream rows come from: Python stream objects, or the native engine's table.

Both give the same rows in the same order (busiest first); `CaptureSummary` only asks for them one
at a time, so 100 000 streams never become 100 000 dicts at once.
"""
from __future__ import annotations

from typing import Iterator, List, Optional, Tuple

from kubectl_whose.analysis.rows import row_dict, stream_json, stream_row
from kubectl_whose.analysis.streams import TcpStream, UdpStream

JSON_CHUNK = 2000  # rows per text chunk from the native engine


class PythonRows:
    """Rows of the pure-Python engine: its stream objects, already sorted."""

    def __init__(self, ordered: list, first_ns: Optional[int]):
        self._ordered = ordered
        self._first_ns = first_ns

    def __len__(self) -> int:
        return len(self._ordered)

    def counts(self) -> Tuple[int, int]:
        udp = sum(1 for s in self._ordered if isinstance(s, UdpStream))
        return len(self._ordered) - udp, udp

    def dicts(self) -> Iterator[dict]:
        for s in self._ordered:
            yield stream_row(s, self._first_ns)

    def json_rows(self) -> Iterator[str]:
        for s in self._ordered:
            yield stream_json(s, self._first_ns)

    def json_chunks(self, sep: str) -> Iterator[str]:
        return self.json_rows()  # one row per chunk: the caller puts `sep` between chunks

    def join_candidates(self) -> List[dict]:
        """Rows a NAT-split join can use: a SYN nobody answered in its own 4-tuple, or an answer
        (SYN-ACK / RST+ACK) without a SYN (`analysis.connections`)."""
        out = []
        for s in self._ordered:
            if isinstance(s, TcpStream) and \
                    (s.client_isn is not None) != (s.synack_ack is not None or s.rst_ack is not None):
                out.append(stream_row(s, self._first_ns))
        return out


class NativeRows:
    """Rows of the native engine (`_engine.c`), read out of its table on demand."""

    def __init__(self, engine, count: int, first_ns: Optional[int]):
        self._engine = engine
        self._count = count
        self._first = first_ns or 0

    def __len__(self) -> int:
        return self._count

    def counts(self) -> Tuple[int, int]:
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
