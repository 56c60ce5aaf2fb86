"""The one voice for human chatter: `kubectl-whose: ...` lines on stderr, never on stdout.

stdout belongs to the table, the JSON/YAML or the pcap (`-w -`); what the plugin says while it works
(a debug container added, the capture running, a file written) goes here. On a terminal a long line is wrapped at
spaces (the terminal itself would cut an image name or an address in the middle); elsewhere it stays one line.
"""
from __future__ import annotations

import os
import sys
import textwrap
from typing import Callable

Say = Callable[[str], None]
PREFIX = "kubectl-whose: "


def say(message: str) -> None:
    print(fit(PREFIX + message, sys.stderr), file=sys.stderr, flush=True)


def warning(text: str) -> None:
    """An API server's `Warning:` header (a PodSecurity `warn` level, a deprecated API), printed as kubectl's
    default warning handler prints it."""
    print(fit(f"Warning: {text}", sys.stderr), file=sys.stderr, flush=True)


def fit(line: str, stream) -> str:
    """`line` wrapped at spaces to the width of the terminal `stream` shows (unchanged when it is no terminal)."""
    try:
        width = os.get_terminal_size(stream.fileno()).columns if stream.isatty() else 0
    except (AttributeError, ValueError, OSError):
        width = 0
    if width <= 0:
        return line
    return textwrap.fill(line, width=width, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False)
