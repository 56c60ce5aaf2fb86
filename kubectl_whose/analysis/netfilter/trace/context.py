"""What one walk of a packet through the hooks carries: the packet, the rule-by-rule steps, the
assumptions made, and the branch choices (statistic/numgen) that this walk took.

`trace.py` enumerates every combination of branch choices by re-running the walk with the next
choice sequence (depth first), so the evaluators stay plain sequential code: at a probabilistic
rule they call `choose()` and get the branch this walk follows.
"""
from __future__ import annotations

from contextvars import ContextVar
from typing import List, Optional, Sequence

from kubectl_whose.analysis.netfilter.model import Rule, rule_text
from kubectl_whose.analysis.netfilter.nft_text import rule_text as nft_rule_text
from kubectl_whose.analysis.netfilter.trace.packet import Packet, TraceQuery, is_loopback


class Step:
    """One rule (or policy, or note) the packet met. `rule` is the rule's text, rendered only when read: a walk
    past 5,000 kube-proxy rules records 5,000 steps, and rendering each one was most of a trace's time."""

    __slots__ = ("hook", "table", "chain", "_rule", "matched", "note")

    def __init__(self, hook: str, table: str, chain: str, rule, matched: bool, note: str = ""):
        self.hook, self.table, self.chain, self._rule, self.matched, self.note = hook, table, chain, rule, matched, \
            note

    @property
    def rule(self) -> str:
        if not isinstance(self._rule, str):
            self._rule = rendered(self._rule)
        return self._rule

    def relabel(self, hook: str) -> "Step":
        """The same step under another hook label (the reply, later packets, a REJECT's answer); its text is
        this step's, rendered once for both."""
        return Step(hook, self.table, self.chain, self._rule if isinstance(self._rule, str) else self, self.matched,
                    self.note)

    def to_dict(self) -> dict:
        return {"hook": self.hook, "table": self.table, "chain": self.chain, "rule": self.rule,
                "matched": self.matched, "note": self.note}

    def __repr__(self) -> str:
        return f"Step({self.hook!r}, {self.table!r}, {self.chain!r}, {self.rule!r}, {self.matched!r}, {self.note!r})"


def rendered(rule) -> str:
    if isinstance(rule, Step):
        return rule.rule
    if isinstance(rule, Rule):
        return rule_text(rule, counters=False)
    return nft_rule_text(rule, counters=False)


# Set by `trace(..., quiet=True)`: the caller wants the ends, not the path (the summary's probes). Rules that do not
# match are then not recorded, and long chains are entered at the next rule that can match the destination.
QUIET: ContextVar[bool] = ContextVar("quiet", default=False)


class WalkContext:
    MAX_STEPS = 20000  # a jump loop (possible in user chains) must end

    def __init__(self, query: TraceQuery, packet: Packet, choices: List[int], local_ips: Sequence[str]):
        self.query = query
        self.packet = packet
        self.choices = choices
        self.alternatives: List[int] = []
        self.probability = 1.0
        self.steps: List[Step] = []
        self.assumptions: List[str] = []
        self.local_ips = list(local_ips)
        self.hook = ""
        self.branch_notes: List[str] = []
        self.quiet = QUIET.get()

    def choose(self, probabilities: Sequence[float], label: str, labels: Sequence[str]) -> int:
        pos = len(self.alternatives)
        if pos >= len(self.choices):
            self.choices.append(0)
        index = self.choices[pos]
        self.alternatives.append(len(probabilities))
        self.probability *= probabilities[index]
        self.branch_notes.append(f"{label}: {labels[index]} (p={probabilities[index]:.4g})")
        return index

    def assume(self, text: str) -> None:
        if text not in self.assumptions:
            self.assumptions.append(text)

    def step(self, table: str, chain: str, rule: str, matched: bool, note: str = "") -> None:
        if self.quiet and not matched:
            return
        if len(self.steps) > self.MAX_STEPS:
            raise RecursionError("more than 20000 rule evaluations: the chains jump in a loop")
        self.steps.append(Step(self.hook, table, chain, rule, matched, note))

    # -- facts about the packet that need an assumption when the user did not give them --
    def uid(self) -> Optional[int]:
        if self.packet.uid is None and self.query.reply and not self.query.inbound:
            self.assume("the answering socket's uid is unknown; assumed 0 (root)")
            return 0
        if self.packet.uid is None and not self.query.inbound:
            self.assume("sender uid unknown (pass --uid); assumed 0 (root)")
            return 0
        return self.packet.uid

    def gid(self) -> Optional[int]:
        if self.packet.gid is None and self.query.reply and not self.query.inbound:
            self.assume("the answering socket's gid is unknown; assumed 0 (root)")
            return 0
        if self.packet.gid is None and not self.query.inbound:
            self.assume("sender gid unknown (pass --gid); assumed 0 (root)")
            return 0
        return self.packet.gid

    def sport(self) -> int:
        if self.packet.sport is None:
            self.assume("source port unknown (pass --from IP:PORT); assumed ephemeral port 40000")
            return 40000
        return self.packet.sport

    def src(self) -> Optional[str]:
        if self.packet.src is None:
            self.assume("source address unknown (pass --from or --pod-ip); rules that match a source address "
                        "are taken as not matching")
        return self.packet.src

    def is_local(self, ip: Optional[str]) -> bool:
        if ip is None:
            return False
        routing = self.query.routing
        if routing is not None:
            return is_loopback(ip) or ip in self.local_ips or routing.is_local(ip)
        if not self.query.pod_ips:
            self.assume("pod addresses unknown (pass --pod-ip); LOCAL means loopback"
                        + (" and the --to address" if self.query.inbound else ""))
        return is_loopback(ip) or ip in self.local_ips

    def local_address(self) -> str:
        """The address REDIRECT uses in PREROUTING: the primary address of the input interface."""
        routing = self.query.routing
        if routing is not None:
            family = "ipv6" if ":" in self.packet.dst else "ipv4"
            primary = routing.primary_address(self.packet.iif, family)
            if primary:
                return primary
        if self.local_ips:
            return self.local_ips[0]
        self.assume("pod address unknown (pass --pod-ip); REDIRECT target shown as the packet's destination")
        return self.packet.dst

    def output_device(self, dst: str) -> str:
        """The device a locally generated packet to `dst` leaves by: the route's, else lo or the assumed eth0."""
        routing = self.query.routing
        if routing is not None:
            decision = routing.lookup(dst, self.packet.src, self.packet.mark, iif="lo")
            if decision.kind == "local":
                return "lo"
            if decision.dev:
                return decision.dev
        return "lo" if self.is_local(dst) else (self.query.iface or "eth0")

    def loopback_masquerade_source(self) -> str:
        """MASQUERADE through lo: IPv4 takes inet_select_addr(lo, universe scope), and lo has only host-scope
        addresses, so the first global address of the host's devices in their order (its own address, never
        127.0.0.1); IPv6's source selection prefers the destination itself when it is local."""
        dst = self.packet.dst
        if ":" in dst:
            return dst if self.is_local(dst) else "::1"
        routing = self.query.routing
        ordered = [ip for _, ip, _ in routing.addresses] if routing is not None else []
        ordered += list(self.local_ips)
        return next((ip for ip in ordered if ":" not in ip and not is_loopback(ip)), "127.0.0.1")

    def source_address(self, oif: Optional[str], family: str) -> Optional[str]:
        """The address MASQUERADE takes: the output device's primary address, when the routing is known."""
        routing = self.query.routing
        return routing.primary_address(oif, family) if routing is not None else None
