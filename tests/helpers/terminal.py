"""A real terminal for the CLI: tmux, at a given size, and the screen a user would see.

`run_in_terminal(args, width)` runs `python -m kubectl_whose ARGS` in a detached tmux session of `width` columns
(its own tmux server, on its own socket, removed afterwards) and returns the screen: every line as tmux shows it
(`lines`), the same with the lines the terminal itself wrapped joined again (`joined`), and the exit code.
Lines the terminal had to wrap are lines the program wrote past the edge; `overflowed()` lists them.

`whole_on_screen(screen, values)` is the check the issue asks for: every value appears whole on one line of the
screen (a value split across lines, cropped, or cut with "…" does not).
"""
from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence

WIDTHS = (80, 100, 120, 200)
_COUNTER = itertools.count()
_CONFIG = "set -g remain-on-exit on\nset -g history-limit 200000\nset -g status off\n"


def tmux_missing() -> Optional[str]:
    return None if shutil.which("tmux") else "tmux is not installed (scripts/bootstrap.sh installs it)"


@dataclass
class Screen:
    width: int
    lines: List[str]
    joined: List[str]
    code: int

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def overflowed(self) -> List[str]:
        """The lines that ran past the terminal's edge (the terminal wrapped them)."""
        return [ln for ln in self.joined if len(ln) > self.width]

    def __str__(self) -> str:
        return f"--- {self.width} columns, exit {self.code} ---\n{self.text}"


def run_in_terminal(args: Sequence[str], width: int, height: int = 50, env: Optional[dict] = None,
                    timeout: float = 120) -> Screen:
    socket = f"kwt{os.getpid()}-{next(_COUNTER)}"
    with tempfile.TemporaryDirectory(prefix="kw-tmux-") as tmp:
        conf = Path(tmp) / "tmux.conf"
        conf.write_text(_CONFIG)
        cmd = " ".join(_quote(a) for a in [sys.executable, "-m", "kubectl_whose", *args])
        environ = {k: v for k, v in dict(os.environ, **(env or {})).items() if k not in ("COLUMNS", "LINES", "TMUX")}
        environ.setdefault("TERM", "xterm-256color")

        def tmux(*targs: str) -> str:
            return subprocess.run(["tmux", "-L", socket, "-f", str(conf), *targs], capture_output=True, text=True,
                                  env=environ, check=True, timeout=30).stdout

        tmux("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), cmd)
        try:
            deadline = time.monotonic() + timeout
            while True:
                dead, status = (tmux("display-message", "-p", "-t", "t", "#{pane_dead} #{pane_dead_status}")
                                .split() + ["", ""])[:2]
                if dead == "1":
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"{cmd} still running after {timeout} s:\n"
                                         + tmux("capture-pane", "-p", "-t", "t"))
                time.sleep(0.1)
            lines = _trim(tmux("capture-pane", "-p", "-S", "-", "-E", "-", "-t", "t").splitlines())
            joined = _trim(tmux("capture-pane", "-p", "-J", "-S", "-", "-E", "-", "-t", "t").splitlines())
        finally:
            subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, env=environ)
    return Screen(width, lines, joined, int(status or 0))


def _quote(word: str) -> str:
    import shlex

    return shlex.quote(word)


def _trim(lines: List[str]) -> List[str]:
    lines = [ln.rstrip() for ln in lines if not ln.startswith("Pane is dead")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def missing_from(screen: Screen, values: Iterable[str]) -> List[str]:
    """The values that do not appear whole on one line of the screen."""
    return [v for v in dict.fromkeys(str(v) for v in values) if v and not any(v in ln for ln in screen.lines)]


def left_out(screen: Screen) -> List[str]:
    """The columns the screen says it left out ("80 columns: A, B left out (-o wide shows them)")."""
    import re

    m = re.search(r"\d+ columns: (.*?) left out \(-o wide shows them\)", " ".join(ln.strip() for ln in screen.lines))
    return [n.strip() for n in m.group(1).split(",")] if m else []


def words(*texts: str) -> List[str]:
    """The words of sentences (a sentence may wrap at spaces; a word never breaks)."""
    return [w for t in texts if t for w in str(t).split()]
