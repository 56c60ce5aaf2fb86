"""Which stream engine analyses a capture: the native one when it is built, else pure Python.

Both implement the same thing (tshark 4.0.17's stream figures, Zeek's states): `analysis.streams`
and friends in Python are the reference and run anywhere; `_engine.c` is their transcription in C,
built by `pip install` when a compiler is there and skipped otherwise (a krew archive is pure
Python). The tests run every capture through both and through tshark.

`KUBECTL_WHOSE_ENGINE=python` forces the Python engine (to compare, or to rule the C one out);
`=native` makes a missing native engine an error instead of a silent fallback (CI sets it).
"""
from __future__ import annotations

import os
from typing import Optional

from kubectl_whose.errors import ExitCode, WhoseError

ENGINES = ("native", "python")
ENV = "KUBECTL_WHOSE_ENGINE"


def native_engine():
    """The `Engine` class of the compiled module, or None when it was not built."""
    try:
        from kubectl_whose.analysis._engine import Engine
    except ImportError:
        return None
    return Engine


def choose(engine: Optional[str] = None) -> str:
    """'native' or 'python': the argument, else $KUBECTL_WHOSE_ENGINE, else the best available."""
    wanted = (engine or os.environ.get(ENV) or "auto").strip().lower()
    if wanted not in ENGINES + ("auto",):
        raise WhoseError(f"{ENV}={wanted!r}: use native, python or auto", ExitCode.USAGE)
    if wanted == "python":
        return "python"
    if native_engine() is not None:
        return "native"
    if wanted == "native":
        raise WhoseError("the native analysis engine is not built (kubectl_whose/analysis/_engine.c); reinstall "
                         f"with a C compiler (pip install --force-reinstall kubectl-whose) or unset {ENV}",
                         ExitCode.TOOL_MISSING)
    return "python"
