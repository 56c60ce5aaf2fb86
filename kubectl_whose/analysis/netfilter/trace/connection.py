"""What the sender sees over a connection's life, beyond the first packet's verdict.

The first packet may pass and the connection still fail: the reply (SYN-ACK, UDP answer) crosses the rules
too, as do the sender's later packets (conntrack ESTABLISHED); a REJECT's answer (ICMP error or TCP RST) is a
new packet the kernel sends through OUTPUT/POSTROUTING and can be dropped there. Each function walks that
packet (`trace_walk.walk`) and says what the sending socket observes. All of it is judged by the kernel in
tests/analysis/netfilter/trace/test_differential.py.
"""
from __future__ import annotations

from dataclasses import replace
from typing import List, Sequence, Tuple

from kubectl_whose.analysis.netfilter.trace.packet import Packet, TraceQuery, is_loopback
from kubectl_whose.analysis.netfilter.trace.context import Step
from kubectl_whose.analysis.netfilter.trace.walk import Ruleset, walk


def later_packets(rulesets: Sequence[Ruleset], query: TraceQuery, pkt: Packet) -> Tuple[str, List[Step], List[str]]:
    """The sender's next packets (its handshake ACK, its data): conntrack ESTABLISHED, the first packet's NAT
    replayed, the same hooks. Rules that let only NEW through drop them: the handshake never completes."""
    lq = replace(query, ctstate="ESTABLISHED", ctstate_given=True, replay_nat=tuple(pkt.nat_log))
    ctx, verdict = walk(rulesets, lq, [])
    steps = [s.relabel(f"{s.hook} (later packets)") for s in ctx.steps]
    if verdict == "DROP":
        return "timeout", steps, ["the connection's later packets (ESTABLISHED) are dropped: the handshake never "
                                  "completes and the sender sees a timeout"]
    if verdict == "REJECT":
        seen, answer_steps, notes = reject_answer(rulesets, lq, ctx.packet)
        if seen == "refused" and ctx.packet.reject_with == "tcp-reset":
            seen = "reset"  # connected, then a RST: ECONNRESET rather than ECONNREFUSED
        return seen, steps + answer_steps, ["the connection's later packets (ESTABLISHED) are rejected"] + notes
    return "delivered", steps, []


def reject_answer(rulesets: Sequence[Ruleset], query: TraceQuery, pkt: Packet) -> Tuple[str, List[Step], List[str]]:
    """What the sender sees after a REJECT. The answer is a packet the kernel sends from this namespace (conntrack
    RELATED, for an ICMP error and for a RST alike: nf_ct_attach, so NAT rules do not apply); it crosses OUTPUT and
    POSTROUTING like any other and can be dropped there, e.g. by the very REJECT rule when it has no -p."""
    rst = pkt.reject_with == "tcp-reset"
    seen = "refused" if rst or "port-unreach" in (pkt.reject_with or "") else "unreachable"
    if pkt.src is None:
        return seen, [], ["the sender's address is unknown: the REJECT's answer is taken to reach it"]
    routing = query.routing
    local = lambda ip: is_loopback(ip) or ip in query.pod_ips or (  # noqa: E731
        routing.is_local(ip) if routing is not None else query.inbound and ip == query.dst)
    # a RST swaps the rejected packet's addresses; an ICMP error comes from the rejected packet's destination when
    # that is local (__icmp_send), else from the route's source toward the sender
    if rst or local(pkt.dst):
        answer_src = pkt.dst
    else:
        answer_src = pkt.src if local(pkt.src) else (query.pod_ips[0] if query.pod_ips else pkt.dst)
    q = TraceQuery(dst=pkt.src, dport=(pkt.sport or 40000) if rst else None, proto="tcp" if rst else "icmp",
                   src=answer_src, sport=pkt.dport if rst else None, pod_ips=query.pod_ips,
                   ctstate="RELATED", ctstate_given=True, kernel_generated=True, routing=routing,
                   in_sets=_swapped(query.in_sets))
    ctx, verdict = walk(rulesets, q, [])
    what = "TCP RST" if rst else f"ICMP error ({pkt.reject_with})"
    steps = [s.relabel(f"{s.hook} ({what})") for s in ctx.steps]
    if verdict in ("DROP", "REJECT"):
        return "timeout", steps, [f"the {what} this REJECT sends is itself dropped in OUTPUT/POSTROUTING: the "
                                  f"sender sees a timeout, as for DROP"]
    notes = [] if rst else ["the kernel rate-limits ICMP errors per destination (net.ipv4.icmp_ratelimit, 1 s by "
                            "default): a sender rejected many times in a row may see timeouts instead"]
    return seen, steps, notes


