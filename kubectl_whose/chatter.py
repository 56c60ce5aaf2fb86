"""The one voice for human chatter: `kubectl-whose: ...` lines on stderr, never on stdout.

stdout belongs to the table, the JSON/YAML or the pcap (`-w -`); what the plugin says while it works
(a debug container added, the capture running, a file written) goes here.
"""
from __future__ import annotations

import sys
from typing import Callable

Say = Callable[[str], None]


def say(message: str) -> None:
    print(f"kubectl-whose: {message}", file=sys.stderr, flush=True)
