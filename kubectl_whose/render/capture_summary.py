"""The final output of `analyze` and `capture`: one function, so both print the same thing.

Streams (tshark's numbering) or one stream's flag table, then the NAT-split streams joined into
connections (`analysis.pod.connections`). `-o json` is written row by row (`summary_json`), `-o yaml`
from the same dict, `table`/`wide` with rich.
"""
from __future__ import annotations

from typing import Any, List


def connections_of(summary: Any, **evidence) -> List[dict]:
    """The `connections` list (issue 6): joins proved by sequence numbers; `streams` stays tshark's."""
    from kubectl_whose.analysis.pod.connections import connections_json

    return connections_json(summary, **evidence)


def print_summary(summary: Any, connections: List[dict], output: str, detail: bool) -> None:
    from kubectl_whose.render.output import emit

    if output == "json":
        from kubectl_whose.render.summary_json import write_json

        # row by row: 100 000 streams must not mean one 100 MB string
        write_json(summary, extra={"connections": connections})
    elif output == "yaml":
        from kubectl_whose.render.summary_yaml import write_yaml

        write_yaml(summary, extra={"connections": connections})
    else:
        emit(summary, output, lambda data, wide: _table(data, connections, wide, detail))


def _table(summary: Any, connections: List[dict], wide: bool, detail: bool) -> None:
    from kubectl_whose.render import flags_table, streams_table

    if detail:
        streams_table.print_header(summary)
        flags_table.render(summary.detail, wide=wide)
        return
    streams_table.render(summary, wide=wide)
    if connections:
        from kubectl_whose.render.connections_view import render_connections

        render_connections(connections, wide)
