"""fieldSelector / labelSelector matching for list and watch (the forms kubectl and clients send)."""
from __future__ import annotations

from typing import Callable


def _field(obj: dict, path: str):
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part, "")
    return cur if cur is not None else ""


def _terms(selector: str):
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
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
        return True
    return match
