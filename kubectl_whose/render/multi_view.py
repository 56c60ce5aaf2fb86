"""A capture of several pods: each pod's summary and joins, the connections followed from pod to pod, and the
pods that failed. Table, wide, JSON and YAML from the same data."""
from __future__ import annotations

import sys
from typing import List, Optional, TextIO

from kubectl_whose.render.output import dump_json, dump_yaml, make_console


def many_to_dict(captured) -> dict:
    pods = []
    for run in captured.runs:
        entry = {"namespace": run.target.namespace, "pod": run.target.name, "node": run.node or run.target.node,
                 "via": run.target.via, "interface": run.interface or None, "bytes": run.bytes_written,
                 "error": run.error.message if run.error else None,
                 "capture_point": run.capture_point}
        if run.summary is not None:
            entry.update(run.summary.to_dict())
            entry.update({"connections": run.connections, "inbound": run.inbound})
        pods.append(entry)
    return {"pods": pods, "links": captured.links,
            "failed": [{"pod": r.label, "error": r.error.message, "code": int(r.error.code)} for r in captured.failed]}


def print_many(captured, output: str, out: Optional[TextIO] = None) -> None:
    if output in ("json", "yaml"):
        data = many_to_dict(captured)
        (out or sys.stdout).write(dump_json(data) if output == "json" else dump_yaml(data))
        return
    from kubectl_whose.render.capture_summary import print_summary

    wide = output == "wide"
    console = make_console(file=out)
    err = make_console(stderr=True)
    for run in captured.runs:
        where = f"node {run.node or run.target.node}" + (f", interface {run.interface}" if run.interface else "")
        err.print(f"== {run.label} ({where}; {run.target.via})", markup=False, highlight=False)
        if run.summary is None:
            err.print(f"   no capture: {run.error.message if run.error else 'nothing arrived'}", markup=False)
            continue
        print_summary(run.summary, run.connections, "wide" if wide else "table", False, out=out, inbound=run.inbound)
        if run.error is not None:
            err.print(f"   ended early: {run.error.message}", markup=False, highlight=False)
    render_links(captured.links, wide, console)


def render_links(links: List[dict], wide: bool, console) -> None:
    from rich.table import Table
    from rich.text import Text

    if not links:
        console.print("Between pods: no connection seen leaving one captured pod and arriving at another",
                      markup=False)
        return
    t = Table(title="Between pods (the client's SYN sequence number seen on both sides)", title_justify="left",
              box=None, pad_edge=False)
    for col in ("CONNECTION", "FROM", "TO", "NAT", "DELAY"):
        t.add_column(col, overflow="fold")
    for x in links:
        delay = f"{x['delay'] * 1000:.2f} ms" + (" (2 clocks)" if x["clock_caveat"] else "")
        t.add_row(Text(x["text"]), Text(f"{x['from']['pod']}:{x['from']['stream']}"),
                  Text(f"{x['to']['pod']}:{x['to']['stream']}"), Text(nat_cell(x)), Text(delay))
    console.print(t)
    if wide:
        for x in links:
            console.print(f"{x['from']['pod']}:{x['from']['stream']} -> {x['to']['pod']}:{x['to']['stream']}: "
                          + "; ".join(x["proof"]) + (f"; {x['clock_caveat']}" if x["clock_caveat"] else ""),
                          markup=False, highlight=False)


def nat_cell(link: dict) -> str:
    """The rewrites, and the kube-proxy chain that chose the endpoint when the node's rules were read."""
    rule = link.get("service_rule")
    return (", ".join(link["nat"]) or "-") + (f" ({rule['chain']} on {rule['node']})" if rule else "")
