"""Points (`words.points`) of an iptables rule set: each rule's conditions, reached from the built-in chains.

A rule in a user chain inherits the positive conditions of the rule that jumped to it (its *context*): a probe
for `KUBE-SVC-X`'s masquerade check must first match `KUBE-SERVICES -d VIP --dport 80 -j KUBE-SVC-X`.
"""
from __future__ import annotations

from typing import Dict, FrozenSet, List, Optional, Set, Tuple

from kubectl_whose.analysis.netfilter.model import BUILTIN_CHAINS, IptablesRuleset, Rule, Table
from kubectl_whose.analysis.netfilter.words.points import (LOCAL, Deviation, Extraction, Point, Seed,
                                                           address_deviation, consistent, device_deviation,
                                                           directions_of, forwarded_only, id_deviation, merged,
                                                           points_of, port_deviation, sample, shape_stem)

MAX_CONTEXTS = 3  # ways into one chain that are followed


def conditions(rule: Rule, ex: Extraction, alternatives: Optional[List[Deviation]] = None) \
        -> Tuple[List[Deviation], List[Deviation], Optional[FrozenSet[str]]]:
    """(positive deviations, negated ones, protocols allowed or None for any); the further values of a positive
    list go to `alternatives`."""
    pos: List[Deviation] = []
    neg: List[Deviation] = []
    protos: Optional[FrozenSet[str]] = None

    def add(d: Optional[Deviation], negated: bool) -> None:
        if d is not None:
            (neg if negated else pos).append(d)

    for o in rule.core:
        v = o.value
        if o.name == "-p":
            protos = frozenset({v} & {"tcp", "udp"}) if not o.negated else frozenset({"tcp", "udp"} - {v})
        elif o.name in ("-s", "-d"):
            add(address_deviation("src" if o.name == "-s" else "dst", v, ex), o.negated)
        elif o.name in ("-i", "-o"):
            add(device_deviation("iif" if o.name == "-i" else "oif", v), o.negated)
    for m in rule.matches:
        if m.module in ("tcp", "udp", "sctp", "udplite"):
            protos = frozenset({m.module} & {"tcp", "udp"}) if protos is None else protos
        for o in m.options:
            if o.name in ("--dport", "--dports", "--sport", "--sports") and m.module in (
                    "tcp", "udp", "multiport", "sctp"):
                devs = port_deviation("dport" if "--d" in o.name else "sport", o.value, ex)
                # `! --dports 53,15008`: each listed port alone makes the condition false
                for d in devs if o.negated else devs[:1]:
                    add(d, o.negated)
                if not o.negated and alternatives is not None:
                    alternatives.extend(devs[1:])
            elif m.module == "owner" and o.name in ("--uid-owner", "--gid-owner"):
                add(id_deviation("uid" if o.name == "--uid-owner" else "gid", o.value, ex), o.negated)
            elif m.module == "mark" and o.name == "--mark" and int(o.value.split("/")[0], 0):
                # (a mark of 0 is what every probe has: no deviation)
                add(Deviation("mark", int(o.value.split("/")[0], 0), o.value), o.negated)
            elif m.module in ("conntrack", "state") and o.name in ("--ctstate", "--state"):
                if "INVALID" in o.value.split(","):
                    add(Deviation("ctstate", "INVALID", "INVALID"), o.negated)
            elif m.module == "addrtype" and o.name == "--dst-type" and "LOCAL" in o.value.split(","):
                add(Deviation("dst", LOCAL, "local"), o.negated)
            elif m.module == "set" and o.name == "--match-set" and o.values:
                add(Deviation("set", o.values[0], " ".join(o.values[:2])), o.negated)
    return pos, neg, protos


def route_hints(rule: Rule, ex: Extraction) -> None:
    """A rule naming an address and the device of the same side says where that address is routed: Docker's
    `-s 172.17.0.0/16 ! -o docker0 -j MASQUERADE`, its `-d 172.17.0.2/32 -o docker0 ... -j ACCEPT`."""
    core = {o.name: o for o in rule.core}
    for addr, dev, wanted_negation in (("-s", "-o", True), ("-s", "-i", False), ("-d", "-o", False)):
        a, d = core.get(addr), core.get(dev)
        if a and d and not a.negated and d.negated == wanted_negation and d.value not in ("lo",) \
                and not d.value.endswith("+"):
            hint = (a.value.split(",")[0], d.value)
            if hint not in ex.route_hints:
                ex.route_hints.append(hint)


def _marks_set(rule: Rule, ex: Extraction) -> None:
    t = rule.target
    if t is not None and t.name in ("MARK", "CONNMARK"):
        for o in t.options:
            if o.name in ("--set-xmark", "--set-mark", "--or-mark") and o.values:
                try:
                    ex.marks_set.add(int(o.values[0].split("/")[0], 0))
                except ValueError:
                    pass


def _shape(rule: Rule):
    return (shape_stem(rule.target.name if rule.target else ""), tuple(m.module for m in rule.matches),
            tuple((o.name, o.negated) for o in rule.core))


def extract_iptables(rs: IptablesRuleset, ex: Extraction) -> None:
    ex.families.add(rs.family)
    for table in rs.tables.values():
        _extract_table(table, ex)


def _extract_table(table: Table, ex: Extraction) -> None:
    hooks: Dict[str, Set[str]] = {}
    contexts: Dict[str, List[Context]] = {}
    kept: Dict[str, List[Rule]] = {}
    queue = [c for c in BUILTIN_CHAINS.get(table.name, ()) if c in table.chains]
    for c in queue:
        hooks[c], contexts[c] = {c}, [(frozenset(), None)]
    while queue:
        name = queue.pop(0)
        if name not in kept:
            kept[name], skipped = sample(table.chains[name].rules, _shape)
            if skipped:
                ex.untraced.append((f"{table.name}/{name}", skipped))
        for rule in kept[name]:
            target = rule.target.name if rule.target else None
            if target not in table.chains:
                continue
            pos, _, protos = conditions(rule, ex)
            changed = not hooks.get(target, set()) >= hooks[name]
            hooks.setdefault(target, set()).update(hooks[name])
            into = contexts.setdefault(target, [])
            for point, outer in contexts[name]:
                new = (merged(point, pos), both(outer, protos))
                if consistent(new[0]) and new not in into and len(into) < MAX_CONTEXTS:
                    into.append(new)
                    changed = True
            if changed and target not in queue:
                queue.append(target)
    for name, rules in kept.items():
        directions = directions_of(hooks[name])
        for rule in rules:
            route_hints(rule, ex)
            _marks_set(rule, ex)
            alternatives: List[Deviation] = []
            pos, neg, protos = conditions(rule, ex, alternatives)
            own = points_of(pos, neg, alternatives)
            for point, outer in contexts[name]:
                allowed = both(outer, protos)
                if allowed is not None and not allowed:
                    continue  # icmp and other protocols: no TCP/UDP probe reaches this rule
                points = [merged(point, p) for p in own]
                points = [p for p in dict.fromkeys(points) if p and consistent(p)]
                if points:
                    ex.seeds.append(Seed(directions, allowed, points, forwarded_only(hooks[name])))


Context = Tuple[Point, Optional[FrozenSet[str]]]


def both(a: Optional[FrozenSet[str]], b: Optional[FrozenSet[str]]) -> Optional[FrozenSet[str]]:
    if a is None:
        return b
    return a if b is None else a & b
