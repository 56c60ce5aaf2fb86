"""One walk of one packet through the hooks a direction needs, in kernel order.

Hooks: outbound (locally generated) OUTPUT -> (reroute) -> POSTROUTING, and back in through lo
(PREROUTING -> INPUT) when the destination is local; inbound PREROUTING -> (routing) -> INPUT, else
FORWARD -> POSTROUTING. Within a hook, iptables tables and nftables base chains run by priority (raw -300,
mangle -150, dstnat/nat -100, filter 0, security 50, srcnat 100); at equal priority iptables-legacy first,
then iptables-nft, then native nftables tables (an assumption: the kernel orders them by registration).
NAT rules see only a connection's first packet (conntrack NEW), one destination rewrite per connection;
later packets get the first packet's NAT replayed by conntrack.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

from kubectl_whose.analysis.netfilter.model import IptablesRuleset
from kubectl_whose.analysis.netfilter.nft_json import NftRuleset
from kubectl_whose.analysis.netfilter.trace.packet import Packet, TraceQuery, endpoint, is_loopback
from kubectl_whose.analysis.netfilter.trace.context import WalkContext

Ruleset = Union[IptablesRuleset, NftRuleset]
IPTABLES_PRIORITY = {"raw": -300, "mangle": -150, "filter": 0, "security": 50}
NAT_PRIORITY = {"PREROUTING": -100, "OUTPUT": -100, "INPUT": 100, "POSTROUTING": 100}
IPTABLES_NFT_TABLES = {"raw", "mangle", "nat", "filter", "security"}


def entries(rulesets: Sequence[Ruleset], hook: str, family: str, notes: List[str]):
    """(priority, rank, label, kind, object) for every table/base chain registered at `hook`."""
    has_iptables_nft = any(isinstance(r, IptablesRuleset) and r.backend == "nft" and r.family == family
                           for r in rulesets)
    out = []
    for order, rs in enumerate(rulesets):
        if isinstance(rs, IptablesRuleset):
            if rs.family != family:
                continue
            rank = 0 if rs.backend == "legacy" else 1
            for name, table in rs.tables.items():
                if hook not in table.chains or not table.chains[hook].builtin:
                    continue
                prio = NAT_PRIORITY.get(hook, 0) if name == "nat" else IPTABLES_PRIORITY.get(name, 0)
                label = name if len(rulesets) == 1 else f"{name} ({rs.backend or 'iptables'})"
                out.append((prio, rank, order, label, "iptables", table))
            continue
        for t in rs.tables:
            fam_ok = t.family == "inet" or (t.family == "ip" and family == "ipv4") or (
                t.family == "ip6" and family == "ipv6")
            if not fam_ok:
                continue
            if has_iptables_nft and t.name in IPTABLES_NFT_TABLES and any(c.isupper() for c in t.chains):
                note = f"nft table {t.family} {t.name} is iptables-nft's own; evaluated from the iptables-nft dump"
                if note not in notes:
                    notes.append(note)
                continue
            for c in t.chains.values():
                if (c.hook or "").upper() == hook:
                    out.append((c.priority or 0, 2, order, f"{t.family} {t.name}", "nft", (t, c)))
    out.sort(key=lambda e: (e[0], e[1], e[2]))
    return out


def walk(rulesets: Sequence[Ruleset], q: TraceQuery, choices: List[int]) -> Tuple[WalkContext, str]:
    from kubectl_whose.analysis.netfilter.trace.iptables import walk_table
    from kubectl_whose.analysis.netfilter.trace.nft import walk_chain

    routing = q.routing
    local_ips = list(q.pod_ips) or (routing.local_addresses() if routing is not None else []) or \
        ([q.dst] if q.inbound and routing is None else [])
    src = q.src
    if src is None and not q.inbound:
        src = "::1" if is_loopback(q.dst) and ":" in q.dst else ("127.0.0.1" if is_loopback(q.dst) else
                                                                  (q.pod_ips[0] if q.pod_ips else None))
    pkt = Packet(q.proto, src, q.sport, q.dst, q.dport, uid=q.uid, gid=q.gid, ctstate=q.ctstate, mark=q.mark)
    ctx = WalkContext(q, pkt, choices, local_ips)
    if q.inbound:
        pkt.iif = q.iface or ("lo" if is_loopback(q.dst) else "eth0")
        if not q.iface and pkt.iif == "eth0":
            ctx.assume("input interface assumed eth0 (pass --iface)")
        hooks = ["PREROUTING"]
    else:
        pkt.oif = q.iface or ctx.output_device(q.dst)
        if not q.iface and pkt.oif == "eth0" and routing is None:
            ctx.assume("output interface assumed eth0, the pod's default route (pass --iface)")
        hooks = ["OUTPUT", "POSTROUTING"]
    notes: List[str] = []
    looped = False  # a locally generated packet to a local address comes back in through lo
    i = 0
    while i < len(hooks):
        hook = hooks[i]
        ctx.hook = hook
        for prio, _, _, label, kind, obj in entries(rulesets, hook, q.family, notes):
            is_nat = (kind == "iptables" and obj.name == "nat") or (kind == "nft" and obj[1].type == "nat")
            if is_nat and looped:
                ctx.step(label, hook, "(nat skipped)", False, "back in through lo: this connection's NAT was "
                                                              "decided in OUTPUT/POSTROUTING")
                continue
            if is_nat and pkt.ctstate != "NEW":
                replayed = replay_nat(pkt, q, hook)
                ctx.step(label, hook, "(nat skipped)", False, f"conntrack state {pkt.ctstate}: NAT rules see only "
                                                              f"the first packet of a connection" + replayed)
                continue
            if is_nat and hook in pkt.dnat_hooks and hook in ("PREROUTING", "OUTPUT"):
                ctx.step(label, hook, "(nat skipped)", False, "already rewritten by an earlier nat chain of this hook")
                continue
            verdict = walk_table(ctx, obj, hook, label) if kind == "iptables" else walk_chain(ctx, *obj)
            if verdict in ("DROP", "REJECT"):
                for n in notes:
                    ctx.assume(n)
                return ctx, verdict
        if hook == "PREROUTING":
            if routing is not None and pkt.verdict_kind != "TPROXY" and not looped:
                ended = route_input(ctx, pkt, hooks)
                if ended:
                    return ctx, ended
            elif ctx.is_local(pkt.dst) or pkt.verdict_kind == "TPROXY":
                hooks.append("INPUT")
                if routing is None and q.inbound and not q.pod_ips and not looped:
                    ctx.assume("routing not evaluated: without the namespace's addresses and routes (--from-file an "
                               "`ip -j addr` and `ip -j route show table all` dump, or --local-ip/--route) the "
                               "packet is taken as delivered locally (INPUT); a node would FORWARD a packet to "
                               "another address")
            else:
                ctx.assume(f"{pkt.dst} is not a local address: the packet is forwarded")
                pkt.oif = "eth0"
                ctx.assume(f"the forwarded packet leaves through eth0 (pass --route '{pkt.dst} dev IF' otherwise)")
                hooks += ["FORWARD", "POSTROUTING"]
        if hook == "OUTPUT" and pkt.unroutable:
            ctx.step("(routing)", hook, "(reroute after NAT)", True, "no route from a loopback source: dropped")
            return ctx, "DROP"
        if hook == "OUTPUT" and pkt.reroute_oif:
            pkt.oif = pkt.reroute_oif  # the rerouted device, seen from POSTROUTING on
        elif hook == "POSTROUTING" and not q.inbound and not looped and ctx.is_local(pkt.dst):
            looped = True
            pkt.iif = "lo"
            hooks.append("PREROUTING")
        i += 1
    for n in notes:
        ctx.assume(n)
    return ctx, "ACCEPT"


def replay_nat(pkt: Packet, q: TraceQuery, hook: str) -> str:
    """Conntrack applies the first packet's NAT to the connection's later packets at the same hook."""
    for entry in q.replay_nat:
        if entry[0] == hook and hook not in pkt.dnat_hooks + (["POSTROUTING"] if pkt.snat_done else []):
            _, which, ip, port, oif = entry
            if which == "dst":
                pkt.dst, pkt.dport = ip, port
                pkt.reroute_oif = oif or pkt.reroute_oif
                pkt.dnat_hooks.append(hook)
            else:
                pkt.src, pkt.sport = ip, port
                pkt.snat_done = True
            return f"; conntrack rewrites the {'destination' if which == 'dst' else 'source'} to " \
                   f"{endpoint(ip, port)} as for the first packet"
    return ""


def route_input(ctx: WalkContext, pkt: Packet, hooks: List[str]) -> Optional[str]:
    """The routing decision after PREROUTING (ip_route_input): INPUT for this host, FORWARD and POSTROUTING
    through the route's device otherwise; the walk ends (DROP) when there is no usable route."""
    decision = ctx.query.routing.lookup(pkt.dst, pkt.src, pkt.mark, iif=pkt.iif)
    ctx.hook = "routing"
    if decision.delivered_here:
        ctx.step("routing", "input", decision.text, True, f"{pkt.dst} is an address of this host: delivered (INPUT)")
        hooks.append("INPUT")
        return None
    if decision.kind == "unicast":
        ctx.step("routing", "forward", decision.text, True, f"{pkt.dst} is not local: forwarded out of "
                                                            f"{decision.dev} (FORWARD, POSTROUTING)")
        ctx.assume("the node forwards packets (net.ipv4.ip_forward=1, as on every Kubernetes node)")
        pkt.oif = decision.dev
        hooks += ["FORWARD", "POSTROUTING"]
        return None
    answer = {"blackhole": "dropped silently", "no-route": "ICMP network unreachable",
              "unreachable": "ICMP host unreachable", "prohibit": "ICMP administratively prohibited"}[decision.kind]
    ctx.step("routing", "forward", decision.text, True, f"the kernel cannot route it: {answer}")
    pkt.no_route = None if decision.kind == "blackhole" else decision.kind
    return "DROP"
