"""fieldSelector / labelSelector matching for list and watch (the forms kubectl and clients send): equality
(`=`, `==`, `!=`), existence (`k`, `!k`) and sets (`k in (a,b)`, `k notin (a,b)`), as apimachinery parses them."""
from __future__ import annotations

import re
from typing import Callable


def _field(obj: dict, path: str):
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part, "")
    return cur if cur is not None else ""


def _split(selector: str):
    """Top-level terms: commas inside `in (a,b)` sets do not split (apimachinery's labels.Parse)."""
    depth, cur = 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            yield cur.strip()
            cur = ""
        else:
            cur += ch
    if cur.strip():
        yield cur.strip()


_SET = re.compile(r"^([^\s!=]+)\s+(in|notin)\s*\(([^)]*)\)$")


def _terms(selector: str):
    for term in _split(selector):
        m = _SET.match(term)
        if m:
            yield m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",") if v.strip()}
        elif "!=" in term:
            k, v = term.split("!=", 1)
            yield k.strip(), "!=", v.strip()
        elif "==" in term:
            k, v = term.split("==", 1)
            yield k.strip(), "=", v.strip()
        elif "=" in term:
            k, v = term.split("=", 1)
            yield k.strip(), "=", v.strip()
        elif term.startswith("!"):
            yield term[1:].strip(), "!exists", ""
        else:
            yield term, "exists", ""


def matcher(field_selector: str, label_selector: str) -> Callable[[dict], bool]:
    fields = list(_terms(field_selector or ""))
    labels = list(_terms(label_selector or ""))

    def match(obj: dict) -> bool:
        for k, op, v in fields:
            actual = str(_field(obj, k))
            if (op == "=" and actual != v) or (op == "!=" and actual == v):
                return False
        obj_labels = (obj.get("metadata") or {}).get("labels") or {}
        for k, op, v in labels:
            if op == "exists" and k not in obj_labels:
                return False
            if op == "!exists" and k in obj_labels:
                return False
            if op == "=" and obj_labels.get(k) != v:
                return False
            if op == "!=" and obj_labels.get(k) == v:
                return False
            if op == "in" and obj_labels.get(k) not in v:
                return False
            if op == "notin" and k in obj_labels and obj_labels[k] in v:
                return False
        return True
    return match
