"""One switch from `-o` to a renderer, and the one place that decides terminal vs pipe.

Renderers take analysis dataclasses (or plain dicts from `to_dict()`), never raw input.
Human chatter goes to stderr; stdout belongs to the table, JSON, YAML or pcap.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Callable, Optional, TextIO

# Not on a terminal nothing is wrapped or cut: rich lays out for this width and pads nothing, so every line of a
# pipe is as long as its content (a rule with a set of 1000 addresses stays one greppable line).
PIPE_WIDTH = 1_000_000


def stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def terminal_width(file: Optional[TextIO] = None) -> Optional[int]:
    """The width of the terminal `file` (default stdout) shows, or None when it is not a terminal."""
    stream = file or sys.stdout
    if not _is_terminal(stream):
        return None
    from rich.console import Console

    return Console(file=stream).width


def make_console(stderr: bool = False, file: Optional[TextIO] = None):
    """A rich Console on `file` (default stdout, or stderr): colour and the terminal's width on a terminal, plain
    text in a pipe, where nothing is wrapped (see PIPE_WIDTH)."""
    from rich.console import Console

    stream = file or (sys.stderr if stderr else sys.stdout)
    if _is_terminal(stream):
        return Console(file=stream, stderr=stderr, highlight=False, soft_wrap=False)
    return Console(file=stream, width=PIPE_WIDTH, color_system=None, force_terminal=False,
                   highlight=False, emoji=False, soft_wrap=False)


def say_line(console, text: str, style: Optional[str] = None, indent: int = 0, markup: bool = False) -> None:
    """A sentence: wrapped at spaces on a terminal (never inside an address or a number; continued lines keep the
    indent), one line in a pipe. `markup`: `text` is rich markup (its values escaped by the caller)."""
    from rich.text import Text

    line = Text.from_markup(text, style=style or "") if markup else Text(text, style=style or "")
    if not console.is_terminal:
        console.print(Text(" " * indent) + line, soft_wrap=True)
        return
    from rich.padding import Padding

    console.print(Padding(line, (0, 0, 0, indent), expand=False))


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
