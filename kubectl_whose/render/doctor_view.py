"""`doctor` as a table: one row per check, its result, what it found and the fix."""
from __future__ import annotations

from kubectl_whose.render.output import make_console


def render_doctor(report, wide: bool) -> None:
    from rich.table import Table

    console = make_console()
    table = Table(title=f"kubectl whose doctor {report.pod} (namespace {report.namespace}, context "
                  f"{report.context})", title_justify="left", show_lines=False)
    table.add_column("CHECK", no_wrap=True)
    table.add_column("RESULT", no_wrap=True)
    table.add_column("DETAIL")
    table.add_column("FIX")
    style = {"pass": "green", "fail": "bold red", "warn": "yellow", "skip": "dim"}
    for c in report.checks:
        table.add_row(c.name, f"[{style[c.result]}]{c.result}[/]", c.detail, c.fix)
    console.print(table)
    if report.path:
        fix = f" ({report.path.fix})" if report.path.fix else ""
        console.print(f"path: {report.path.detail}{fix}", markup=False, highlight=False)
