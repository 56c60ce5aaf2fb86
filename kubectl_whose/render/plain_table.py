"""Big tables without rich: fixed columns, one line per row, written as they are produced.

rich measures every cell of a Table before printing it, which for a capture with 100 000 streams
means minutes and gigabytes. Above `RICH_MAX_ROWS` rows the renderers switch to this writer:
column widths come from a first pass over the rows (rows are rebuilt, not kept), then each line
is written out. The header row and the separator look like rich's SIMPLE_HEAD box, so `grep`
and `awk` see the same columns either way.
"""
from __future__ import annotations

import sys
from typing import Callable, Iterable, List, Optional, Sequence, TextIO

RICH_MAX_ROWS = 500


def write_plain(headers: Sequence[str], right: Sequence[bool], rows: Callable[[], Iterable[List[str]]],
                out: Optional[TextIO] = None) -> None:
    """`rows` is called twice (widths, then output), so it may be a generator factory."""
    out = out or sys.stdout
    widths = [len(h) for h in headers]
    for row in rows():
        for i, cell in enumerate(row):
            if len(cell) > widths[i]:
                widths[i] = len(cell)

    def line(cells: Sequence[str]) -> str:
        parts = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)]
        return " ".join(parts).rstrip()

    out.write(line(headers) + "\n")
    out.write("─" * (sum(widths) + len(widths) - 1) + "\n")
    for row in rows():
        out.write(line(row) + "\n")
