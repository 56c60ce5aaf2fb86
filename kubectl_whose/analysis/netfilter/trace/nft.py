"""Walk one nftables base chain for the packet: expressions, statements, verdicts, sets and vmaps.

Semantics (nft(8)): expressions in a rule run left to right; a failing comparison ends the rule;
`accept` ends this base chain (the packet goes on to the next chain of the hook), `drop`/`reject`
end everything, `jump` pushes a return point, `goto` does not, `return` or falling off a regular
chain returns, falling off a base chain applies its policy. NAT statements (dnat, snat, redirect,
masquerade) end the chain with accept. `numgen random mod N` branches into N equally likely walks.
"""
from __future__ import annotations

import ipaddress
from typing import Any, List, Optional, Tuple

from kubectl_whose.analysis.netfilter.trace import nat_effects
from kubectl_whose.analysis.netfilter.nft_json import NftChain, NftRule, NftTable
from kubectl_whose.analysis.netfilter.nft_text import expr_text
from kubectl_whose.analysis.netfilter.trace.packet import endpoint, iface_matches
from kubectl_whose.analysis.netfilter.trace.context import WalkContext

PROTO_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1, "ipv6-icmp": 58, "sctp": 132}
HOOK_NAMES = {"prerouting": "PREROUTING", "input": "INPUT", "forward": "FORWARD", "output": "OUTPUT",
              "postrouting": "POSTROUTING"}
UNKNOWN = object()


class Verdict(Exception):
    def __init__(self, kind: str, target: Optional[str] = None, note: str = ""):
        self.kind, self.target, self.note = kind, target, note


def walk_chain(ctx: WalkContext, table: NftTable, base: NftChain) -> str:
    label = f"{table.family} {table.name}"
    hook = HOOK_NAMES.get(base.hook or "", "")
    chain, index, stack = base, 0, []
    while True:
        if index >= len(chain.rules):
            if stack:
                caller, index = stack.pop()
                ctx.step(label, chain.name, "(end of chain)", True, f"return to {caller.name}")
                chain = caller
                continue
            ctx.step(label, chain.name, f"policy {base.policy or 'accept'}", True, "end of base chain")
            return (base.policy or "accept").upper()
        rule = chain.rules[index]
        index += 1
        text = rule  # rendered by Step when read
        try:
            ok, why = _run_rule(ctx, table, rule, hook)
        except Verdict as v:
            ctx.step(label, chain.name, text, True, v.note or v.kind)
            if v.kind in ("jump", "goto"):
                if v.target not in table.chains:
                    ctx.assume(f"{v.kind} to missing chain {v.target!r}; taken as continue")
                    continue
                if v.kind == "jump":
                    stack.append((chain, index))
                chain, index = table.chains[v.target], 0
                continue
            if v.kind == "return":
                if stack:
                    chain, index = stack.pop()
                    continue
                ctx.step(label, chain.name, f"policy {base.policy or 'accept'}", True, "return from base chain")
                return (base.policy or "accept").upper()
            if v.kind == "continue":
                continue
            return v.kind.upper()
        ctx.step(label, chain.name, text, ok, why)


def _run_rule(ctx: WalkContext, table: NftTable, rule: NftRule, hook: str) -> Tuple[bool, str]:
    notes: List[str] = []
    for e in rule.expr:
        if not isinstance(e, dict) or len(e) != 1:
            continue
        kind, body = next(iter(e.items()))
        if kind == "match":
            ok, why = _compare(ctx, table, body, hook)
            if not ok:
                return False, why
        elif kind in ("accept", "drop", "return", "continue"):
            raise Verdict(kind, note=_join(notes, kind))
        elif kind in ("jump", "goto"):
            raise Verdict(kind, body["target"], _join(notes, f"{kind} {body['target']}"))
        elif kind == "reject":
            kind_ = (body or {}).get("type", "icmpx")
            if kind_ == "tcp reset" and ctx.packet.proto != "tcp":
                # `reject with tcp reset` carries an implicit `meta l4proto tcp` that nft leaves out of listings
                return False, (f"reject with tcp reset: only TCP (implicit meta l4proto tcp); protocol "
                               f"{ctx.packet.proto}")
            ctx.packet.reject_with = "tcp-reset" if kind_ == "tcp reset" else \
                f"icmp-{(body or {}).get('expr', 'port-unreachable')}"
            raise Verdict("reject", note=_join(notes, expr_text(e)))
        elif kind == "vmap":
            key = _value(ctx, table, body["key"], hook)
            hit = _lookup(ctx, table, body["data"], key, vmap=True)
            if hit is None:
                return False, f"{expr_text(e)}: no element for {_show(key)}"
            vkind, vbody = next(iter(hit.items()))
            target = vbody.get("target") if isinstance(vbody, dict) else None
            raise Verdict(vkind, target, _join(notes, f"{_show(key)} -> {vkind}{' ' + target if target else ''}"))
        elif kind == "tproxy":
            # not a verdict (nft_tproxy assigns the socket and goes on): Istio's rules set the mark and accept after
            notes.append(_nat(ctx, table, kind, body or {}, hook))
        elif kind in ("dnat", "snat", "redirect", "masquerade"):
            raise Verdict("accept", note=_join(notes, _nat(ctx, table, kind, body or {}, hook)))
        elif kind == "mangle":
            notes.append(_mangle(ctx, table, body, hook))
        elif kind in ("counter", "log", "limit", "notrack", "comment"):
            if kind == "notrack":
                ctx.packet.ctstate = "UNTRACKED"
            if kind == "limit":
                ctx.assume("nft limit: taken as not exceeded")
        else:
            ctx.assume(f"nft expression {kind!r} is not modelled; rules using it are taken as not matching")
            return False, f"{kind}: not modelled, taken as not matching"
    return True, _join(notes, "")


