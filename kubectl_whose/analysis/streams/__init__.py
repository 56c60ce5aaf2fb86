"""The stream engine: frame events in, per-stream figures (tshark's numbering, Zeek's states) out.

The face: `analyze_file(path)` for a file or a pipe, `CaptureAnalyzer` to feed chunks (a live
capture), `CaptureSummary` for what they give back, `check_stream_index` for `--stream N`.
Inside: `analyzer` (the feed loop), `engine` (the `StreamEngine` interface and the choice of
implementation), `python/` (the reference engine) and `native/` (its C transcription), `rows`
(rows on demand, and `--stream N`'s packet rows), `summary` (the result and its JSON contract).

The face loads its modules on first use, so `--help` (which only needs `summary.PROTOS`) does not
pay for the engine.
"""
import importlib

_FACE = {"CaptureAnalyzer": "analyzer", "analyze_file": "analyzer", "CaptureSummary": "summary",
         "LiveStats": "summary", "check_stream_index": "summary", "PROTOS": "summary"}
__all__ = sorted(_FACE)


def __getattr__(name: str):
    if name not in _FACE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_FACE[name]}"), name)
