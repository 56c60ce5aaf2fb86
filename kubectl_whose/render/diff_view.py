"""`rules --diff FILE` as text: the chains that differ, each rule removed (-) or added (+)."""
from __future__ import annotations

from kubectl_whose.render.output import make_console, say_line


def render_diff(result, path: str) -> None:
    from rich.markup import escape

    console = make_console()
    if result.identical:
        say_line(console, f"no difference from {path} (counters and ordering noise ignored)")
        return
    say_line(console, f"{len(result.chains)} chain(s) differ from {path}", style="bold")
    for c in result.chains:
        say_line(console, f"[bold]{escape(c.ruleset)} {escape(c.table)}/{escape(c.chain)}[/bold]: {c.status}"
                 + (f" (policy {c.policy[0]} -> {c.policy[1]})" if c.policy else ""), markup=True)
        if c.status == "reordered":
            say_line(console, "rule order changed (same rules)", indent=2)
            continue
        for r in c.removed:
            say_line(console, f"- {r}", style="red", indent=2)
        for r in c.added:
            say_line(console, f"+ {r}", style="green", indent=2)
