"""`kubectl whose rules` as text: the summary first (a claim per line, then what the probes assumed), then each
table's built-in chains with policy and counters, each custom chain nested under the first rule that jumps to it
(later jumps point back to it), so a reader follows a path without searching for names."""
from __future__ import annotations

from typing import Optional, Set

from kubectl_whose.analysis.netfilter.model import Table
from kubectl_whose.analysis.netfilter.nft_json import NftRuleset, NftTable
from kubectl_whose.analysis.netfilter.report import RulesReport
from kubectl_whose.render.output import make_console, say_line


def render_rules(report: RulesReport, wide: bool, console=None) -> None:
    from rich.markup import escape
    from rich.tree import Tree

    console = console or make_console()
    # one line each in a pipe (what people grep and paste); wrapped at spaces on a terminal
    for claim in report.words.claims:
        say_line(console, claim.text, style="bold")
    for note in report.words.notes:
        say_line(console, note)
    for r in report.recognized:
        say_line(console, f"recognised: {r.name}" + (f"  ({', '.join(r.evidence[:4])})" if r.evidence else ""),
                 indent=2)
    for f in report.all_findings():
        say_line(console, f"{f.severity}: {f.message}", style="yellow" if f.severity == "warning" else "dim", indent=2)
    for rs in report.rulesets:
        if isinstance(rs, NftRuleset):
            title = f"nftables {rs.version or ''} ({rs.source})".strip()
            root = Tree(f"[bold]{escape(title)}[/bold]")
            for t in rs.tables:
                if report.table in (None, t.name, f"{t.family} {t.name}"):
                    _nft_table(root, t, report.chain, wide)
        else:
            title = f"iptables {rs.family} {rs.backend or ''} {('v' + rs.version) if rs.version else ''}".split()
            root = Tree(f"[bold]{escape(' '.join(title))}[/bold] ({escape(rs.source or '-')})")
            for t in rs.tables.values():
                if report.table in (None, t.name):
                    _ipt_table(root, t, report.chain, wide)
        console.print(root)


def _counts(c) -> str:
    return f"{c[0]} pkts, {c[1]} bytes"


def _ipt_table(root, table: Table, only_chain: Optional[str], wide: bool) -> None:
    from rich.markup import escape

    node = root.add(f"[bold cyan]*{table.name}[/bold cyan]")
    shown: Set[str] = set()

    def add_chain(parent, name: str, depth: int) -> None:
        chain = table.chains[name]
        shown.add(name)
        label = f"[bold]{escape(name)}[/bold]"
        if chain.builtin:
            label += f"  policy {chain.policy}  ({_counts(chain.counters)})"
        cnode = parent.add(label)
        if not chain.rules:
            cnode.add("[dim](no rules)[/dim]")
        for r in chain.rules:
            text = r.key().split(" ", 2)[2] if r.key().count(" ") >= 2 else r.key()
            if wide and r.counters:
                text = f"[{r.counters[0]}:{r.counters[1]}] {text}"
            rnode = cnode.add(escape(text))
            target = r.target.name if r.target else None
            if target in table.chains and depth < 30:
                if target in shown:
                    rnode.add(f"[dim]-> {escape(target)} (shown above)[/dim]")
                else:
                    add_chain(rnode, target, depth + 1)

    names = [only_chain] if only_chain else [c.name for c in table.chains.values() if c.builtin]
    for name in names:
        if name in table.chains and name not in shown:
            add_chain(node, name, 0)
    if not only_chain:
        orphans = [c.name for c in table.chains.values() if c.name not in shown]
        group = node.add("[dim](chains not reached from a built-in chain)[/dim]") if orphans else None
        for name in orphans:
            if name not in shown:
                add_chain(group, name, 0)


def _nft_table(root, table: NftTable, only_chain: Optional[str], wide: bool) -> None:
    from rich.markup import escape

    from kubectl_whose.analysis.netfilter.nft_text import rule_text

    node = root.add(f"[bold cyan]table {table.family} {escape(table.name)}[/bold cyan]")
    shown: Set[str] = set()

    def targets(rule):
        import json

        text = json.dumps(rule.expr)
        found = []
        for kind in ("jump", "goto"):
            for part in text.split(f'"{kind}": {{"target": "')[1:]:
                found.append(part.split('"', 1)[0])
        for name in (e["vmap"]["data"][1:] for e in rule.expr if isinstance(e, dict) and "vmap" in e
                     and isinstance(e["vmap"].get("data"), str)):
            s = table.sets.get(name)
            if s:
                for part in json.dumps(s.elem).split('"target": "')[1:]:
                    found.append(part.split('"', 1)[0])
        return list(dict.fromkeys(found))

    def add_chain(parent, name: str, depth: int) -> None:
        chain = table.chains[name]
        shown.add(name)
        label = f"[bold]{escape(name)}[/bold]"
        if chain.hook:
            label += f"  hook {chain.hook} priority {chain.priority} type {chain.type} policy {chain.policy}"
        cnode = parent.add(label)
        for r in chain.rules:
            rnode = cnode.add(escape(rule_text(r, counters=wide)))
            for target in targets(r):
                if target not in table.chains or depth > 30:
                    continue
                if target in shown:
                    rnode.add(f"[dim]-> {escape(target)} (shown above)[/dim]")
                else:
                    add_chain(rnode, target, depth + 1)

    names = [only_chain] if only_chain else [c.name for c in table.chains.values() if c.hook]
    for name in names:
        if name in table.chains and name not in shown:
            add_chain(node, name, 0)
    for s in table.sets.values():
        node.add(f"[dim]{s.kind} {escape(s.name)}: {len(s.elem)} element(s)[/dim]")
