"""Points (`words.points`) of native nftables tables: each rule's comparisons, reached from the base chains.

Verdict maps are where nftables writers keep their per-destination branches (kube-proxy's `service-ips`,
`no-endpoint-services`): each element's key is a point and its verdict a way into a chain, with that key as
the context of the chain's rules.
"""
from __future__ import annotations

from typing import Any, Dict, FrozenSet, List, Optional, Set, Tuple

from kubectl_whose.analysis.netfilter.nft_json import NftRule, NftRuleset, NftTable
from kubectl_whose.analysis.netfilter.words.points import (LOCAL, Deviation, Extraction, Point, Seed,
                                                           address_deviation, consistent, device_deviation,
                                                           directions_of, forwarded_only, id_deviation, merged,
                                                           points_of, port_deviation, sample, shape_stem)
from kubectl_whose.analysis.netfilter.words.iptables_points import Context, MAX_CONTEXTS, both

HOOKS = {"prerouting": "PREROUTING", "input": "INPUT", "forward": "FORWARD", "output": "OUTPUT",
         "postrouting": "POSTROUTING"}
TABLE_FAMILIES = {"ip": {"ipv4"}, "ip6": {"ipv6"}, "inet": {"ipv4", "ipv6"}}


def _field(left: Any) -> Optional[str]:
    """The packet field a comparison reads, as a point dimension (or proto / mark)."""
    if not isinstance(left, dict):
        return None
    kind, body = next(iter(left.items()))
    if kind == "payload":
        proto, name = body.get("protocol"), body.get("field")
        if proto in ("ip", "ip6") and name in ("saddr", "daddr"):
            return "src" if name == "saddr" else "dst"
        if proto in ("ip", "ip6") and name in ("protocol", "nexthdr"):
            return "proto"
        if proto in ("tcp", "udp", "th", "sctp") and name in ("dport", "sport"):
            return name
    if kind == "meta":
        return {"l4proto": "proto", "skuid": "uid", "skgid": "gid", "mark": "mark", "iifname": "iif",
                "oifname": "oif", "iif": "iif", "oif": "oif"}.get(body.get("key"))
    if kind == "ct" and body.get("key") == "state":
        return "ctstate"
    if kind == "fib" and "daddr" in (body.get("flags") or []) and body.get("result") == "type":
        return "fibtype"
    if kind == "&" and isinstance(body, list) and _field(body[0]) == "mark" and isinstance(body[1], int):
        return "mark"
    return None


def _values(table: NftTable, right: Any) -> List[Any]:
    """A comparison's right side as a list of element values (a literal, an anonymous set, a named set)."""
    if isinstance(right, str) and right.startswith("@"):
        s = table.sets.get(right[1:])
        return [_elem_value(e) for e in (s.elem if s else [])]
    if isinstance(right, dict) and "set" in right:
        return [_elem_value(e) for e in (right["set"] if isinstance(right["set"], list) else [right["set"]])]
    return [right]


def _elem_value(e: Any) -> Any:
    if isinstance(e, dict) and "elem" in e:
        return e["elem"].get("val")
    return e


def _deviations(dim: str, values: List[Any], mask: Optional[int], ex: Extraction) -> List[Deviation]:
    out: List[Deviation] = []
    for v in values[:16]:
        if isinstance(v, dict) and "prefix" in v:
            v = f"{v['prefix']['addr']}/{v['prefix']['len']}"
        elif isinstance(v, dict) and "range" in v:
            lo, hi = v["range"]
            v = f"{lo}-{hi}" if dim in ("dport", "sport") else lo
        if dim in ("src", "dst"):
            d = address_deviation(dim, str(v), ex) if isinstance(v, str) else None
            out += [d] if d else []
        elif dim in ("dport", "sport"):
            out += port_deviation(dim, v, ex)[:1]
        elif dim in ("uid", "gid"):
            d = id_deviation(dim, v, ex)
            out += [d] if d else []
        elif dim == "mark" and isinstance(v, int) and v:
            out.append(Deviation("mark", v, f"{v:#x}/{mask:#x}" if mask is not None else f"{v:#x}"))
        elif dim in ("iif", "oif") and isinstance(v, str):
            d = device_deviation(dim, v)
            out += [d] if d else []
        elif dim == "ctstate" and "invalid" in (v if isinstance(v, list) else [v]):
            out.append(Deviation("ctstate", "INVALID", "INVALID"))
        elif dim == "fibtype" and v == "local":
            out.append(Deviation("dst", LOCAL, "local"))
    return out


def conditions(table: NftTable, rule: NftRule, ex: Extraction):
    """(positive deviations, negated ones, protocols or None, verdict-map branches [(key point, protos, target)],
    jump/goto targets)."""
    pos: List[Deviation] = []
    neg: List[Deviation] = []
    protos: Optional[FrozenSet[str]] = None
    branches: List[Tuple[Point, Optional[FrozenSet[str]], str]] = []
    targets: List[str] = []
    alternatives: List[Deviation] = []
    for e in rule.expr:
        if not isinstance(e, dict) or len(e) != 1:
            continue
        kind, body = next(iter(e.items()))
        if kind == "match":
            dim = _field(body.get("left"))
            op = body.get("op", "==")
            values = _values(table, body.get("right"))
            if dim in ("sport", "dport") and isinstance(body["left"], dict) and "payload" in body["left"] and \
                    body["left"]["payload"].get("protocol") in ("tcp", "udp"):
                protos = frozenset({body["left"]["payload"]["protocol"]})
            if dim == "proto":
                wanted = frozenset(v for v in values if v in ("tcp", "udp"))
                protos = wanted if op != "!=" else frozenset({"tcp", "udp"} - wanted)
                continue
            if dim is None:
                continue
            mask = body["left"]["&"][1] if isinstance(body["left"], dict) and "&" in body["left"] else None
            devs = _deviations(dim, values, mask, ex)
            (neg if op == "!=" else pos).extend(devs if op == "!=" else devs[:1])
            if op != "!=":
                alternatives.extend(devs[1:])
        elif kind in ("jump", "goto"):
            targets.append(body["target"])
        elif kind == "vmap":
            branches += _map_branches(table, body, ex)
        elif kind == "mangle" and _field(body.get("key")) == "mark" or kind == "mangle" and body.get("key") == {
                "ct": {"key": "mark"}}:
            ex.marks_set.update(_ints(body.get("value")))
    return pos, neg, protos, branches, targets, alternatives


