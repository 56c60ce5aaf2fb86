"""`kubectl whose trace` as text: the verdict and every possible end first, then the path rule by
rule (matched or passed over, and why), then the assumptions the trace had to make."""
from __future__ import annotations

from kubectl_whose.analysis.netfilter.trace import TraceResult
from kubectl_whose.render.output import make_console, say_line


def verdict_sentence(result: TraceResult) -> str:
    q = result.query
    who = f"{q.proto.upper()} {'from ' + (q.src or '?') + ' ' if q.inbound else ''}to {q.dst}:{q.dport}"
    if len(result.outcomes) == 1:
        o = result.outcomes[0]
        if o.verdict in ("DROP", "REJECT"):
            return f"{who}: {o.verdict} (the sender sees {_sees(o.sender_sees)})"
        text = f"{who}: {o.verdict} -> delivered to {o.destination}"
        if o.sender_sees != "delivered":
            text += f", but the connection fails on the way back or later: the sender sees {_sees(o.sender_sees)}"
        return text
    ends = ", ".join(f"{o.destination or o.verdict} ({o.probability:.1%})" for o in result.outcomes)
    return f"{who}: {result.verdict} -> one of {ends}"


def _sees(word: str) -> str:
    return {"timeout": "a timeout", "refused": "connection refused", "unreachable": "an ICMP unreachable",
            "reset": "the connection reset"}.get(
        word, word)


def _worth_showing(step, outcome) -> bool:
    """The table view leaves out what only -o wide/json need: NAT chains skipped for a known reason, and the
    reply's walk when the reply gets through."""
    if step.rule == "(nat skipped)":
        return False
    if step.hook.endswith(("(reply)", "(later packets)")):
        return outcome.sender_sees != "delivered"
    return True


def render_trace(result: TraceResult, wide: bool, console=None) -> None:
    from rich.markup import escape

    from kubectl_whose.render.grid import Column, write_table

    console = console or make_console()
    say_line(console, verdict_sentence(result), style="bold")
    cols = [Column("PROBABILITY", right=True), Column("VERDICT"), Column("DESTINATION"), Column("SENDER SEES"),
            Column("SOURCE", below=True, drop=2), Column("MARK", below=True, drop=3),
            Column("NAT", wrap=True, below=True)]
    write_table(cols, [[f"{o.probability:.4f}", o.verdict, o.destination or "-", o.sender_sees, o.source or "-",
                        f"{o.mark:#x}", "; ".join(o.nat) or "-"] for o in result.outcomes], wide=wide,
                out=console.file)
    paths = result.outcomes if wide else result.outcomes[:1]
    for n, o in enumerate(paths):
        title = "path" if len(result.outcomes) == 1 else f"path {n + 1} of {len(result.outcomes)} " \
                                                         f"(p={o.probability:.4f}, {o.destination or o.verdict})"
        console.print()
        say_line(console, title, style="bold")
        hook = None
        for s in o.steps:
            if not wide and not _worth_showing(s, o):
                continue
            if s.hook != hook:
                hook = s.hook
                say_line(console, hook, style="bold cyan")
            mark = "[green]✓[/green]" if s.matched else "[dim]·[/dim]"
            if console.color_system is None:
                mark = "+" if s.matched else "-"
            line = f"{mark} {escape(s.table)}/{escape(s.chain)}: {escape(s.rule)}"
            if s.note:
                line += (f"  [dim]<- {escape(s.note)}[/dim]" if not s.matched else
                         f"  [green]=> {escape(s.note)}[/green]")
            say_line(console, line, indent=2, markup=True)
    if len(result.outcomes) > 1 and not wide:
        say_line(console, "(the other paths: -o wide)", style="dim")
    if result.assumptions:
        console.print()
        say_line(console, "assumptions", style="bold")
        for a in result.assumptions:
            say_line(console, f"- {a}", indent=2)
