"""`-o yaml` for a capture summary, written row by row, byte for byte what `yaml.safe_dump` writes.

Dumping the whole summary at once (what `render.output.dump_yaml` does) builds every row and then
PyYAML's node graph for all of them: 97 s and 2.6 GB for 100 000 streams. Here the top-level keys
go through PyYAML as usual and every row of `streams` (and of `detail.packets`) is written by
`RowWriter`, which knows the rows' few shapes (numbers, None, short strings, a flat dict, a list of
strings). Every string's form (plain or quoted) is PyYAML's own choice, asked once per distinct
string, except dotted-quad endpoints, whose form is known (plain); tests/render/test_summary_yaml.py
checks the text against `yaml.safe_dump` on real captures.
"""
from __future__ import annotations

import math
import re
import sys
from typing import Any, Dict, Iterable, Optional, TextIO

_IPV4_ENDPOINT = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}:\d{1,5}\Z")
_CACHE_LIMIT = 1 << 16


def _yaml():
    import yaml

    return yaml


def _dump(data: Any) -> str:
    yaml = _yaml()
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=False, allow_unicode=True)


_SAFE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_YAML11_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


class _Fallback(Exception):
    """A row this writer does not know how to write exactly: PyYAML writes it."""


class RowWriter:
    """Block-style YAML list items for flat rows, exactly as PyYAML's safe dumper writes them.

    A scalar's form can depend on its column (PyYAML folds long strings at 80), so every string is
    asked of PyYAML in the very place it will stand (depth, key, dict key or list item), once per
    distinct (place, string); anything else unusual (odd keys, a string PyYAML folds) sends the
    whole row to PyYAML."""

    def __init__(self):
        self._forms: Dict[tuple, Optional[str]] = {}

    def item(self, row: Dict[str, Any], depth: int = 0) -> str:
        """One `- key: value` item of a list right under a key at `depth` (0: top level, 1: nested once)."""
        try:
            return self._item(row, depth)
        except _Fallback:
            if depth == 0:
                return _dump([row])
            return "".join(_dump({"d": {"p": [row]}}).splitlines(True)[2:])

    def _item(self, row: Dict[str, Any], depth: int) -> str:
        pad = "  " * depth
        lines = []
        lead = "- "
        for key, value in row.items():
            k = _key(key)
            if isinstance(value, dict):
                if value:
                    lines.append(f"{pad}{lead}{k}:")
                    lines.extend(f"{pad}    {_key(sk)}: {self._scalar(sv, depth, key, ('dict', sk))}"
                                 for sk, sv in value.items())
                else:
                    lines.append(f"{pad}{lead}{k}: {{}}")
            elif isinstance(value, (list, tuple)):
                if value:
                    lines.append(f"{pad}{lead}{k}:")
                    lines.extend(f"{pad}  - {self._scalar(x, depth, key, ('list',))}" for x in value)
                else:
                    lines.append(f"{pad}{lead}{k}: []")
            else:
                lines.append(f"{pad}{lead}{k}: {self._scalar(value, depth, key, ())}")
            lead = "  "
        if not lines:
            raise _Fallback
        return "\n".join(lines) + "\n"

    def _scalar(self, v: Any, depth: int, key: str, where: tuple) -> str:
        if v is None:
            return "null"
        if v is True or v is False:
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            return _float(v)
        if not isinstance(v, str):
            raise _Fallback
        if _IPV4_ENDPOINT.match(v):
            return v
        place = (depth, key, where, v)
        form = self._forms.get(place, False)
        if form is False:
            if len(self._forms) > _CACHE_LIMIT:
                self._forms.clear()
            form = self._forms[place] = _probe(depth, key, where, v)
        if form is None:
            raise _Fallback
        return form


def _key(key: Any) -> str:
    if isinstance(key, str) and _SAFE_KEY.match(key) and key.lower() not in _YAML11_WORDS:
        return key
    raise _Fallback


def _probe(depth: int, key: str, where: tuple, s: str) -> Optional[str]:
    """How PyYAML writes `s` in that place, if on one line."""
    value: Any = s if not where else {where[1]: s} if where[0] == "dict" else [s]
    data: Any = [{key: value}]
    if depth:
        data = {"d": {"p": data}}
    lines = _dump(data).splitlines()
    expected = (1 if not where else 2) + 2 * depth
    if len(lines) != expected:
        return None
    pad = "  " * depth
    prefix = pad + (f"- {key}: " if not where else f"    {where[1]}: " if where[0] == "dict" else "  - ")
    return lines[-1][len(prefix):] if lines[-1].startswith(prefix) else None


def _float(v: float) -> str:
    """SafeRepresenter.represent_float."""
    if math.isnan(v):
        return ".nan"
    if math.isinf(v):
        return ".inf" if v > 0 else "-.inf"
    text = repr(v).lower()
    if "." not in text and "e" in text:
        text = text.replace("e", ".0e", 1)
    return text


def write_rows(out: TextIO, key: str, rows: Iterable[Dict[str, Any]], writer: RowWriter, depth: int = 0) -> None:
    pad = "  " * depth
    first = True
    for row in rows:
        if first:
            out.write(f"{pad}{key}:\n")
            first = False
        out.write(writer.item(row, depth))
    if first:
        out.write(f"{pad}{key}: []\n")


def write_yaml(summary: Any, out: Optional[TextIO] = None, extra: Optional[dict] = None) -> None:
    """`extra`: further top-level keys (e.g. `connections`), written after `detail`, as in `to_dict()`."""
    out = out or sys.stdout
    writer = RowWriter()
    out.write(_dump(summary.head()))
    write_rows(out, "streams", summary.iter_streams(), writer)
    detail = summary.detail
    if detail is None:
        out.write("detail: null\n")
    else:
        out.write("detail:\n")
        out.write("".join("  " + line + "\n" for line in _dump({k: v for k, v in detail.items()
                                                                  if k != "packets"}).splitlines()))
        write_rows(out, "packets", detail["packets"], writer, depth=1)
    if extra:
        out.write(_dump(extra))
