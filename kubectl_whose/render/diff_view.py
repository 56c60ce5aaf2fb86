"""`rules --diff FILE` as text: the chains that differ, each rule removed (-) or added (+)."""
from __future__ import annotations

from kubectl_whose.render.output import make_console


def render_diff(result, path: str) -> None:
    from rich.markup import escape

    console = make_console()
    if result.identical:
        console.print(f"no difference from {escape(path)} (counters and ordering noise ignored)", soft_wrap=True)
        return
    console.print(f"[bold]{len(result.chains)} chain(s) differ from {escape(path)}[/bold]", soft_wrap=True)
    for c in result.chains:
        console.print(f"[bold]{escape(c.ruleset)} {escape(c.table)}/{escape(c.chain)}[/bold]: {c.status}"
                      + (f" (policy {c.policy[0]} -> {c.policy[1]})" if c.policy else ""))
        if c.status == "reordered":
            console.print("  rule order changed (same rules)")
            continue
        for r in c.removed:
            console.print(f"  [red]- {escape(r)}[/red]", soft_wrap=True)
        for r in c.added:
            console.print(f"  [green]+ {escape(r)}[/green]", soft_wrap=True)
