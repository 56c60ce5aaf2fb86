"""`ps` as a table: one row per debug container of ours."""
from __future__ import annotations

from typing import Optional

from kubectl_whose.render.output import make_console


def _age(seconds: Optional[int]) -> str:
    if seconds is None:
        return "-"
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


def render_ps(listing, wide: bool) -> None:
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    cols = ["NAME", "IMAGE", "TARGET", "STATE", "STARTED", "LEFT", "REUSABLE"] + (["CAPABILITIES"] if wide else [])
    for c in cols:
        table.add_column(c, no_wrap=True)
    for r in listing.containers:
        state = f"{r.state} ({r.reason})" if r.reason else r.state
        row = [r.name, r.image, r.target or "-", state, r.started or "-", _age(r.remaining_seconds),
               "yes" if r.reusable else "no"]
        if wide:
            row.append(",".join(r.capabilities))
        table.add_row(*row)
    for n in listing.node_pods:  # never reused: each --node run makes its own and deletes it
        state = f"{n.state} ({n.reason})" if n.reason else n.state
        row = [f"{n.namespace}/{n.name}", n.image, f"node/{n.node}", state, "-", _age(n.remaining_seconds), "no"]
        if wide:
            row.append("NET_ADMIN,NET_RAW,hostNetwork")
        table.add_row(*row)
    # wide adds a column: give it the room instead of cropping names (kubectl's -o wide does not wrap either)
    make_console(width=200 if wide else None).print(table)
