"""`ps` as a table: one row per debug container of ours."""
from __future__ import annotations

from typing import Optional


def _age(seconds: Optional[int]) -> str:
    if seconds is None:
        return "-"
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


def render_ps(listing, wide: bool) -> None:
    from kubectl_whose.render.grid import Column, write_table

    cols = [Column("NAME"), Column("IMAGE", below=True, drop=4), Column("TARGET", below=True, drop=2),
            Column("STATE", wrap=True), Column("STARTED", below=True, drop=3), Column("LEFT", right=True),
            Column("REUSABLE")]
    if wide:
        cols.append(Column("CAPABILITIES", below=True, drop=5))
    rows = []
    for r in listing.containers:
        state = f"{r.state} ({r.reason})" if r.reason else r.state
        row = [r.name, r.image, r.target or "-", state, r.started or "-", _age(r.remaining_seconds),
               "yes" if r.reusable else "no"]
        if wide:
            row.append(",".join(r.capabilities))
        rows.append(row)
    for n in listing.node_pods:  # never reused: each --node run makes its own and deletes it
        state = f"{n.state} ({n.reason})" if n.reason else n.state
        row = [f"{n.namespace}/{n.name}", n.image, f"node/{n.node}", state, "-", _age(n.remaining_seconds), "no"]
        if wide:
            row.append("NET_ADMIN,NET_RAW,hostNetwork")
        rows.append(row)
    write_table(cols, rows, wide=wide)
