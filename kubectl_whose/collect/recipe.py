"""What runs in the debug container, as data: one `Recipe` type, one runner, one rule for a missing binary.

A recipe is a name and an argv list (user input only ever as separate argv words); it never parses.
`run_all` runs recipes through a `cluster.session.DebugSession` and hands back their text, which
goes to the same parsers (`analysis.*`) that the offline paths (`--from-file`) feed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Tuple

from kubectl_whose.errors import ExitCode, WhoseError

MISSING_EXIT_CODES = (126, 127)  # the shell's "cannot execute" and "not found"


@dataclass(frozen=True)
class Recipe:
    name: str
    argv: Tuple[str, ...]
    required: bool = False  # a live run fails when a required recipe fails; others only warn
    file: Optional[str] = None  # the file it is saved as (`net --save DIR`, `--from-file DIR`)

    @property
    def binary(self) -> str:
        return self.argv[0]


@dataclass
class Output:
    recipe: Recipe
    stdout: str
    stderr: str
    exit_code: int
    error: Optional[str] = None  # the runtime's words when the binary could not be started

    @property
    def missing(self) -> bool:
        return binary_missing(self.exit_code, self.error, self.stderr)

    def why(self) -> str:
        """The first line of what went wrong, for a message."""
        words = (self.stderr.strip() or self.error or "").splitlines()
        return words[0] if words else f"exit code {self.exit_code}"


def binary_missing(exit_code: int, error: Optional[str], stderr: str = "") -> bool:
    """Whether a run failed because its binary (or the shell around it) is not in the image: the exit code
    of a shell, containerd's `exec: "x": executable file not found in $PATH`, or busybox's `sh: x: not found`."""
    error = error or ""
    return (exit_code in MISSING_EXIT_CODES or "executable file not found" in error
            or "no such file or directory" in error.lower() or ": not found" in f"{error} {stderr}")


def missing_tool_error(binary: str, image: str, error: Optional[str] = None, stderr: str = "") -> WhoseError:
    from kubectl_whose.cluster.image import DEFAULT_IMAGE

    words = (error or stderr).strip().splitlines()
    detail = f" ({words[-1]})" if words else ""
    return WhoseError(f"the debug image {image} has no {binary}; pass --image with an image that carries it "
                      f"(default {DEFAULT_IMAGE}){detail}", ExitCode.TOOL_MISSING)


def run_all(session, recipes: Iterable[Recipe], timeout: float = 30) -> Dict[str, Output]:
    """Run each recipe to completion in the session's debug container, in order."""
    out: Dict[str, Output] = {}
    for recipe in recipes:
        r = session.run(list(recipe.argv), timeout=timeout)
        out[recipe.name] = Output(recipe, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace"),
                                  r.exit_code, r.error)
    return out
