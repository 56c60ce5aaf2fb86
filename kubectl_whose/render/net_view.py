"""`net` as tables: interfaces (with where `eth0@ifNN` leads), routes, rules, neighbours, sockets and owners.

`table` shows what a user debugging a pod needs first (the main routing table, non-default policy
rules, every socket); `wide` adds the local/broadcast tables, every rule, MACs, inodes and processes.
"""
from __future__ import annotations

from kubectl_whose.analysis.pod.netinfo import NetInfo, process_note
from kubectl_whose.render.output import make_console, say_line


def _say(console, text: str) -> None:
    say_line(console, text)


def _table(title: str, cols: list, rows: list, wide: bool) -> None:
    from kubectl_whose.render.grid import write_table

    write_table(cols, rows, wide=wide, title=title)

DEFAULT_RULE_PRIORITIES = {0, 32766, 32767}


def render_net(info: NetInfo, wide: bool = False, console=None) -> None:
    from kubectl_whose.render.grid import Column as C

    console = console or make_console()
    seen = info.seen_from
    if seen:
        host = seen.get("host_interface")
        _say(console, f"seen from node {seen['node']}" + (f"; pod {seen['pod']}'s host-side interface is "
                                                           f"{host['interface']}: {host['why']}" if host else ""))
    cols = [C("IF", right=True), C("NAME"), C("KIND"), C("STATE"), C("MTU", right=True), C("ADDRESSES", wrap=True)]
    rows = []
    for i in info.interfaces:
        addrs = ", ".join(a.cidr + (f" peer {a.peer}" if a.peer else "") for a in i.addresses
                          if wide or a.scope != "link") or "-"
        row = [str(i.index), i.display_name, i.kind or i.link_type or "-", i.state or "-", str(i.mtu or "-"), addrs]
        rows.append(row + ([i.mac or "-"] if wide else []))
    _table("Interfaces", cols + ([C("MAC", below=True)] if wide else []), rows, wide)
    for i in info.interfaces:
        if i.peer_note:
            say_line(console, f"{i.display_name}: {i.peer_note}", indent=2)

    routes = [r for r in info.routes if wide or r.table in ("main", "254") or r.table not in ("local", "255")]
    if routes:
        cols = [C("TABLE"), C("DESTINATION"), C("VIA"), C("DEV"), C("SRC", drop=2, below=True),
                C("PROTO", drop=1, below=True)]
        if wide:
            cols += [C("TYPE", below=True), C("METRIC", right=True, below=True)]
        rows = [[r.table, r.dst, r.gateway or "-", r.dev or "-", r.prefsrc or "-", r.protocol or "-"]
                + ([r.type, str(r.metric) if r.metric is not None else "-"] if wide else []) for r in routes]
        _table("Routes" + ("" if wide else " (main and policy tables; -o wide adds local)"), cols, rows, wide)

    rules = [r for r in info.rules if wide or r.priority not in DEFAULT_RULE_PRIORITIES]
    if rules:
        _table("Policy routing rules", [C("FAMILY"), C("PRIO", right=True), C("RULE", wrap=True)],
               [[r.family, str(r.priority), r.text] for r in rules], wide)
    elif info.rules:
        _say(console, "Policy routing rules: only the defaults (local, main, default)")

    if info.neighbours:
        _table("Neighbours", [C("ADDRESS"), C("DEV"), C("LLADDR"), C("STATE")],
               [[n.dst, n.dev or "-", n.lladdr or "-", ",".join(n.state) or "-"] for n in info.neighbours], wide)

    render_sockets(info, wide, console)
    for why in info.missing:
        _say(console, f"not collected: {why}")


def render_sockets(info: NetInfo, wide: bool = False, console=None) -> None:
    console = console or make_console()
    if not info.sockets:
        _say(console, "Sockets: none" + (" (ss output not collected)" if "sockets" in " ".join(info.missing) else ""))
        return
    from kubectl_whose.render.grid import Column as C

    cols = [C("PROTO"), C("STATE"), C("LOCAL"), C("PEER"), C("UID", right=True, drop=1, below=True), C("OWNER")]
    if wide:
        cols += [C("PROCESS", wrap=True, below=True), C("INODE", right=True, below=True),
                 C("WHY", wrap=True, below=True)]
    order = {"LISTEN": 0, "UNCONN": 1}
    # A busy pod holds hundreds of TIME-WAIT sockets (closed, no owner left); `wide` lists them.
    shown = [s for s in info.sockets if wide or s.state != "TIME-WAIT"]
    rows = []
    for s in sorted(shown, key=lambda s: (order.get(s.state, 2), s.proto, s.local_port or 0)):
        o = s.owner
        owner = "-" if o is None else (f"{o.name} [{o.mesh}]" if o.mesh else o.name)
        row = [s.proto, s.state, s.local + (f" ({s.device})" if s.device else ""), s.peer,
               "-" if s.uid is None else str(s.uid), owner]
        if wide:
            procs = ", ".join(f"{p.name}/{p.pid}" for p in s.processes) or "-"
            row += [procs, str(s.inode or "-"), o.evidence if o else "-"]
        rows.append(row)
    _table("Sockets", cols, rows, wide)
    hidden = len(info.sockets) - len(shown)
    if hidden:
        say_line(console, f"{hidden} sockets in TIME-WAIT not listed (-o wide lists them)", indent=2)
    note = process_note(info)
    if note:
        say_line(console, note, indent=2)

