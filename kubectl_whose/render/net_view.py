"""`net` as tables: interfaces (with where `eth0@ifNN` leads), routes, rules, neighbours, sockets and owners.

`table` shows what a user debugging a pod needs first (the main routing table, non-default policy
rules, every socket); `wide` adds the local/broadcast tables, every rule, MACs, inodes and processes.
"""
from __future__ import annotations

from kubectl_whose.analysis.pod.netinfo import NetInfo
from kubectl_whose.render.output import make_console


def _row(table, *cells) -> None:
    # Text, not str: `[fd00::1]:80` or a process name with brackets would be read as rich markup.
    from rich.text import Text

    table.add_row(*(Text(str(c)) for c in cells))


def _say(console, text: str) -> None:
    console.print(text, markup=False, highlight=False)

DEFAULT_RULE_PRIORITIES = {0, 32766, 32767}


def render_net(info: NetInfo, wide: bool = False, console=None) -> None:
    from rich.table import Table

    console = console or make_console()
    seen = info.seen_from
    if seen:
        host = seen.get("host_interface")
        _say(console, f"seen from node {seen['node']}" + (f"; pod {seen['pod']}'s host-side interface is "
                                                           f"{host['interface']}: {host['why']}" if host else ""))
    ifaces = Table(title="Interfaces", title_justify="left", box=None, pad_edge=False)
    for col in ("IF", "NAME", "KIND", "STATE", "MTU", "ADDRESSES") + (("MAC",) if wide else ()):
        ifaces.add_column(col, overflow="fold")
    for i in info.interfaces:
        addrs = ", ".join(a.cidr + (f" peer {a.peer}" if a.peer else "") for a in i.addresses
                          if wide or a.scope != "link") or "-"
        row = [str(i.index), i.display_name, i.kind or i.link_type or "-", i.state or "-", str(i.mtu or "-"), addrs]
        _row(ifaces, *row, *([i.mac or "-"] if wide else []))
    console.print(ifaces)
    for i in info.interfaces:
        if i.peer_note:
            _say(console, f"  {i.display_name}: {i.peer_note}")

    routes = [r for r in info.routes if wide or r.table in ("main", "254") or r.table not in ("local", "255")]
    if routes:
        t = Table(title="Routes" + ("" if wide else " (main and policy tables; -o wide adds local)"),
                  title_justify="left", box=None, pad_edge=False)
        for col in ("TABLE", "DESTINATION", "VIA", "DEV", "SRC", "PROTO") + (("TYPE", "METRIC") if wide else ()):
            t.add_column(col, overflow="fold")
        for r in routes:
            row = [r.table, r.dst, r.gateway or "-", r.dev or "-", r.prefsrc or "-", r.protocol or "-"]
            _row(t, *row, *([r.type, str(r.metric) if r.metric is not None else "-"] if wide else []))
        console.print(t)

    rules = [r for r in info.rules if wide or r.priority not in DEFAULT_RULE_PRIORITIES]
    if rules:
        t = Table(title="Policy routing rules", title_justify="left", box=None, pad_edge=False)
        for col in ("FAMILY", "PRIO", "RULE"):
            t.add_column(col)
        for r in rules:
            _row(t, r.family, str(r.priority), r.text)
        console.print(t)
    elif info.rules:
        _say(console, "Policy routing rules: only the defaults (local, main, default)")

    if info.neighbours:
        t = Table(title="Neighbours", title_justify="left", box=None, pad_edge=False)
        for col in ("ADDRESS", "DEV", "LLADDR", "STATE"):
            t.add_column(col)
        for n in info.neighbours:
            _row(t, n.dst, n.dev or "-", n.lladdr or "-", ",".join(n.state) or "-")
        console.print(t)

    render_sockets(info, wide, console)
    for why in info.missing:
        _say(console, f"not collected: {why}")


def render_sockets(info: NetInfo, wide: bool = False, console=None) -> None:
    from rich.table import Table

    console = console or make_console()
    if not info.sockets:
        _say(console, "Sockets: none" + (" (ss output not collected)" if "sockets" in " ".join(info.missing) else ""))
        return
    t = Table(title="Sockets", title_justify="left", box=None, pad_edge=False)
    cols = ["PROTO", "STATE", "LOCAL", "PEER", "UID", "OWNER"] + (["PROCESS", "INODE", "WHY"] if wide else [])
    for col in cols:
        t.add_column(col, overflow="fold")
    order = {"LISTEN": 0, "UNCONN": 1}
    # A busy pod holds hundreds of TIME-WAIT sockets (closed, no owner left); `wide` lists them.
    shown = [s for s in info.sockets if wide or s.state != "TIME-WAIT"]
    for s in sorted(shown, key=lambda s: (order.get(s.state, 2), s.proto, s.local_port or 0)):
        o = s.owner
        owner = "-" if o is None else (f"{o.name} [{o.mesh}]" if o.mesh else o.name)
        row = [s.proto, s.state, s.local + (f" ({s.device})" if s.device else ""), s.peer,
               "-" if s.uid is None else str(s.uid), owner]
        if wide:
            procs = ", ".join(f"{p.name}/{p.pid}" for p in s.processes) or "-"
            row += [procs, str(s.inode or "-"), o.evidence if o else "-"]
        _row(t, *row)
    console.print(t)
    hidden = len(info.sockets) - len(shown)
    if hidden:
        _say(console, f"  {hidden} sockets in TIME-WAIT not listed (-o wide lists them)")
    if not any(s.processes for s in info.sockets):
        if info.container:
            _say(console, f"  no process visible through {info.container}'s process namespace: reading another "
                          f"uid's /proc/PID/fd needs CAP_SYS_PTRACE, which the debug container does not get "
                          f"(owners are named by uid)")
        else:
            _say(console, "  processes are not visible from the debug container; -c CONTAINER shares that "
                          "container's process namespace (owners are still named by uid)")

