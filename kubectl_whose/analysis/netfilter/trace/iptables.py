"""Walk one iptables table's chain for the packet in a `WalkContext`: matches, targets, jumps.

Semantics follow the kernel's x_tables (`ipt_do_table`): rules in order; a non-matching rule is
passed over; `-j CHAIN` pushes a return point, `-g CHAIN` does not (so RETURN from a goto'd chain
returns to the caller of the chain that jumped); falling off a user chain returns; falling off a
built-in chain applies its policy. NAT targets end the table with ACCEPT. A match or target not
modelled here is named in the step and in the assumptions, with the choice made.
"""
from __future__ import annotations

from bisect import bisect_left
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

from kubectl_whose.analysis.netfilter.trace import nat_effects
from kubectl_whose.analysis.netfilter.model import Match, NON_TERMINAL_TARGETS, Rule, Table
from kubectl_whose.analysis.netfilter.trace.packet import iface_matches, in_network
from kubectl_whose.analysis.netfilter.trace.context import WalkContext

OUTPUT_HOOKS = ("OUTPUT", "POSTROUTING")  # where a packet has an owner socket
INPUT_IF_HOOKS = ("PREROUTING", "INPUT", "FORWARD")
OUTPUT_IF_HOOKS = ("OUTPUT", "FORWARD", "POSTROUTING")
ADDRESS_TYPES = ("LOCAL", "UNICAST", "BROADCAST", "MULTICAST", "ANYCAST", "BLACKHOLE", "UNREACHABLE", "PROHIBIT",
                 "THROW", "NAT", "XRESOLVE", "UNSPEC")


def walk_table(ctx: WalkContext, table: Table, hook: str, label: str) -> str:
    """Run `table`'s built-in chain for `hook`; returns ACCEPT, DROP or REJECT."""
    chain = table.chains[hook]
    stack = []
    index = 0
    while True:
        if index >= len(chain.rules):
            if stack:
                caller, index = stack.pop()
                ctx.step(label, chain.name, "(end of chain)", True, f"return to {caller.name}")
                chain = caller
                continue
            ctx.step(label, chain.name, f"policy {chain.policy}", True, "end of built-in chain")
            return chain.policy or "ACCEPT"
        if ctx.quiet:
            index = next_candidate(chain.rules, index, ctx.packet.dst)
            if index >= len(chain.rules):
                continue
        rule = chain.rules[index]
        index += 1
        ok, why = rule_matches(ctx, rule, hook)
        text = rule  # rendered by Step when read
        if not ok:
            ctx.step(label, chain.name, text, False, why)
            continue
        target = rule.target
        if target is None:
            ctx.step(label, chain.name, text, True, (why + "; " if why else "") + "no target: counters only")
            continue
        name = target.name
        if name == "RETURN":
            ctx.step(label, chain.name, text, True, _join(why, "RETURN"))
            if stack:
                chain, index = stack.pop()
                continue
            ctx.step(label, chain.name, f"policy {chain.policy}", True, "RETURN from a built-in chain")
            return chain.policy or "ACCEPT"
        if name in table.chains:
            ctx.step(label, chain.name, text, True, _join(why, f"{'goto' if target.goto else 'jump'} {name}"))
            if not target.goto:
                stack.append((chain, index))
            chain, index = table.chains[name], 0
            continue
        verdict, note = apply_target(ctx, rule, hook)
        ctx.step(label, chain.name, text, True, _join(why, note))
        if verdict is not None:
            return verdict


INDEXED = 64  # chains longer than this get a destination index for quiet walks
_INDEX: "OrderedDict[int, tuple]" = OrderedDict()


def next_candidate(rules: List[Rule], start: int, dst: Optional[str]) -> int:
    """The first rule at or after `start` that can match destination `dst`: kube-proxy's KUBE-SERVICES is 5,000
    rules of `-d VIP/32 ...`, all but a few of which fail on the destination alone."""
    if len(rules) <= INDEXED:
        return start
    entry = _INDEX.get(id(rules))
    if entry is None or entry[0] is not rules or entry[1] != len(rules):
        by_dst: Dict[str, List[int]] = {}
        others: List[int] = []
        for i, r in enumerate(rules):
            d = r.get_core("-d")
            if d is not None and not d.negated and "," not in d.value and d.value.endswith(("/32", "/128")):
                by_dst.setdefault(d.value.rsplit("/", 1)[0], []).append(i)
            else:
                others.append(i)
        entry = (rules, len(rules), by_dst, others)
        _INDEX[id(rules)] = entry
        while len(_INDEX) > 32:
            _INDEX.popitem(last=False)
    _, n, by_dst, others = entry
    best = n
    for seq in (others, by_dst.get(dst or "", ())):
        k = bisect_left(seq, start)
        if k < len(seq):
            best = min(best, seq[k])
    return best


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b


