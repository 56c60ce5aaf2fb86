"""Run the whole CLI in-process, as a user would, and get stdout, stderr and the exit code."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from typing import Optional, Sequence

from click.testing import CliRunner

from kubectl_whose.cli.main import main


@dataclass
class Result:
    stdout: str
    stderr: str
    code: int
    stdout_bytes: bytes = b""

    @property
    def json(self):
        import json

        return json.loads(self.stdout)


def run(*args: str, input: Optional[bytes] = None, env: Optional[dict] = None) -> Result:
    runner = CliRunner()
    with runner.isolation(input=input, env=env) as streams:
        out, err = streams[0], streams[1]
        try:
            main(list(args))
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        sys.stdout.flush()
        sys.stderr.flush()
        raw = out.getvalue()
        return Result(raw.decode("utf-8", "replace"), err.getvalue().decode("utf-8", "replace"), code, raw)


def run_process(args: Sequence[str], timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """The real console script path (a fresh interpreter), for start-up and signal tests."""
    return subprocess.run([sys.executable, "-m", "kubectl_whose", *args], capture_output=True,
                          timeout=timeout, **kw)
