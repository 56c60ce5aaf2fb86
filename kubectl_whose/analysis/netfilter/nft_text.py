"""Render nft JSON expressions in nft's own syntax (`ip daddr . meta l4proto . th dport vmap @service-ips`),
for tables, traces and diffs. Unknown expression kinds are printed as compact JSON, never dropped."""
from __future__ import annotations

import json
from typing import Any

VERDICTS = ("accept", "drop", "return", "continue", "jump", "goto", "queue")


def value_text(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return v if v.startswith("@") or " " not in v else json.dumps(v)
    if isinstance(v, list):
        return "{ " + ", ".join(value_text(x) for x in v) + " }" if len(v) != 1 else value_text(v[0])
    if not isinstance(v, dict) or len(v) != 1:
        return json.dumps(v, separators=(",", ":"))
    kind, body = next(iter(v.items()))
    if kind == "payload":
        if "protocol" in body:
            return f"{body['protocol']} {body['field']}"
        return f"@{body.get('base')},{body.get('offset')},{body.get('len')}"
    if kind == "meta":
        key = body["key"]
        return key if key in ("iifname", "oifname", "mark", "skuid", "skgid", "iif", "oif") else f"meta {key}"
    if kind == "ct":
        return f"ct {body['key']}" + (f" {body['dir']}" if body.get("dir") else "")
    if kind == "concat":
        return " . ".join(value_text(x) for x in body)
    if kind == "prefix":
        return f"{value_text(body['addr'])}/{body['len']}"
    if kind == "range":
        return f"{value_text(body[0])}-{value_text(body[1])}"
    if kind == "set":
        return "{ " + ", ".join(_elem_text(x) for x in body) + " }" if isinstance(body, list) else value_text(body)
    if kind == "numgen":
        return f"numgen {body.get('mode', 'random')} mod {body.get('mod')}" + (
            f" offset {body['offset']}" if body.get("offset") else "")
    if kind in ("&", "|", "^", "<<", ">>"):
        word = {"&": "and", "|": "or", "^": "xor"}.get(kind, kind)
        return f" {word} ".join(value_text(x) for x in body)
    if kind == "elem":
        return value_text(body.get("val"))
    if kind in VERDICTS:
        return verdict_text(v)
    return json.dumps(v, separators=(",", ":"))


def _elem_text(x: Any) -> str:
    if isinstance(x, list) and len(x) == 2:  # map element: key : value
        return f"{value_text(x[0])} : {value_text(x[1])}"
    return value_text(x)


def verdict_text(v: dict) -> str:
    kind, body = next(iter(v.items()))
    if kind in ("jump", "goto"):
        return f"{kind} {body['target']}"
    return kind


def expr_text(e: Any) -> str:
    if not isinstance(e, dict) or len(e) != 1:
        return json.dumps(e, separators=(",", ":"))
    kind, body = next(iter(e.items()))
    if kind == "match":
        op = body.get("op", "==")
        binop = isinstance(body.get("left"), dict) and next(iter(body["left"]), "") in ("&", "|", "^")
        op_text = "" if op in ("==", "in") and not binop else f"{op} "
        return f"{value_text(body['left'])} {op_text}{value_text(body['right'])}"
    if kind in VERDICTS:
        return verdict_text(e)
    if kind == "counter":
        return "counter" if not isinstance(body, dict) else f"counter packets {body.get('packets', 0)} bytes " \
                                                               f"{body.get('bytes', 0)}"
    if kind == "vmap":
        return f"{value_text(body['key'])} vmap {value_text(body['data'])}"
    if kind == "mangle":
        return f"{value_text(body['key'])} set {value_text(body['value'])}"
    if kind in ("dnat", "snat"):
        dest = value_text(body.get("addr", "")) if body.get("addr") is not None else ""
        port = f":{value_text(body['port'])}" if body.get("port") is not None else ""
        return f"{kind} to {dest}{port}"
    if kind == "redirect":
        return "redirect" + (f" to :{value_text(body['port'])}" if body and body.get("port") is not None else "")
    if kind == "masquerade":
        return "masquerade" + (f" {body['flags']}" if body and body.get("flags") else "")
    if kind == "reject":
        return "reject" + (f" with {body.get('type')} {body.get('expr', '')}".rstrip() if body else "")
    if kind == "log":
        return "log" + (f" prefix {json.dumps(body['prefix'])}" if body and body.get("prefix") else "")
    if kind == "tproxy":
        return f"tproxy to {value_text(body.get('addr', ''))}:{value_text(body.get('port', ''))}"
    return f"{kind} {json.dumps(body, separators=(',', ':'))}" if body is not None else kind


def rule_text(rule, counters: bool = True) -> str:
    parts = [expr_text(e) for e in rule.expr
             if counters or not (isinstance(e, dict) and "counter" in e)]
    text = " ".join(parts)
    if rule.comment:
        text += f" comment {json.dumps(rule.comment)}"
    return text
