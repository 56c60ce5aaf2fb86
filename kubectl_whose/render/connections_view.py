"""Joined connections as rows: `app 10.0.0.2:52446 → [proxy 127.0.0.1:15001] → 10.0.0.3:80`, the two stream
numbers that make one connection, and the proxy's upstream leg. `wide` adds the proof, the evidence for each
link, the owners and the redirect rule. Takes `Connection` objects or their `to_dict()` forms.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List

from kubectl_whose.render.output import make_console, say_line


def _as_dict(c: Any) -> Dict[str, Any]:
    return c.to_dict() if hasattr(c, "to_dict") else c


def connection_rows(connections: Iterable[Any], wide: bool = False) -> List[Dict[str, str]]:
    """The cells of each row, plain text (the table and tests share them)."""
    rows = []
    for c in map(_as_dict, connections):
        up = c.get("upstream")
        src = f" from {up['client']}" if up and wide else ""
        rows.append({
            "connection": c["text"],
            "streams": " + ".join(str(i) for i in c["streams"]),
            "upstream": (f"stream {up['stream']}{src} (+{up['delay'] * 1000:.1f} ms)" if up else
                         ("-" if c["state"] == "refused" else "not in capture")),
            "state": c["state"],
        })
    return rows


def render_connections(connections: Iterable[Any], wide: bool = False, out=None) -> None:
    from kubectl_whose.render.grid import Column, write_table

    conns = [_as_dict(c) for c in connections]
    console = make_console(file=out)
    if not conns:
        say_line(console, "Connections: no NAT-split streams (every SYN was answered in its own stream)")
        return
    keys = ("connection", "streams", "upstream", "state")
    cols = [Column("CONNECTION", wrap=True), Column("STREAMS"), Column("UPSTREAM LEG", wrap=True, below=True),
            Column("STATE")]
    write_table(cols, [[row[k] for k in keys] for row in connection_rows(conns, wide)], wide=wide, out=out,
                title="Connections (NAT-split streams joined by SYN seq + 1 = answer ack)")
    rules = {c.get("rule") for c in conns}
    shared = rules.pop() if len(rules) == 1 and not wide else None  # one rule for all: say it once
    if shared:
        say_line(console, f"all redirected by {shared}")
    for c in conns:
        lines = []
        if c.get("reset_by"):
            lines.append(f"reset by {c['reset_by']}")
        if wide:
            lines.append(f"proof: {c['proof']}")
            for key, label in (("client_owner", "app socket"), ("proxy_owner", "proxy socket")):
                o = c.get(key)
                if o:
                    lines.append(f"{label}: {o['name']}: {o['evidence']}")
            up = c.get("upstream")
            if up:
                lines.append(f"upstream stream {up['stream']}: " + "; ".join(up["evidence"]))
                if up.get("owner"):
                    lines.append(f"upstream socket: {up['owner']['name']}: {up['owner']['evidence']}")
        if c.get("rule") and not shared:
            lines.append(f"redirected by {c['rule']}")
        if wide and c.get("rule_note"):
            lines.append(f"rule note: {c['rule_note']}")
        if lines:
            say_line(console, f"streams {' + '.join(map(str, c['streams']))}:")
            for line in lines:
                say_line(console, line, indent=2)


def render_inbound(links: Iterable[Any], wide: bool = False, out=None) -> None:
    """Inbound connections and the sidecar's local leg that carries each to the app (`analysis.pod.inbound`)."""
    from kubectl_whose.render.grid import Column, write_table

    links = [_as_dict(x) for x in links]
    console = make_console(file=out)
    rows = []
    for x in links:
        how = "timing only" if x["by_timing_only"] else ("time order decides" if x["candidates"] > 1 else "evidence")
        leg = f"{x['local_client']} (+{x['delay'] * 1000:.1f} ms)"
        rows.append([x["text"], " + ".join(map(str, x["streams"])), leg, how])
    write_table([Column("INBOUND", wrap=True), Column("STREAMS"), Column("LOCAL LEG", wrap=True, below=True),
                 Column("LINK", wrap=True, below=True)], rows, wide=wide, out=out,
                title="Inbound through the sidecar (linked by evidence, not proved: a proxy starts a new TCP "
                      "connection)")
    if wide:
        for x in links:
            say_line(console, f"streams {x['inbound_stream']} + {x['local_stream']}: " + "; ".join(x["evidence"]))
