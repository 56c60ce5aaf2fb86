"""Parse `nft -j list ruleset` (libnftables JSON, schema version 1) into tables, chains, rules and sets.

Rule expressions are kept as the JSON objects nft printed (they are already a tree: `match`,
`payload`, `meta`, `ct`, `vmap`, `numgen`, verdicts, `dnat`, ...); `trace.py` evaluates them and
`nft_text.py` renders them in nft syntax. Keeping them as-is makes the dump lossless: `dump_nft`
writes back the same JSON. Base chains carry their hook, type and priority, which is what orders
them against the iptables tables in the kernel (see `trace.py`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from kubectl_whose.analysis.netfilter.model import Finding
from kubectl_whose.errors import ExitCode, WhoseError

# Named priorities (nft(8) "CHAINS"), for listings that print `priority dstnat`.
NAMED_PRIORITIES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0, "security": 50, "srcnat": 100}


@dataclass
class NftRule:
    table: str
    chain: str
    expr: List[Any]
    handle: Optional[int] = None
    comment: Optional[str] = None

    def to_json(self, family: str) -> dict:
        d: Dict[str, Any] = {"family": family, "table": self.table, "chain": self.chain}
        if self.handle is not None:
            d["handle"] = self.handle
        if self.comment is not None:
            d["comment"] = self.comment
        d["expr"] = self.expr
        return {"rule": d}

    def key(self) -> str:
        from kubectl_whose.analysis.netfilter.nft_text import rule_text

        return rule_text(self, counters=False)


@dataclass
class NftChain:
    name: str
    type: Optional[str] = None  # filter | nat | route, for base chains
    hook: Optional[str] = None  # prerouting | input | forward | output | postrouting
    priority: Optional[int] = None
    policy: Optional[str] = None
    handle: Optional[int] = None
    rules: List[NftRule] = field(default_factory=list)

    @property
    def builtin(self) -> bool:
        return self.hook is not None


@dataclass
class NftSet:
    name: str
    kind: str  # "set" | "map"
    type: Any = None
    map: Optional[str] = None  # value type of a map ("verdict" for a vmap)
    elem: List[Any] = field(default_factory=list)
    flags: Any = None
    raw: Dict[str, Any] = field(default_factory=dict)


@dataclass
class NftTable:
    family: str
    name: str
    handle: Optional[int] = None
    chains: Dict[str, NftChain] = field(default_factory=dict)
    sets: Dict[str, NftSet] = field(default_factory=dict)
    raw: Dict[str, Any] = field(default_factory=dict)


@dataclass
class NftRuleset:
    tables: List[NftTable] = field(default_factory=list)
    version: Optional[str] = None
    findings: List[Finding] = field(default_factory=list)
    source: str = ""
    backend: str = "nftables"
    family: str = "any"

    def table(self, family: str, name: str) -> NftTable:
        for t in self.tables:
            if t.family == family and t.name == name:
                return t
        t = NftTable(family, name)
        self.tables.append(t)
        return t

    def rule_count(self) -> int:
        return sum(len(c.rules) for t in self.tables for c in t.chains.values())

    def same_rules(self, other: "NftRuleset") -> bool:
        return json.loads(dump_nft(self)) == json.loads(dump_nft(other))


def looks_like_nft_json(text: str) -> bool:
    return text.lstrip().startswith("{") and '"nftables"' in text[:4096]


def parse_nft_json(text: str, source: str = "") -> NftRuleset:
    try:
        doc = json.loads(text)
        items = doc["nftables"]
        if not isinstance(items, list):
            raise TypeError("'nftables' is not a list")
    except (ValueError, KeyError, TypeError) as e:
        raise WhoseError(f"{source or 'input'}: not `nft -j list ruleset` JSON ({e})", ExitCode.BAD_INPUT) from None
    rs = NftRuleset(source=source)
    for n, item in enumerate(items):
        if not isinstance(item, dict) or len(item) != 1:
            rs.findings.append(Finding("warning", "nft-unknown-object", f"object {n}: not understood, kept aside"))
            continue
        kind, body = next(iter(item.items()))
        if kind == "metainfo":
            rs.version = body.get("version")
        elif kind == "table":
            t = rs.table(body["family"], body["name"])
            t.handle = body.get("handle")
            t.raw = {k: v for k, v in body.items() if k not in ("family", "name", "handle")}
        elif kind == "chain":
            t = rs.table(body["family"], body["table"])
            prio = body.get("prio")
            if isinstance(prio, str):
                prio = NAMED_PRIORITIES.get(prio, 0)
            t.chains[body["name"]] = NftChain(body["name"], body.get("type"), body.get("hook"), prio,
                                              body.get("policy", "accept" if body.get("hook") else None),
                                              body.get("handle"))
        elif kind == "rule":
            t = rs.table(body["family"], body["table"])
            chain = t.chains.setdefault(body["chain"], NftChain(body["chain"]))
            chain.rules.append(NftRule(body["table"], body["chain"], body.get("expr", []), body.get("handle"),
                                       body.get("comment")))
        elif kind in ("set", "map"):
            t = rs.table(body["family"], body["table"])
            t.sets[body["name"]] = NftSet(body["name"], kind, body.get("type"), body.get("map"),
                                          list(body.get("elem", [])), body.get("flags"),
                                          {k: v for k, v in body.items()
                                           if k not in ("family", "table", "name", "type", "map", "elem", "flags")})
        else:  # flowtables, counters, quotas, ct helpers: shown in findings, not evaluated
            rs.findings.append(Finding("info", "nft-object-not-modelled",
                                       f"nft {kind} {body.get('name', '')!r} is kept but not evaluated"))
    return rs


def dump_nft(rs: NftRuleset) -> str:
    items: List[Any] = []
    if rs.version:
        items.append({"metainfo": {"version": rs.version, "json_schema_version": 1}})
    for t in rs.tables:
        items.append({"table": {"family": t.family, "name": t.name, **({"handle": t.handle} if t.handle else {}),
                                **t.raw}})
        for s in t.sets.values():
            body = {"family": t.family, "name": s.name, "table": t.name, "type": s.type, **s.raw}
            if s.map is not None:
                body["map"] = s.map
            if s.flags is not None:
                body["flags"] = s.flags
            if s.elem:
                body["elem"] = s.elem
            items.append({s.kind: body})
        for c in t.chains.values():
            body = {"family": t.family, "table": t.name, "name": c.name}
            if c.handle is not None:
                body["handle"] = c.handle
            if c.hook:
                body.update({"type": c.type, "hook": c.hook, "prio": c.priority, "policy": c.policy or "accept"})
            items.append({"chain": body})
        for c in t.chains.values():
            items.extend(r.to_json(t.family) for r in c.rules)
    return json.dumps({"nftables": items}, indent=1) + "\n"
