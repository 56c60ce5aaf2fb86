"""Where a rule set's behaviour can change: the values its rules compare a packet with.

Every rule contributes *points*: sets of deviations from a baseline packet (`Deviation`: "destination
127.0.0.53", "port 53", "uid 1337", "mark 0x539/0xfff"...) under which the rule, or the rule with one of its
negated conditions made false, decides. Tracing the baseline and every point (`words.claims`) finds each
behaviour the rules can produce, and the deviations that lead to it; nothing here says what a rule *does*.

Chains are explored from the hooks only through rules that were kept: a chain with many rules of one shape
(kube-proxy's 5,000 `KUBE-SERVICES` jumps, a `service-ips` map) keeps the first two of each shape and its last
rule, and the rest is counted as not traced. Their values still keep the baseline away from them.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, FrozenSet, Iterable, List, Optional, Set, Tuple

LOCAL = "@local"  # the namespace's own address, whatever it is
REMOTE = "@remote"  # another host: the packet is forwarded
DIMS = ("uid", "gid", "src", "sport", "iif", "dst", "dport", "oif", "mark", "ctstate", "set")
KEEP_PER_SHAPE = 2
FEW_RULES = 40  # chains and maps up to this size are probed whole


@dataclass(frozen=True, order=True)
class Deviation:
    dim: str
    value: Any  # address, port, uid, device, mark, "INVALID", ipset name; LOCAL/REMOTE for "this host"/"elsewhere"
    text: str  # how the words name it: "9.9.0.0/16", "53", "0x539/0xfff"
    pattern: str = field(default="", compare=False)  # a device wildcard this stands for ("cali+")


Point = FrozenSet[Deviation]


@dataclass
class Seed:
    """What one rule contributes: the directions it sees (outbound, inbound), the protocols it allows (None: any)
    and its points."""

    directions: FrozenSet[str]
    protos: Optional[FrozenSet[str]]
    points: List[Point]
    forwarded: bool = False  # reached only from FORWARD/POSTROUTING: an inbound probe must be forwarded to get there


@dataclass
class Extraction:
    seeds: List[Seed] = field(default_factory=list)
    networks: Set[str] = field(default_factory=set)  # every address/prefix compared with
    ports: Set[Tuple[int, int]] = field(default_factory=set)  # every port range compared with
    ids: Set[int] = field(default_factory=set)  # every uid/gid compared with
    route_hints: List[Tuple[str, str]] = field(default_factory=list)  # (network, device) the rules pair
    untraced: List[Tuple[str, int]] = field(default_factory=list)  # (table/chain, destinations left out)
    families: Set[str] = field(default_factory=set)
    marks_set: Set[int] = field(default_factory=set)  # marks the rules themselves set (MARK, CONNMARK, mark set)

    def drop_internal_marks(self) -> None:
        """A mark the rules set themselves (kube-proxy's 0x4000, Istio TPROXY's 1337) is their own bookkeeping, not
        something a sender chooses: probes that set it on the socket would describe packets that do not occur.
        Marks the rules only compare (ztunnel's 0x539, set by its sockets) stay."""
        def internal(d: Deviation) -> bool:
            return d.dim == "mark" and any(d.value & m == d.value for m in self.marks_set if m)
        for seed in self.seeds:
            seed.points = [p for p in seed.points if not any(internal(d) for d in p)]
        self.seeds = [s for s in self.seeds if s.points]


HOOK_DIRECTIONS = {"OUTPUT": {"outbound"}, "POSTROUTING": {"outbound", "inbound"}, "PREROUTING": {"inbound"},
                   "INPUT": {"inbound"}, "FORWARD": {"inbound"}}
FORWARDING_HOOKS = {"FORWARD", "POSTROUTING"}


# ---- conditions -> points --------------------------------------------------------------------------------------

def address_deviation(dim: str, value: str, ex: Extraction) -> Optional[Deviation]:
    """`10.0.0.0/8` -> a host in it, named by the prefix; /32 and /128 named by the address."""
    text = value.split(",")[0]
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    ex.networks.add(str(net))
    ex.families.add(f"ipv{net.version}")
    if net.num_addresses == 1:
        return Deviation(dim, str(net.network_address), str(net.network_address))
    host = net.network_address + (1 if net.num_addresses > 2 else 0)
    return Deviation(dim, str(host), str(net))


def port_deviation(dim: str, value: Any, ex: Extraction) -> List[Deviation]:
    """`53`, `80:90`, `80-90`, `53,15008` -> one deviation per listed port or range (its first port)."""
    out = []
    for part in str(value).split(","):
        part = part.strip()
        lo, _, hi = part.replace(":", "-").partition("-")
        if not lo.isdigit() or (hi and not hi.isdigit()):
            continue
        ex.ports.add((int(lo), int(hi or lo)))
        out.append(Deviation(dim, int(lo), part.replace(":", "-")))
    return out


def id_deviation(dim: str, value: Any, ex: Extraction) -> Optional[Deviation]:
    lo = str(value).split("-")[0]
    if not lo.isdigit():
        return None
    ex.ids.add(int(lo))
    return Deviation(dim, int(lo), str(value))


def device_deviation(dim: str, name: str) -> Optional[Deviation]:
    if name in ("lo", "") or name.endswith(("+", "*")) and len(name) < 2:
        return None if name != "lo" else Deviation(dim, "lo", "lo")
    device = re.sub(r"[+*]$", "0", name.replace("\\*", "*"))  # eth+ -> eth0: one device of the family
    # said as the device probed: members of cali+ may differ from each other
    return Deviation(dim, device, device, name[:-1] if name.endswith(("+", "*")) else "")


def points_of(positive: List[Deviation], negated: List[Deviation], alternatives: List[Deviation] = ()) -> List[Point]:
    """The rule deciding (all its positive conditions), each condition alone, and each negated condition made false
    with the positive ones held; `alternatives` are further values of a positive list (`--dports 4567,4568`)."""
    out: List[Point] = []
    if positive:
        out.append(frozenset(positive))
    out += [frozenset([d]) for d in positive + negated + list(alternatives)]
    out += [frozenset(positive + [d]) for d in negated if positive]
    out += [frozenset([x for x in positive if x.dim != a.dim] + [a]) for a in alternatives]
    return [p for p in dict.fromkeys(out) if consistent(p)]


def consistent(point: Point) -> bool:
    dims = [d.dim for d in point]
    return len(dims) == len(set(dims))


def merged(context: Point, more) -> Point:
    """A chain's context with a rule's deviations: a device the context has from a wildcard (`-o cali+`) gives way
    to the specific device of the rule (`-o cali95aa86cbb2a`)."""
    out = {d.dim: d for d in context}
    for d in more:
        held = out.get(d.dim)
        if held is not None and held != d and held.pattern and str(d.value).startswith(held.pattern):
            out[d.dim] = d
        elif held is not None and held != d and d.pattern and str(held.value).startswith(d.pattern):
            continue
        elif held is not None and held != d:
            return frozenset(list(context) + list(more))  # inconsistent: left for consistent() to refuse
        else:
            out[d.dim] = d
    return frozenset(out.values())


# ---- sampling --------------------------------------------------------------------------------------------------

def shape_stem(name: str) -> str:
    """`KUBE-SVC-XPGD46QRK7WJZT7O` -> `KUBE-SVC`, `service-ULMVA6XW-ns1/svc1/tcp/p80` -> `service`: what a
    writer's generated chain names share (used to choose probes, never to say what they do)."""
    return re.split(r"-[A-Z0-9]{6,}(?:-|$)|-[a-z0-9]{8}-", name)[0] if name else ""


def sample(rules: List[Any], shape) -> Tuple[List[Any], int]:
    """The rules of a long chain worth probing: the first KEEP_PER_SHAPE of each shape and the last rule."""
    if len(rules) <= FEW_RULES:
        return list(rules), 0
    kept, seen = [], {}
    for i, rule in enumerate(rules):
        key = shape(rule)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= KEEP_PER_SHAPE or i == len(rules) - 1:
            kept.append(rule)
    return kept, len(rules) - len(kept)


def directions_of(hooks: Iterable[str]) -> FrozenSet[str]:
    out: Set[str] = set()
    for h in hooks:
        out |= HOOK_DIRECTIONS.get(h, set())
    return frozenset(out)


def forwarded_only(hooks: Iterable[str]) -> bool:
    return bool(hooks) and all(h in FORWARDING_HOOKS for h in hooks)