def _join(notes: List[str], last: str) -> str:
    return "; ".join([n for n in notes if n] + ([last] if last else []))


def _compare(ctx: WalkContext, table: NftTable, body: dict, hook: str) -> Tuple[bool, str]:
    left = _value(ctx, table, body["left"], hook)
    op = body.get("op", "==")
    desc = f"{expr_text({'match': body})}: {_show(left)}"
    if left is UNKNOWN:
        return False, desc
    right = body["right"]
    if op == "in" and (isinstance(left, str) or isinstance(right, list)) and not _is_set(right):
        wanted = right if isinstance(right, list) else [right]
        return left in wanted, desc
    if op == "in" and isinstance(left, int) and isinstance(right, int):
        return bool(left & right), desc
    hit = _lookup(ctx, table, right, left, vmap=False)
    found = hit is not None
    if op in ("==", "in"):
        return found, desc
    if op == "!=":
        return not found, desc
    try:
        r = int(right)
        return {"<": left < r, ">": left > r, "<=": left <= r, ">=": left >= r}.get(op, False), desc
    except (TypeError, ValueError):
        ctx.assume(f"nft comparison {op!r} not modelled; taken as not matching")
        return False, desc


def _is_set(right: Any) -> bool:
    return (isinstance(right, str) and right.startswith("@")) or (isinstance(right, dict) and "set" in right)


def _value(ctx: WalkContext, table: NftTable, e: Any, hook: str) -> Any:
    p = ctx.packet
    if not isinstance(e, dict):
        return e
    kind, body = next(iter(e.items()))
    if kind == "payload":
        proto, field = body.get("protocol"), body.get("field")
        if proto in ("ip", "ip6"):
            if (proto == "ip6") != (":" in p.dst):
                return UNKNOWN
            if field == "saddr":
                return ctx.src() or UNKNOWN
            if field == "daddr":
                return p.dst
            if field in ("protocol", "nexthdr"):
                return p.proto
        if proto in ("tcp", "udp", "sctp", "th"):
            if proto != "th" and p.proto != proto:
                return UNKNOWN
            if field == "dport":
                return p.dport
            if field == "sport":
                return ctx.sport()
    elif kind == "meta":
        key = body.get("key")
        values = {"l4proto": p.proto, "protocol": "ip6" if ":" in p.dst else "ip",
                  "nfproto": "ipv6" if ":" in p.dst else "ipv4", "mark": p.mark,
                  "iifname": p.iif if hook in ("PREROUTING", "INPUT", "FORWARD") else None,
                  "oifname": p.oif if hook in ("OUTPUT", "FORWARD", "POSTROUTING") else None}
        if key in ("skuid", "skgid"):
            if hook not in ("OUTPUT", "POSTROUTING") or ctx.query.kernel_generated or ctx.query.inbound:
                return UNKNOWN
            return ctx.uid() if key == "skuid" else ctx.gid()
        if key in ("iif", "oif"):
            key = key + "name"
        if key in values:
            return values[key] if values[key] is not None else UNKNOWN
    elif kind == "ct":
        key = body.get("key")
        if key == "state":
            if p.ctstate == "NEW" and not ctx.query.ctstate_given:
                ctx.assume("conntrack state NEW (a new connection)")
            return {"NEW": "new", "ESTABLISHED": "established", "RELATED": "related", "INVALID": "invalid",
                    "UNTRACKED": "untracked"}.get(p.ctstate, p.ctstate.lower())
        if key == "mark":
            return p.ctmark
        if key == "zone":
            return p.ctzone
        if key == "status":
            return "dnat" if p.dnat_hooks else "confirmed"
    elif kind == "concat":
        return tuple(_value(ctx, table, x, hook) for x in body)
    elif kind in ("&", "|", "^"):
        a, b = (_value(ctx, table, x, hook) for x in body)
        if not isinstance(a, int) or not isinstance(b, int):
            return UNKNOWN
        return {"&": a & b, "|": a | b, "^": a ^ b}[kind]
    elif kind == "numgen":
        mod = int(body.get("mod", 1))
        offset = int(body.get("offset", 0) or 0)
        if body.get("mode", "random") != "random":
            ctx.assume(f"numgen {body.get('mode')}: counted as an equal share per new connection")
        index = ctx.choose([1.0 / mod] * mod, f"numgen mod {mod}", [str(i + offset) for i in range(mod)])
        return index + offset
    ctx.assume(f"nft value {expr_text(e)!r} is not modelled; rules using it are taken as not matching")
    return UNKNOWN