def _swapped(in_sets):
    """The answer's source is the first packet's destination: `NAME:dst` membership becomes `NAME:src`."""
    swap = {"src": "dst", "dst": "src"}
    return tuple(f"{s.rsplit(':', 1)[0]}:{swap[s.rsplit(':', 1)[1]]}" if s.rsplit(":", 1)[-1] in swap else s
                 for s in in_sets)


def reply(rulesets: Sequence[Ruleset], query: TraceQuery, pkt: Packet) -> Tuple[str, List[Step], List[str]]:
    """Does the answer (SYN-ACK, UDP reply) get back? It is the connection's reply direction (conntrack
    ESTABLISHED, no NAT rules), sent by the local listener through OUTPUT/POSTROUTING when the packet was
    delivered here, or arriving through PREROUTING/INPUT when it went out; filter rules can drop it."""
    if pkt.src is None:
        return "delivered", [], []
    if query.routing is not None:
        delivered_here = pkt.delivered_to is not None or is_loopback(pkt.dst) or query.routing.is_local(pkt.dst)
    else:
        delivered_here = pkt.delivered_to is not None or (query.inbound and pkt.iif is not None and (
            pkt.dst in query.pod_ips or not query.pod_ips or is_loopback(pkt.dst))) or \
            (not query.inbound and (is_loopback(pkt.dst) or pkt.dst in query.pod_ips))
    sport = pkt.delivered_to.rsplit(":", 1)[1] if pkt.delivered_to else pkt.dport
    # the answer to an untracked packet finds no connection: a SYN-ACK without one is INVALID to conntrack, a UDP
    # answer a new flow (unless the raw table exempts the answer too)
    state = "ESTABLISHED" if pkt.ctstate != "UNTRACKED" else ("INVALID" if pkt.proto == "tcp" else "NEW")
    if query.inbound and not delivered_here:
        # forwarded: the reply comes back through this namespace, in by the device the packet left by; conntrack
        # has undone the source NAT before routing (PREROUTING) and undoes the destination NAT after (POSTROUTING),
        # so FORWARD sees it from the new destination to the original sender
        rq = TraceQuery(dst=query.src or pkt.src, dport=query.sport or 40000, proto=pkt.proto, src=pkt.dst,
                        sport=int(sport) if sport is not None else None, inbound=True, iface=pkt.oif,
                        pod_ips=query.pod_ips, ctstate=state, ctstate_given=True, reply=True,
                        routing=query.routing, in_sets=_swapped(query.in_sets))
    else:
        rq = TraceQuery(dst=pkt.src, dport=pkt.sport or 40000, proto=pkt.proto, src=pkt.dst,
                        sport=int(sport) if sport is not None else None, inbound=not delivered_here,
                        iface=(pkt.oif if not delivered_here else (query.iface if query.inbound else None)),
                        pod_ips=query.pod_ips or ((pkt.src,) if not query.inbound else ()), ctstate=state,
                        ctstate_given=True, reply=True, routing=query.routing, in_sets=_swapped(query.in_sets))
    ctx, verdict = walk(rulesets, rq, [])
    steps = [s.relabel(f"{s.hook} (reply)") for s in ctx.steps]
    if ctx.packet.ctzone != pkt.ctzone and pkt.nat:
        # conntrack looks the reply up in the zone the raw table put it in: another zone holds no such connection,
        # so the NAT of the first packet is not undone and the sender does not recognise the answer
        return "timeout", steps, [f"the reply is in conntrack zone {ctx.packet.ctzone}, the connection in zone "
                                  f"{pkt.ctzone}: its NAT is not undone and the sender sees a timeout"] + \
            [a for a in ctx.assumptions if "answering socket" in a]
    if verdict in ("DROP", "REJECT"):
        return "timeout", steps, ["the reply (SYN-ACK or UDP answer) is dropped on its way back: the sender sees "
                                  "a timeout although the packet itself got through"] + \
            [a for a in ctx.assumptions if "answering socket" in a]
    return "delivered", steps, []