def apply_target(ctx: WalkContext, rule: Rule, hook: str) -> Tuple[Optional[str], str]:
    """Apply a target; returns (verdict or None to continue, note)."""
    t = rule.target
    name = t.name
    opt = lambda n: (t.get(n).value if t.get(n) else None)  # noqa: E731
    if rule.unsupported and name in ("DNAT", "SNAT", "REDIRECT", "MASQUERADE", "TPROXY", "MARK", "CONNMARK"):
        ctx.assume(f"-j {name} was printed as {rule.unsupported}: its parameters are lost, so what it does to the "
                   f"packet is unknown (read the rules with the iptables that wrote them)")
        if name in ("DNAT", "REDIRECT", "TPROXY"):
            ctx.packet.verdict_kind, ctx.packet.destination_unknown = name, True
            ctx.packet.dnat_hooks.append(hook)
        return ("ACCEPT" if name not in ("MARK", "CONNMARK") else None), f"{name}: parameters unknown"
    if name == "ACCEPT":
        return "ACCEPT", "ACCEPT"
    if name == "DROP":
        return "DROP", "DROP"
    if name == "REJECT":
        ctx.packet.reject_with = opt("--reject-with") or "icmp-port-unreachable"
        return "REJECT", f"REJECT ({ctx.packet.reject_with})"
    if name == "REDIRECT":
        return "ACCEPT", nat_effects.redirect(ctx, hook, opt("--to-ports"))
    if name == "DNAT":
        return "ACCEPT", nat_effects.dnat(ctx, hook, opt("--to-destination"))
    if name == "SNAT":
        return "ACCEPT", nat_effects.snat(ctx, opt("--to-source"))
    if name == "MASQUERADE":
        return "ACCEPT", nat_effects.masquerade(ctx)
    if name == "TPROXY":
        return "ACCEPT", nat_effects.tproxy(ctx, opt("--on-port"), opt("--on-ip"), opt("--tproxy-mark"))
    if name == "MARK":
        return None, nat_effects.set_mark(ctx, t)
    if name == "CONNMARK":
        return None, nat_effects.connmark(ctx, t)
    if name == "CT":
        if t.get("--notrack"):
            ctx.packet.ctstate = "UNTRACKED"
            return None, "CT --notrack: connection not tracked (no NAT later)"
        if opt("--zone"):
            ctx.packet.ctzone = int(opt("--zone"), 0)
            return None, f"conntrack zone {ctx.packet.ctzone}"
        return None, "CT: " + " ".join(o.name for o in t.options)
    if name == "NOTRACK":
        ctx.packet.ctstate = "UNTRACKED"
        return None, "NOTRACK: connection not tracked (no NAT later)"
    if name in ("LOG", "NFLOG", "TRACE"):
        return None, f"{name}: logged, continues"
    if name in NON_TERMINAL_TARGETS:
        ctx.assume(f"target {name} is not modelled; assumed to change nothing and continue")
        return None, f"{name}: not modelled, continues"
    ctx.assume(f"target {name} is not a chain in this table and not modelled; assumed to continue")
    return None, f"{name}: unknown target (no such chain), assumed to continue"


def rule_matches(ctx: WalkContext, rule: Rule, hook: str) -> Tuple[bool, str]:
    """(matched, why): why names the first condition that failed, or notes on a match."""
    if rule.unsupported:
        ctx.assume(f"a rule shown as {rule.unsupported} lost its parameters; it is evaluated as printed")
    p = ctx.packet
    for o in rule.core:
        v = o.values[0] if o.values else ""
        if o.name == "-p":
            ok = p.proto == v or (v == "all")
            desc = f"protocol {p.proto}"
        elif o.name in ("-s", "-d"):
            ip = ctx.src() if o.name == "-s" else p.dst
            ok = ip is not None and any(in_network(ip, n) for n in v.split(","))
            if ip is None and o.negated:
                ctx.assume("source address unknown: `! -s` rules are taken as matching")
            desc = f"{'source' if o.name == '-s' else 'destination'} {ip or 'unknown'}"
        elif o.name == "-i":
            ok = hook in INPUT_IF_HOOKS and iface_matches(v, p.iif)
            desc = f"in-interface {p.iif or 'none'}"
        elif o.name == "-o":
            ok = hook in OUTPUT_IF_HOOKS and iface_matches(v, p.oif)
            desc = f"out-interface {p.oif or 'none'}"
        elif o.name == "-f":
            ok, v, desc = False, "fragment", "not a fragment"
        else:
            ok, desc = False, "unknown"
        if ok == o.negated:
            return False, f"{'! ' if o.negated else ''}{o.name} {v}: {desc}"
    notes = []
    for m in rule.matches:
        ok, why = match_module(ctx, m, hook)
        if not ok:
            return False, why
        if why:
            notes.append(why)
    return True, "; ".join(notes)


def match_module(ctx: WalkContext, m: Match, hook: str) -> Tuple[bool, str]:
    from kubectl_whose.analysis.netfilter.trace import matches as trace_matches

    if m.module == "statistic":
        return _statistic(ctx, m)
    fn = trace_matches.MODULES.get(m.module)
    if fn is None:
        text = " ".join([m.module] + [o.name for o in m.options])
        ctx.assume(f"match -m {text} is not modelled; rules using it are taken as not matching")
        return False, f"-m {m.module}: not modelled, taken as not matching"
    for o in m.options:
        ok, why = fn(ctx, m, o, hook)
        if ok is None:  # option not known to the module evaluator
            ctx.assume(f"-m {m.module} {o.name} is not modelled; taken as matching")
            continue
        if ok == o.negated:
            return False, f"{'! ' if o.negated else ''}{o.name} {o.value}: {why}"
    return True, ""


def _statistic(ctx: WalkContext, m: Match) -> Tuple[bool, str]:
    mode = m.get("--mode").value if m.get("--mode") else "random"
    if mode == "random":
        p = float(m.get("--probability").value) if m.get("--probability") else 1.0
    else:
        every = int(m.get("--every").value) if m.get("--every") else 1
        p = 1.0 / every
        ctx.assume(f"statistic --mode nth --every {every}: counted as probability 1/{every} per new connection")
    negated = bool(m.get("--probability") and m.get("--probability").negated)
    if p >= 1.0:
        return (not negated), "statistic p=1"
    if p <= 0.0:
        return negated, "statistic p=0"
    index = ctx.choose([p, 1.0 - p], "statistic", ["matched", "not matched"])
    matched = (index == 0) != negated
    return matched, f"statistic {mode} p={p:.4g}: this branch {'matched' if index == 0 else 'not matched'}"
