"""One switch from `-o` to a renderer, and the one place that decides terminal vs pipe.

Renderers take analysis dataclasses (or plain dicts from `to_dict()`), never raw input.
Human chatter goes to stderr; stdout belongs to the table, JSON, YAML or pcap.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Callable, Optional, TextIO

TABLE_WIDTH = 120  # tables stay readable in 120 columns


def stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def make_console(stderr: bool = False, width: Optional[int] = None, file: Optional[TextIO] = None):
    """A rich Console on `file` (default stdout, or stderr): colour on a terminal, plain fixed-width text in a
    pipe."""
    from rich.console import Console

    stream = file or (sys.stderr if stderr else sys.stdout)
    is_tty = stream.isatty() if hasattr(stream, "isatty") else False
    if is_tty:
        return Console(file=stream, stderr=stderr, highlight=False, soft_wrap=False)
    return Console(file=stream, width=width or TABLE_WIDTH, color_system=None, force_terminal=False,
                   highlight=False, emoji=False, soft_wrap=False)


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n"


def write_json(data: Any, out: TextIO) -> None:
    """`dump_json`, written as it is encoded: the joined string of a 55,000-rule dump (and the millions of pieces
    json.dumps joins) was the peak of `rules -o json`'s memory. The pieces are taken 16,384 at a time by islice
    and joined in C: a Python step per piece cost as much as the encoding."""
    from itertools import islice

    pieces = json.JSONEncoder(indent=2, sort_keys=False, default=_json_default).iterencode(data)
    while True:
        block = "".join(islice(pieces, 16384))
        if not block:
            break
        out.write(block)
    out.write("\n")


def dump_yaml(data: Any) -> str:
    import yaml

    return yaml.safe_dump(json.loads(json.dumps(data, default=_json_default)), sort_keys=False,
                          default_flow_style=False, allow_unicode=True)


def emit(data: Any, output: str, table: Callable[[Any, bool], None], out: Optional[TextIO] = None) -> None:
    """Write `data` in the `-o` form: json/yaml from `to_dict()` (to `out`, default stdout), else
    `table(data, wide)`."""
    if output in ("json", "yaml"):
        payload = data.to_dict() if hasattr(data, "to_dict") else data
        if output == "json":
            write_json(payload, out or sys.stdout)
        else:
            (out or sys.stdout).write(dump_yaml(payload))
    elif output in ("table", "wide"):
        table(data, output == "wide")
    else:  # click.Choice guards this; kept for callers that bypass click
        raise ValueError(f"unknown output format {output!r}; choose one of table, wide, json, yaml")


def _json_default(o):
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    if isinstance(o, bytes):
        return o.hex()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