def _ints(value: Any) -> List[int]:
    """The literal numbers in `mark set mark or 0x4000`, `ct mark set ct mark & 0xfffff000 | 0x111`."""
    if isinstance(value, int):
        return [value]
    if isinstance(value, dict):
        kind, body = next(iter(value.items()))
        if kind in ("|", "^") and isinstance(body, list):
            return [x for b in body for x in _ints(b)]
    return []


def _map_branches(table: NftTable, body: dict, ex: Extraction) -> List[Tuple[Point, Optional[FrozenSet[str]], str]]:
    key = body.get("key")
    fields = [_field(k) for k in (key["concat"] if isinstance(key, dict) and "concat" in key else [key])]
    data = body.get("data")
    if isinstance(data, str) and data.startswith("@"):
        s = table.sets.get(data[1:])
        elems = list(s.elem) if s else []
    elif isinstance(data, dict) and "set" in data:
        elems = data["set"]
    else:
        return []
    kept, skipped = sample(elems, _elem_shape)
    if skipped:
        ex.untraced.append((f"{table.family} {table.name} map {data}", skipped))
    out = []
    for el in kept:
        if not (isinstance(el, list) and len(el) == 2 and isinstance(el[1], dict)):
            continue
        k, verdict = _elem_value(el[0]), el[1]
        vkind, vbody = next(iter(verdict.items()))
        if vkind not in ("jump", "goto") or not isinstance(vbody, dict):
            continue
        parts = k["concat"] if isinstance(k, dict) and "concat" in k else [k]
        point: List[Deviation] = []
        protos = None
        for dim, v in zip(fields, parts):
            if dim == "proto":
                protos = frozenset({v} & {"tcp", "udp"}) if isinstance(v, str) else protos
            elif dim:
                point += _deviations(dim, [v], None, ex)[:1]
        out.append((frozenset(point), protos, vbody["target"]))
    return out


def _elem_shape(el: Any):
    if isinstance(el, list) and len(el) == 2 and isinstance(el[1], dict):
        vkind, vbody = next(iter(el[1].items()))
        return vkind, shape_stem(vbody.get("target", "") if isinstance(vbody, dict) else "")
    return "element", ""


def _rule_shape(rule: NftRule):
    kinds = tuple(next(iter(e)) for e in rule.expr if isinstance(e, dict) and e)
    targets = [next(iter(e.values()))["target"] for e in rule.expr if isinstance(e, dict)
               and next(iter(e), "") in ("jump", "goto")]
    return kinds, shape_stem(targets[0] if targets else "")


def extract_nft(rs: NftRuleset, ex: Extraction) -> None:
    for table in rs.tables:
        ex.families |= TABLE_FAMILIES.get(table.family, set())
        _extract_table(table, ex)


def _extract_table(table: NftTable, ex: Extraction) -> None:
    hooks: Dict[str, Set[str]] = {}
    contexts: Dict[str, List[Context]] = {}
    kept: Dict[str, List[NftRule]] = {}
    queue = [c.name for c in table.chains.values() if c.hook in HOOKS and c.type in ("filter", "nat", "route")]
    for c in queue:
        hooks[c], contexts[c] = {HOOKS[table.chains[c].hook]}, [(frozenset(), None)]
    while queue:
        name = queue.pop(0)
        if name not in kept:
            kept[name], skipped = sample(table.chains[name].rules, _rule_shape)
            if skipped:
                ex.untraced.append((f"{table.family} {table.name}/{name}", skipped))
        for rule in kept[name]:
            pos, _, protos, branches, targets, _ = conditions(table, rule, ex)
            ways = [(frozenset(pos), protos, t) for t in targets] + \
                   [(frozenset(pos) | k, both(protos, p), t) for k, p, t in branches]
            for point, wprotos, target in ways:
                if target not in table.chains:
                    continue
                changed = not hooks.get(target, set()) >= hooks[name]
                hooks.setdefault(target, set()).update(hooks[name])
                into = contexts.setdefault(target, [])
                for outer_point, outer in contexts[name]:
                    new = (merged(outer_point, point), both(outer, wprotos))
                    if consistent(new[0]) and new not in into and len(into) < MAX_CONTEXTS:
                        into.append(new)
                        changed = True
                if changed and target not in queue:
                    queue.append(target)
    for name, rules in kept.items():
        directions = directions_of(hooks[name])
        for rule in rules:
            pos, neg, protos, branches, _, alternatives = conditions(table, rule, ex)
            ways = [(points_of(pos, neg, alternatives), protos)]
            ways += [([frozenset(pos) | k], both(protos, p)) for k, p, _ in branches]
            for own, own_protos in ways:
                for outer_point, outer in contexts[name]:
                    allowed = both(outer, own_protos)
                    if allowed is not None and not allowed:
                        continue
                    points = [merged(outer_point, p) for p in own]
                    points = [p for p in dict.fromkeys(points) if p and consistent(p)]
                    if points:
                        ex.seeds.append(Seed(directions, allowed, points, forwarded_only(hooks[name])))
