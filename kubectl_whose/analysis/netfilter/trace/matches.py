"""iptables match modules (iptables-extensions(8)) as functions of (context, match, option, hook).

Each returns (matched, description of the packet's value) for one option, ignoring negation (the
caller applies `!`), or (None, "") for an option it does not model, which the caller names as an
assumption. Modules missing from MODULES are taken as not matching, also named.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

from kubectl_whose.analysis.netfilter.model import Match, Option
from kubectl_whose.analysis.netfilter.trace.packet import port_in
from kubectl_whose.analysis.netfilter.trace.context import WalkContext

Result = Tuple[Optional[bool], str]
OWNER_HOOKS = ("OUTPUT", "POSTROUTING")


def _ports(ctx: WalkContext, m: Match, o: Option, hook: str) -> Result:
    p = ctx.packet
    if m.module in ("tcp", "udp", "sctp", "udplite") and p.proto != m.module:
        return False, f"protocol {p.proto}"
    if o.name in ("--dport", "--dports"):
        return port_in(o.value, p.dport), f"dport {p.dport}"
    if o.name in ("--sport", "--sports"):
        port = ctx.sport()
        return port_in(o.value, port), f"sport {port}"
    if o.name == "--ports":
        port = ctx.sport()
        return port_in(o.value, p.dport) or port_in(o.value, port), f"ports {port}->{p.dport}"
    if o.name in ("--syn", "--tcp-flags"):
        ctx.assume("TCP flags: the packet is taken to be the first SYN of a new connection")
        if o.name == "--syn":
            return True, "SYN"
        mask, _, comp = o.value.partition(" ")
        flags = {f for f in mask.split(",")} if mask != "ALL" else {"FIN", "SYN", "RST", "PSH", "ACK", "URG"}
        want = set() if comp in ("NONE", "") else set(comp.split(","))
        return ({"SYN"} & flags) == want & flags, "flags SYN"
    return None, ""


def _owner(ctx: WalkContext, m: Match, o: Option, hook: str) -> Result:
    if hook not in OWNER_HOOKS:
        return False, "no local socket in this hook"
    if ctx.query.kernel_generated:
        return False, "sent by the kernel, no socket"
    if ctx.query.inbound:
        return False, "a forwarded packet has no local socket"
    if o.name == "--uid-owner":
        uid = ctx.uid()
        return _in_id_range(o.value, uid), f"uid {uid}"
    if o.name == "--gid-owner":
        gid = ctx.gid()
        return _in_id_range(o.value, gid), f"gid {gid}"
    if o.name == "--socket-exists":
        return True, "local socket"
    if o.name == "--suppl-groups":
        return True, ""
    return None, ""


def _in_id_range(spec: str, value: Optional[int]) -> bool:
    if value is None:
        return False
    lo, _, hi = spec.partition("-")
    return (int(lo) <= value <= int(hi)) if hi else int(lo) == value


def _comment(ctx: WalkContext, m: Match, o: Option, hook: str) -> Result:
    return True, ""


def _mark(ctx: WalkContext, m: Match, o: Option, hook: str) -> Result:
    if o.name != "--mark":
        return None, ""
    value = ctx.packet.ctmark if m.module == "connmark" else ctx.packet.mark
    v, _, mask = o.value.partition("/")
    mask_i = int(mask, 0) if mask else 0xFFFFFFFF
    return (value & mask_i) == int(v, 0), f"{'connmark' if m.module == 'connmark' else 'mark'} {value:#x}"


def _conntrack(ctx: WalkContext, m: Match, o: Option, hook: str) -> Result:
    state = ctx.packet.ctstate
    if o.name in ("--ctstate", "--state"):
        if state == "NEW" and not ctx.query.ctstate_given:
            ctx.assume("conntrack state NEW (a new connection)")
        states = o.value.split(",")
        extra = {"DNAT"} if ctx.packet.dnat_hooks else set()
        return state in states or bool(extra & set(states)), f"ctstate {state}"
    if o.name == "--ctstatus":
        return None, ""
    return None, ""


def _addrtype(ctx: WalkContext, m: Match, o: Option, hook: str) -> Result:
    if o.name in ("--limit-iface-in", "--limit-iface-out"):
        return True, ""
    if o.name not in ("--src-type", "--dst-type"):
        return None, ""
    ip = ctx.src() if o.name == "--src-type" else ctx.packet.dst
    kind = _address_type(ctx, ip)
    return kind in o.value.split(","), f"{'source' if o.name == '--src-type' else 'destination'} {ip} is {kind}"


def _address_type(ctx: WalkContext, ip: Optional[str]) -> str:
    import ipaddress

    if ip is None:
        return "UNSPEC"
    if ctx.is_local(ip):
        return "LOCAL"
    a = ipaddress.ip_address(ip)
    if a.is_multicast:
        return "MULTICAST"
    if ip == "255.255.255.255":
        return "BROADCAST"
    return "UNICAST"


def _statistic(ctx, m, o, hook) -> Result:  # handled in trace_iptables (it branches)
    return True, ""


def _not_matching(reason: str) -> Callable[..., Result]:
    def fn(ctx: WalkContext, m: Match, o: Option, hook: str) -> Result:
        ctx.assume(f"-m {m.module} {o.name}: {reason}")
        return False, reason
    return fn


def _matching(reason: str) -> Callable[..., Result]:
    def fn(ctx: WalkContext, m: Match, o: Option, hook: str) -> Result:
        ctx.assume(f"-m {m.module} {o.name}: {reason}")
        return True, reason
    return fn


def _recent(ctx: WalkContext, m: Match, o: Option, hook: str) -> Result:
    if o.name in ("--rcheck", "--update"):
        ctx.assume("-m recent: no earlier packet recorded (a first connection); --rcheck/--update do not match")
        return False, "no earlier packet in the recent list"
    return True, ""


def _set(ctx: WalkContext, m: Match, o: Option, hook: str) -> Result:
    """`-m set --match-set NAME dst`: an ipset's members are not in a dump; the query says which sets the packet's
    addresses are in (--in-set), and every other set is taken as not holding them."""
    if o.name != "--match-set" or not o.values:
        return None, ""
    name = o.values[0]
    side = o.values[1].split(",")[0] if len(o.values) > 1 else "dst"
    if name in ctx.query.in_sets or f"{name}:{side}" in ctx.query.in_sets:
        return True, f"{side} in ipset {name} (given)"
    ctx.assume(f"ipset {name}: its members are not in the dump; taken as not holding this packet's addresses "
               f"(pass --in-set {name} otherwise)")
    return False, f"not in ipset {name} (assumed)"


def _icmp(ctx: WalkContext, m: Match, o: Option, hook: str) -> Result:
    return ctx.packet.proto in ("icmp", "ipv6-icmp"), f"protocol {ctx.packet.proto}"


MODULES: Dict[str, Callable[..., Result]] = {
    "tcp": _ports, "udp": _ports, "sctp": _ports, "udplite": _ports, "multiport": _ports,
    "owner": _owner, "comment": _comment, "mark": _mark, "connmark": _mark,
    "conntrack": _conntrack, "state": _conntrack, "addrtype": _addrtype, "statistic": _statistic,
    "icmp": _icmp, "icmp6": _icmp, "recent": _recent,
    "set": _set,
    "socket": _not_matching("no established transparent socket is known; taken as not matching"),
    "physdev": _not_matching("bridge ports are not known in a pod; taken as not matching"),
    "mac": _not_matching("source MAC not known; taken as not matching"),
    "limit": _matching("rate limit taken as not exceeded"),
    "hashlimit": _matching("rate limit taken as not exceeded"),
    "connlimit": _matching("connection limit taken as not reached"),
    "length": _matching("packet length not known; taken as matching"),
}
