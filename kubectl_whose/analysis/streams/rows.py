"""A summary's stream rows, read out of the engine's table on demand.

`CaptureSummary` only asks for rows one at a time (or a few thousand as JSON text), so 100 000
streams never become 100 000 dicts at once. Either engine serves them (`engine.StreamEngine`).
"""
from __future__ import annotations

from typing import Iterator, List, Optional, Tuple

from kubectl_whose.analysis.streams.python.rows import row_dict

JSON_CHUNK = 2000  # rows per text chunk


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
