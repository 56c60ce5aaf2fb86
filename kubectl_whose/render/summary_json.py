"""`-o json` for a capture summary, written row by row.

A capture with 100 000 streams gives ~100 MB of JSON; building it as one indented string (what
`render.output.dump_json` does) costs seconds and that much memory again. Here the top-level keys
are indented as usual and each stream is one compact line, so the document stays valid JSON,
greps well (one stream per line) and is written with the C encoder in constant memory.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Optional, TextIO


def write_json(summary: Any, out: Optional[TextIO] = None, extra: Optional[dict] = None) -> None:
    """`extra`: further top-level keys (e.g. `connections`), written after the summary's own head."""
    out = out or sys.stdout
    write = out.write
    write("{\n")
    for key, value in {**summary.head(), **(extra or {})}.items():
        write(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},\n")
    write('  "streams": [')
    sep = "\n    "
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode
    rows = summary.json_chunks(",\n    ") if hasattr(summary, "json_chunks") else map(dumps, summary.iter_streams())
    for row in rows:
        write(sep)
        write(row)
        sep = ",\n    "
    write("\n  ],\n" if sep != "\n    " else "],\n")
    detail = summary.detail
    if detail is None:
        write('  "detail": null\n}\n')
        return
    write('  "detail": {' + f'"proto": {json.dumps(detail["proto"])}, "index": {detail["index"]}, "packets": [')
    sep = "\n    "
    for row in detail["packets"]:
        write(sep)
        write(dumps(row))
        sep = ",\n    "
    write("\n  ]}\n}\n" if sep != "\n    " else "]}\n}\n")