def _show(v: Any) -> str:
    if v is UNKNOWN:
        return "not applicable / unknown"
    if isinstance(v, tuple):
        return " . ".join(_show(x) for x in v)
    return str(v)


def _lookup(ctx: WalkContext, table: NftTable, right: Any, key: Any, vmap: bool) -> Any:
    """Find `key` in a literal, an anonymous set, or a named set/map. Returns the element's value (maps),
    True (sets/literals) or None."""
    if isinstance(right, str) and right.startswith("@"):
        s = table.sets.get(right[1:])
        if s is None:
            ctx.assume(f"set {right} is not in the dump; taken as empty")
            return None
        elems = s.elem
    elif isinstance(right, dict) and "set" in right:
        elems = right["set"] if isinstance(right["set"], list) else [right["set"]]
    else:
        return True if _equal(key, right) else None
    for el in elems:
        if vmap or (isinstance(el, list) and len(el) == 2):
            k, v = el if isinstance(el, list) else (el, True)
            if _equal(key, k):
                return v
        elif _equal(key, el):
            return True
    return None


def _equal(value: Any, element: Any) -> bool:
    if isinstance(element, dict) and "elem" in element:
        element = element["elem"].get("val")
    if isinstance(element, dict) and "concat" in element:
        element = tuple(element["concat"])
    if isinstance(value, tuple):
        return isinstance(element, (tuple, list)) and len(element) == len(value) and all(
            _equal(v, e) for v, e in zip(value, element))
    if value is UNKNOWN or value is None:
        return False
    if isinstance(element, dict):
        kind, body = next(iter(element.items()))
        if kind == "prefix":
            return _in_prefix(value, f"{body['addr']}/{body['len']}")
        if kind == "range":
            return _le(body[0], value) and _le(value, body[1])
        return False
    if isinstance(value, str) and isinstance(element, str):
        if "*" in element or "+" in element:
            return iface_matches(element.replace("\\*", "*"), value)
        try:
            return ipaddress.ip_address(value) == ipaddress.ip_address(element)
        except ValueError:
            return value == element
    if isinstance(value, str) and isinstance(element, int):
        return PROTO_NUMBERS.get(value) == element
    if isinstance(value, int) and isinstance(element, str) and element.isdigit():
        return value == int(element)
    return value == element


def _in_prefix(value: Any, net: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(net, strict=False)
    except (ValueError, TypeError):
        return False


def _le(a: Any, b: Any) -> bool:
    try:
        if isinstance(a, str) or isinstance(b, str):
            return ipaddress.ip_address(a) <= ipaddress.ip_address(b)
        return a <= b
    except (ValueError, TypeError):
        return False


def _nat(ctx: WalkContext, table: NftTable, kind: str, body: dict, hook: str) -> str:
    if kind == "redirect":
        return nat_effects.redirect(ctx, hook, str(body["port"]) if body.get("port") is not None else None)
    if kind == "masquerade":
        return nat_effects.masquerade(ctx)
    if kind == "tproxy":
        return nat_effects.tproxy(ctx, str(body.get("port")) if body.get("port") else None, body.get("addr"), None)
    addr = body.get("addr")
    addr = _value(ctx, table, addr, hook) if isinstance(addr, dict) else addr
    to = endpoint(addr, body.get("port")) if addr else (f":{body['port']}" if body.get("port") else "")
    return nat_effects.dnat(ctx, hook, to) if kind == "dnat" else nat_effects.snat(ctx, to)


def _mangle(ctx: WalkContext, table: NftTable, body: dict, hook: str) -> str:
    key = body.get("key", {})
    value = _value(ctx, table, body.get("value"), hook)
    if not isinstance(value, int):
        ctx.assume(f"nft set statement {expr_text({'mangle': body})!r} not modelled")
        return "not modelled"
    if key == {"meta": {"key": "mark"}}:
        ctx.packet.mark = value & 0xFFFFFFFF
        return f"mark is now {ctx.packet.mark:#x}"
    if key == {"ct": {"key": "mark"}}:
        ctx.packet.ctmark = value & 0xFFFFFFFF
        return f"connmark is now {ctx.packet.ctmark:#x}"
    if key == {"ct": {"key": "zone"}}:
        ctx.packet.ctzone = value
        return f"conntrack zone {value}"
    ctx.assume(f"nft set statement on {expr_text(key)!r} not modelled")
    return "not modelled"
