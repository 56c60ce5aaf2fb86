"""`doctor` as a table: one row per check, its result, what it found and the fix.

The fix holds the exact value to set (a label, a kubectl command): it is never cut. On a narrow terminal it moves
under its row; in a pipe every row is one line.
"""
from __future__ import annotations

from kubectl_whose.render.output import make_console, say_line

_STYLE = {"pass": "green", "fail": "bold red", "warn": "yellow", "skip": "dim"}


def render_doctor(report, wide: bool) -> None:
    from kubectl_whose.render.grid import Column, write_table

    cols = [Column("CHECK"), Column("RESULT", style=_STYLE.get), Column("DETAIL", wrap=True),
            Column("FIX", wrap=True, below=True)]
    write_table(cols, [[c.name, c.result, c.detail, c.fix or "-"] for c in report.checks], wide=wide,
                title=f"kubectl whose doctor {report.pod} (namespace {report.namespace}, context {report.context})")
    if report.path:
        fix = f" ({report.path.fix})" if report.path.fix else ""
        say_line(make_console(), f"path: {report.path.detail}{fix}")
