"""The summary's claims: probes traced, the behaviours they found, and which deviations lead to each.

Per direction (outbound: sent by a local socket; inbound: arriving on an interface) and protocol, the baseline
and every point (closed under subsets of up to 3 deviations) are traced. A point is *kept* when its effect
differs from that of each of its largest kept sub-points: then it is an exception to them, said as such
("…, except to port 15008 (unchanged)"). Every sentence is a `Claim` carrying the probes that back it, so a
test can send those very packets and ask the kernel.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Dict, List, Optional, Sequence, Tuple

from kubectl_whose.analysis.netfilter.trace import TraceResult, trace
from kubectl_whose.analysis.netfilter.trace.packet import TraceQuery, endpoint, in_network
from kubectl_whose.analysis.netfilter.words.points import LOCAL, REMOTE, Deviation, Extraction, Point
from kubectl_whose.analysis.netfilter.words.probes import Baseline, Effect, effect, query, routes_of
from kubectl_whose.analysis.netfilter.words.sentences import (condition_words, conditions_joined, effect_words,
                                                              statement)

MAX_PROBES = 600  # traced per summary; a point beyond is said to be left out
CLOSURE_SIZE = 4  # points up to this many deviations get all their sub-points traced too
REFINE_LIMIT = 60  # sections with at most this many distinct deviations have their exceptions refined
SECTIONS = (("outbound", "tcp"), ("outbound", "udp"), ("inbound", "tcp"), ("inbound", "udp"))


@dataclass
class Probe:
    """One traced packet: the question and what trace answered."""

    query: TraceQuery
    result: TraceResult
    effect: Effect

    def to_dict(self) -> dict:
        return {"packet": self.result.to_dict()["packet"], "trace": trace_command(self.query),
                "outcomes": [{"probability": round(o.probability, 6), "verdict": o.verdict,
                              "destination": o.destination, "source": o.source, "sender_sees": o.sender_sees,
                              "untracked": o.untracked} for o in self.result.outcomes]}


@dataclass
class Claim:
    text: str
    probes: List[Probe] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"text": self.text, "probes": [p.to_dict() for p in self.probes]}


def trace_command(q: TraceQuery) -> str:
    """The `kubectl whose trace` flags that ask the same question."""
    parts = ["--inbound"] if q.inbound else []
    if q.src:
        parts += ["--from", endpoint(q.src, q.sport) or q.src]
    parts += ["--to", endpoint(q.dst, q.dport) or q.dst, "--proto", q.proto]
    if q.uid is not None:
        parts += ["--uid", str(q.uid), "--gid", str(q.gid)]
    if q.iface:
        parts += ["--iface", q.iface]
    if q.mark:
        parts += ["--mark", f"{q.mark:#x}"]
    if q.ctstate_given:
        parts += ["--ctstate", q.ctstate]
    parts += [x for ip in q.pod_ips for x in ("--local-ip", ip)]
    parts += [x for words in getattr(q.routing, "route_words", ()) for x in ("--route", f"'{words}'")]
    parts += [x for s in q.in_sets for x in ("--in-set", s)]
    return " ".join(parts)


@dataclass
class Node:
    point: Point
    probe: Probe
    parents: List["Node"] = field(default_factory=list)
    children: List["Node"] = field(default_factory=list)


class Tracer:
    """Traces each distinct query once, within MAX_PROBES."""

    def __init__(self, rulesets: Sequence):
        self.rulesets = rulesets
        self.done: Dict[tuple, Probe] = {}
        self.left_out = 0

    def probe(self, q: TraceQuery) -> Optional[Probe]:
        key = (q, routes_of(q))  # the query's routing takes no part in its equality
        if key in self.done:
            return self.done[key]
        if len(self.done) >= MAX_PROBES:
            self.left_out += 1
            return None
        result = trace(self.rulesets, q, quiet=True)
        self.done[key] = Probe(q, result, effect(result, q))
        return self.done[key]


def section_points(ex: Extraction, direction: str, proto: str) -> List[Point]:
    points = set()
    for seed in ex.seeds:
        if direction not in seed.directions or (seed.protos is not None and proto not in seed.protos):
            continue
        for p in seed.points:
            if direction == "inbound" and seed.forwarded and not any(d.dim == "dst" for d in p):
                p = p | {Deviation("dst", REMOTE, "other hosts")}
            points.add(p)
    for p in list(points):
        if len(p) <= CLOSURE_SIZE:
            for k in range(1, len(p)):
                points.update(frozenset(c) for c in combinations(sorted(p), k))
    # "to other hosts" before any one of them, so that 10.70.0.0/16 is weighed as a case of it
    return sorted(points, key=lambda p: (len(p), sum(1 for d in p if d.dim == "dst" and d.value not in (LOCAL, REMOTE)),
                                         sorted(p)))


def section_tree(tracer: Tracer, ex: Extraction, base: Baseline, local_ips, direction: str,
                 proto: str) -> Optional[Node]:
    root_q = query(direction, proto, frozenset(), base, local_ips)
    root_probe = tracer.probe(root_q) if root_q else None
    if root_probe is None:
        return None
    root = Node(frozenset(), root_probe)
    kept: List[Node] = [root]
    tried = set()

    def insert(p: Point) -> None:
        if p in tried:
            return
        tried.add(p)
        q = query(direction, proto, p, base, local_ips)
        if q is None or q == root_q:
            return
        probe = tracer.probe(q)
        if probe is None:
            return
        ancestors = [n for n in kept if is_case(n.point, p)]
        largest = [n for n in ancestors if not any(is_case(n.point, m.point) for m in ancestors)]
        differing = [n for n in largest if n.probe.effect != probe.effect]
        if differing:
            node = Node(p, probe, differing)
            for parent in differing:
                parent.children.append(node)
            kept.append(node)

    points = section_points(ex, direction, proto)
    for p in points:
        insert(p)
    # An exception found by one rule can itself have exceptions written by another rule (Istio: uid 1337 to the
    # pod's own address goes to 15006, unless sent from 127.0.0.6): each kept point is tried with every single
    # deviation the section knows, when there are few enough.
    singles = sorted({d for p in points for d in p})
    if len(singles) <= REFINE_LIMIT:
        for node in [n for n in kept[1:] if all(x.dim != "ctstate" for x in n.point)]:
            for d in singles:
                if all(x.dim != d.dim for x in node.point) and _refines(d, direction):
                    insert(node.point | {d})
    return root


def is_case(a: Point, b: Point) -> bool:
    """`b` is a case of `a`: it has `a`'s deviations and more, where "to other hosts" counts as had by any
    destination that is neither this host nor loopback (10.70.0.0/16 is one of the other hosts)."""
    if a == b:
        return False
    dst = next((d for d in b if d.dim == "dst"), None)
    for d in a:
        if d in b:
            continue
        if d.dim == "dst" and d.value == REMOTE and dst is not None and dst.value not in (LOCAL, REMOTE) \
                and not str(dst.value).startswith("127."):
            continue
        return False
    return True


def _refines(d: Deviation, direction: str) -> bool:
    """An inbound probe's destination is this host: another destination is another packet, not an exception (but a
    loopback one, which only lo delivers, is)."""
    if d.dim == "ctstate":
        return False  # an INVALID packet is said once, on its own, not as a case of every statement
    if d.dim != "dst" or direction == "outbound":
        return d.value != REMOTE
    return d.value not in (REMOTE,) and str(d.value).startswith("127.")


@dataclass
class Statement:
    directions: List[str]
    protos: List[str]
    point: Point
    cond: str
    effect: str
    exceptions: List[Tuple[str, str]]
    probes: List[Probe]
    points: List[Point] = field(default_factory=list)

    def __post_init__(self):
        self.points = self.points or [self.point]

    def key(self) -> tuple:
        return self.cond, self.effect, tuple(self.exceptions)


def statements_of(root: Node, base: Baseline, direction: str, proto: str) -> List[Statement]:
    """Every kept point whose effect is not "unchanged" is a statement (the root too), with its kept sub-cases
    as exceptions; an "unchanged" point is said only as an exception of the statements above it."""
    out: List[Statement] = []
    order: List[Node] = []

    def visit(n: Node) -> None:
        if n not in order:
            order.append(n)
            for c in n.children:
                visit(c)

    visit(root)
    order.sort(key=lambda n: len(n.point))  # an ancestor is weighed before its cases
    stated: List[Node] = []
    for n in order:
        said = effect_words(n.probe.effect, base)
        if said == "unchanged" or any(is_case(m.point, n.point) and m.probe.effect == n.probe.effect for m in stated):
            continue  # "unchanged" is said as an exception; a case of a statement with its effect adds nothing
        if not n.children and any(parent in stated for parent in n.parents):
            continue  # already said, whole, as an exception of a statement
        stated.append(n)
        groups: Dict[str, List[Node]] = {}
        for c in n.children:
            groups.setdefault(effect_words(c.probe.effect, base), []).append(c)
        exceptions = [(conditions_joined(uncovered([c.point - n.point for c in cs]), base), words)
                      for words, cs in groups.items()]
        probes = [n.probe] + [c.probe for cs in groups.values() for c in cs]
        out.append(Statement([direction], [proto], n.point, condition_words(n.point, base), said, exceptions,
                             probes))
    for statement_, n in zip(out, stated):
        _finer_exceptions(statement_, n, order, stated, base)
    return out


def _finer_exceptions(s: Statement, n: Node, order: List[Node], stated: List[Node], base: Baseline) -> None:
    """Cases of this statement outside its part of the tree ("to 172.30.0.41" or "to 172.30.0.41 port 80" within
    "to 172.30.0.0/16") that end otherwise are exceptions too: without them "to 172.30.0.0/16 are dropped" would
    be wider than true. A case of another such case is left to that one."""
    found = [m for m in order if m is not n and m not in n.children and not n.point <= m.point and
             _case_of(m.point, n.point) and m.probe.effect != n.probe.effect]
    found = [m for m in found if not any(o is not m and _case_of(m.point, o.point) for o in found)]
    groups: Dict[str, List[Node]] = {}
    for m in found:
        groups.setdefault("said on its own" if m in stated else effect_words(m.probe.effect, base), []).append(m)
    for words, ms in groups.items():
        points = [m.point for m in ms]
        if words == "said on its own" and len(points) > 1:
            words = "each said on its own"
        s.exceptions.append((conditions_joined(points, base), words))
        s.probes += [m.probe for m in ms]


def _case_of(b: Point, a: Point) -> bool:
    """`b` is a case of `a`: each deviation of `a` has one of its own in `b`, equal or within it (10.180.0.2 within
    10.0.0.0/8); `b` may name more."""
    if a == b:
        return False
    rest = set(b)
    for x in a:
        y = next((y for y in rest if _within(y, x)), None)
        if y is None:
            return False
        rest.discard(y)
    return True


def merged(statements: List[Statement], base: Baseline) -> List[Statement]:
    """One sentence for what TCP and UDP, or outbound and inbound, share word for word; and one for points that
    differ in one value only ("to ports 31000, 32000")."""
    out: List[Statement] = []
    for s in statements:
        twin = next((t for t in out if t.key() == s.key() and (t.directions == s.directions or
                                                                 t.protos == s.protos)), None)
        if twin is None:
            cover = next((t for t in out if set(s.directions) <= set(t.directions) and set(s.protos) <= set(t.protos)
                          and t.effect == s.effect and any(covers(p, s.point) for p in t.points)), None)
            if cover is not None:  # "from 10.180.0.2" said by "from 10.0.0.0/8": its probes back that claim
                cover.probes += s.probes
                continue
            twin = next((t for t in out if (t.directions, t.protos, t.effect, t.exceptions) ==
                         (s.directions, s.protos, s.effect, s.exceptions) and _one_value_apart(t, s)), None)
            if twin is None:
                out.append(s)
                continue
            twin.points.append(s.point)
            twin.cond = conditions_joined(twin.points, base)
            twin.probes += s.probes
            continue
        twin.directions += [d for d in s.directions if d not in twin.directions]
        twin.protos += [p for p in s.protos if p not in twin.protos]
        twin.probes += s.probes
    return out


def covers(a: Point, b: Point) -> bool:
    """Each deviation of `b` lies within one of `a` of the same kind (10.180.0.2 within 10.0.0.0/8), one to one."""
    if len(a) != len(b) or a == b:
        return a == b
    rest = set(b)
    for x in a:
        y = next((y for y in rest if _within(y, x)), None)
        if y is None:
            return False
        rest.discard(y)
    return True


def _within(y: Deviation, x: Deviation) -> bool:
    if x.dim != y.dim:
        return False
    if x == y:
        return True
    if x.dim in ("src", "dst") and "/" in x.text and isinstance(y.value, str) and not y.value.startswith("@"):
        return in_network(y.value, x.text) and ("/" not in y.text or _prefix_len(y.text) >= _prefix_len(x.text))
    return False


def _prefix_len(text: str) -> int:
    return int(text.split("/")[1])


def uncovered(points: List[Point]) -> List[Point]:
    return [p for p in points if not any(q != p and covers(q, p) for q in points)]


def _one_value_apart(t: "Statement", s: "Statement") -> bool:
    dims = {d.dim for p in t.points + [s.point] for d in p}
    return len(dims) == 1 and all(len(p) == 1 for p in t.points + [s.point]) and not t.exceptions


def claims_of(rulesets: Sequence, ex: Extraction, base: Baseline, local_ips) -> Tuple[List[Claim], Tracer]:
    tracer = Tracer(rulesets)
    statements: List[Statement] = []
    for direction, proto in SECTIONS:
        root = section_tree(tracer, ex, base, local_ips, direction, proto)
        if root is not None:
            statements += statements_of(root, base, direction, proto)
    return [Claim(statement(s.directions, s.protos, s.cond, s.effect, s.exceptions), s.probes)
            for s in merged(statements, base)], tracer
