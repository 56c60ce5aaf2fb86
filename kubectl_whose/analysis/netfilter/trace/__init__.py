"""Trace a packet through a pod's netfilter rules in kernel order, and say where it ends.

The walk itself (hooks, tables and nft base chains by priority, NAT once per connection) is
`walk.py`, the routing decision between PREROUTING and INPUT or FORWARD is `routing.py`; what the
sender sees beyond the first packet (reply, later packets, a REJECT's own answer) is `connection.py`;
iptables and nftables rules are evaluated by `iptables.py` (+ `matches.py`) and `nft.py`.

Branches (`-m statistic`, `numgen`) are enumerated: each walk follows one choice per branch point
and the next walk takes the next combination, so `outcomes` lists every possible end with its
probability.

`-o json` contract (`TraceResult.to_dict()`), stable for scripts:
  {"verdict": "ACCEPT"|"DROP"|"REJECT"|"REDIRECT"|"DNAT"|"TPROXY"|"SNAT"|"MASQUERADE"|"MIXED",
   "outcomes": [{"probability": float, "destination": "ip:port"|null, "verdict": str,
                 "sender_sees": "delivered"|"timeout"|"refused"|"reset"|"unreachable",
                 "source": "ip:port"|null, "mark": "0x..", "nat": [str], "untracked": bool, "steps": [...]}],
   "steps": [{"hook", "table", "chain", "rule", "matched": bool, "note"}],   # path of outcomes[0]
   "assumptions": [str], "packet": {...}}
`verdict` is the verdict shared by every outcome, or "MIXED" when they differ. `sender_sees` is what the
sending socket observes over the connection's life - the first packet, the reply (SYN-ACK, UDP answer) and,
for TCP, the sender's later packets (conntrack ESTABLISHED, the first packet's NAT replayed): "delivered",
"timeout" (a DROP anywhere on that way, or a REJECT whose own answer - the ICMP error or TCP RST, a new packet
the kernel sends through OUTPUT/POSTROUTING - is dropped too), "refused" (port-unreachable, or tcp-reset of
the first packet), "reset" (tcp-reset of a later packet) or "unreachable" (other ICMP errors). `destination` is
where the packet is delivered after NAT (for REDIRECT the redirect port on 127.0.0.1 when the
packet was locally generated, or on the pod's own address when it came in), null when dropped. `untracked`:
the packet was exempted from connection tracking (NOTRACK), so conntrack keeps no entry for it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Union

from kubectl_whose.analysis.netfilter.model import IptablesRuleset
from kubectl_whose.analysis.netfilter.nft_json import NftRuleset
from kubectl_whose.analysis.netfilter.trace.packet import TraceQuery, endpoint
from kubectl_whose.analysis.netfilter.trace.connection import later_packets, reject_answer, reply
from kubectl_whose.analysis.netfilter.trace.context import QUIET, Step
from kubectl_whose.analysis.netfilter.trace.walk import walk

Ruleset = Union[IptablesRuleset, NftRuleset]
MAX_WALKS = 512  # branch combinations explored before giving up (kube-proxy: one branch point per service)


@dataclass
class Outcome:
    probability: float
    verdict: str
    destination: Optional[str] = None
    source: Optional[str] = None
    mark: int = 0
    nat: List[str] = field(default_factory=list)
    steps: List[Step] = field(default_factory=list)
    sender_sees: str = "delivered"  # delivered | timeout | refused | reset | unreachable
    untracked: bool = False  # NOTRACK / CT --notrack / nft notrack: conntrack keeps no entry (and no NAT applies)

    def to_dict(self) -> dict:
        return {"probability": round(self.probability, 12), "destination": self.destination,
                "verdict": self.verdict, "sender_sees": self.sender_sees, "source": self.source,
                "mark": f"{self.mark:#x}", "nat": self.nat, "untracked": self.untracked,
                "steps": [s.to_dict() for s in self.steps]}


@dataclass
class TraceResult:
    query: TraceQuery
    outcomes: List[Outcome]
    assumptions: List[str]
    hooks: List[str]

    @property
    def verdict(self) -> str:
        kinds = {o.verdict for o in self.outcomes}
        return kinds.pop() if len(kinds) == 1 else "MIXED"

    @property
    def steps(self) -> List[Step]:
        return self.outcomes[0].steps if self.outcomes else []

    def to_dict(self) -> dict:
        q = self.query
        return {
            "verdict": self.verdict,
            "outcomes": [o.to_dict() for o in self.outcomes],
            "steps": [s.to_dict() for s in self.steps],
            "assumptions": self.assumptions,
            "packet": {"proto": q.proto, "from": endpoint(q.src, q.sport), "to": endpoint(q.dst, q.dport),
                       "direction": "inbound" if q.inbound else "outbound", "uid": q.uid, "gid": q.gid,
                       "iface": q.iface, "pod_ips": list(q.pod_ips), "ctstate": q.ctstate, "mark": f"{q.mark:#x}",
                       "in_sets": list(q.in_sets)},
            "hooks": self.hooks,
        }


def _family_notes(rulesets: Sequence[Ruleset], query: TraceQuery) -> List[str]:
    families = {rs.family for rs in rulesets if isinstance(rs, IptablesRuleset)}
    families |= {{"ip": "ipv4", "ip6": "ipv6"}.get(t.family, "ipv4" if t.family == "inet" else t.family)
                 for rs in rulesets if isinstance(rs, NftRuleset) for t in rs.tables}
    families |= {"ipv4", "ipv6"} if any(t.family == "inet" for rs in rulesets if isinstance(rs, NftRuleset)
                                       for t in rs.tables) else set()
    if query.family in families:
        return []
    tool = "ip6tables-save" if query.family == "ipv6" else "iptables-save"
    return [f"the dumps hold no {query.family} rules, so nothing filters or rewrites this packet here "
            f"(add the {tool} output with --from-file)"]


def trace(rulesets: Sequence[Ruleset], query: TraceQuery, quiet: bool = False) -> TraceResult:
    """Every end the packet can reach, with probabilities, steps and the assumptions made (`quiet`: only the
    rules that matched are in the steps, which makes a walk past thousands of rules cheap)."""
    token = QUIET.set(quiet)
    try:
        return _trace(rulesets, query)
    finally:
        QUIET.reset(token)


def _trace(rulesets: Sequence[Ruleset], query: TraceQuery) -> TraceResult:
    outcomes: Dict[tuple, Outcome] = {}
    assumptions: List[str] = _family_notes(rulesets, query)
    choices: List[int] = []
    walks = 0
    hooks: List[str] = []  # the hooks the walks really went through, in order
    while True:
        walks += 1
        ctx, verdict = walk(rulesets, query, choices)
        pkt = ctx.packet
        for a in ctx.assumptions:
            if a not in assumptions:
                assumptions.append(a)
        sees, extra_steps, notes = "delivered", [], []
        if verdict == "REJECT" and not query.kernel_generated:
            sees, extra_steps, notes = reject_answer(rulesets, query, pkt)
        elif verdict not in ("DROP", "REJECT") and not (query.kernel_generated or query.reply or query.replay_nat
                                                         or query.ctstate_given and query.ctstate != "NEW"):
            sees, extra_steps, notes = reply(rulesets, query, pkt)
            if sees == "delivered" and query.proto == "tcp":
                sees, later_steps, later_notes = later_packets(rulesets, query, pkt)
                extra_steps, notes = extra_steps + later_steps, notes + later_notes
        for a in notes:
            if a not in assumptions:
                assumptions.append(a)
        if verdict in ("DROP", "REJECT"):
            kind, dest = verdict, None
            sees = "timeout" if verdict == "DROP" else sees
            if pkt.no_route:  # no usable route: the kernel answers with an ICMP error
                sees = "unreachable"
        else:
            kind = pkt.verdict_kind or "ACCEPT"
            dest = None if pkt.destination_unknown else (pkt.delivered_to or endpoint(pkt.dst, pkt.dport))
        if ctx.probability > 0:
            key = (kind, dest, endpoint(pkt.src, pkt.sport), sees)
            if key in outcomes:
                outcomes[key].probability += ctx.probability
            else:
                outcomes[key] = Outcome(ctx.probability, kind, dest, endpoint(pkt.src, pkt.sport), pkt.mark,
                                        list(pkt.nat), ctx.steps + extra_steps, sees, pkt.ctstate == "UNTRACKED")
        for s in ctx.steps:
            if s.hook not in hooks:
                hooks.append(s.hook)
        # next branch combination, depth first
        taken = choices[:len(ctx.alternatives)]
        while taken and taken[-1] + 1 >= ctx.alternatives[len(taken) - 1]:
            taken.pop()
        if not taken:
            break
        taken[-1] += 1
        choices = taken
        if walks >= MAX_WALKS:
            assumptions.append(f"more than {MAX_WALKS} branch combinations: only the first {MAX_WALKS} are listed")
            break
    result = sorted(outcomes.values(), key=lambda o: -o.probability)
    return TraceResult(query, result, assumptions,
                       hooks or (["PREROUTING", "INPUT"] if query.inbound else ["OUTPUT", "POSTROUTING"]))
