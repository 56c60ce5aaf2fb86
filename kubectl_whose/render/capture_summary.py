"""The final output of `analyze` and `capture`: one function, so both print the same thing.

Streams (tshark's numbering) or one stream's flag table, then the NAT-split streams joined into
connections (`analysis.pod.connections`). `-o json` is written row by row (`summary_json`), `-o yaml`
from the same dict, `table`/`wide` with rich.
"""
from __future__ import annotations

import sys
from typing import Any, List, Optional, TextIO


def print_summary(summary: Any, connections: List[dict], output: str, detail: bool,
                  out: Optional[TextIO] = None, capture_point: Optional[dict] = None,
                  inbound: Optional[List[dict]] = None) -> None:
    """`out`: where the summary goes (default stdout; `capture -w -` sends it to stderr, stdout is the pcap).
    `capture_point`: where a `capture --node` ran (JSON/YAML only; the table's chatter says it on stderr)."""
    from kubectl_whose.render.output import emit

    extra = {"connections": connections, "inbound": inbound or [],
             **({"capture_point": capture_point} if capture_point else {})}
    if output == "json":
        from kubectl_whose.render.summary_json import write_json

        # row by row: 100 000 streams must not mean one 100 MB string
        write_json(summary, out, extra=extra)
    elif output == "yaml":
        from kubectl_whose.render.summary_yaml import write_yaml

        write_yaml(summary, out, extra=extra)
    else:
        emit(summary, output, lambda data, wide: _table(data, connections, inbound or [], wide, detail, out))


def print_captured(done: Any, output: str, detail: bool, to_stdout: bool = True) -> None:
    """What `capture` prints at the end for one pod (`done`: `collect.capture.Captured`). With `-w -`
    (`to_stdout` False) stdout is the pcap, so the summary goes to stderr as a table."""
    if done.summary is None:
        return
    if not to_stdout:
        print_summary(done.summary, done.connections, "wide" if output == "wide" else "table", detail,
                      out=sys.stderr, inbound=done.inbound)
    else:
        print_summary(done.summary, done.connections, output, detail, capture_point=done.capture_point,
                      inbound=done.inbound)


def _table(summary: Any, connections: List[dict], inbound: List[dict], wide: bool, detail: bool,
           out: Optional[TextIO]) -> None:
    from kubectl_whose.render import flags_table, streams_table

    if detail:
        streams_table.print_header(summary)
        flags_table.render(summary.detail, wide=wide, out=out)
        return
    streams_table.render(summary, wide=wide, out=out)
    if connections or inbound:
        from kubectl_whose.render.connections_view import render_connections, render_inbound

        if connections:
            render_connections(connections, wide, out)
        if inbound:
            render_inbound(inbound, wide, out)
