"""The rules in words, derived from `trace`: what `kubectl whose rules` says a rule set does.

Every sentence is a claim backed by traced probes (`words.claims`): the baseline packet of each direction and
protocol, and the packets the rules' own values describe (`words.points`: the writer's ports, uids, resolver
addresses, Service addresses, NodePorts, marks...). The words therefore cannot say what `trace` would not, and
`trace` is judged by the kernel; tests/analysis/netfilter/words/test_kernel.py sends each claim's probes as
real packets. Names of chains never decide a claim (they only name the writer, `recognize`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Sequence

from kubectl_whose.analysis.netfilter.model import IptablesRuleset
from kubectl_whose.analysis.netfilter.nft_json import NftRuleset
from kubectl_whose.analysis.netfilter.words.claims import Claim, claims_of
from kubectl_whose.analysis.netfilter.words.iptables_points import extract_iptables
from kubectl_whose.analysis.netfilter.words.nft_points import extract_nft
from kubectl_whose.analysis.netfilter.words.points import Extraction
from kubectl_whose.analysis.netfilter.words.probes import choose_baseline


@dataclass
class Summary:
    claims: List[Claim] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)  # what the probes assumed or left out (not claims)
    probes: int = 0

    @property
    def text(self) -> str:
        return " ".join([c.text for c in self.claims] + self.notes)

    def to_dict(self) -> dict:
        return {"claims": [c.to_dict() for c in self.claims], "notes": self.notes, "probes": self.probes}


def summarize(rulesets: Sequence, local_ips: Sequence[str] = (), routes: Sequence = ()) -> Summary:
    """`local_ips`: the namespace's own addresses; `routes`: its (network, device) routes, when known."""
    total = sum(rs.rule_count() for rs in rulesets)
    if not total:
        return Summary(notes=["No netfilter rules: traffic is neither redirected nor filtered here."])
    ex = Extraction()
    for rs in rulesets:
        if isinstance(rs, IptablesRuleset):
            extract_iptables(rs, ex)
        elif isinstance(rs, NftRuleset):
            extract_nft(rs, ex)
    ex.drop_internal_marks()
    base = choose_baseline(ex, local_ips, routes)
    claims, tracer = claims_of(rulesets, ex, base, local_ips)
    notes: List[str] = []
    if not claims:
        notes.append(f"The {len(tracer.done)} packets traced (the rules' own addresses, ports, uids and marks) "
                     f"all pass unchanged: no redirection, NAT or drop was found.")
    if not base.local_known:
        notes.append(f"The probes took {base.local} as this host's own address (pass --local-ip).")
    if base.hints:
        notes.append("They took " + ", ".join(f"{n} as reached through {d}" for n, d in base.hints)
                     + ", as the rules pair them.")
    v6_rules = sum(rs.rule_count() for rs in rulesets if isinstance(rs, IptablesRuleset) and rs.family == "ipv6") \
        + sum(len(c.rules) for rs in rulesets if isinstance(rs, NftRuleset) for t in rs.tables if t.family == "ip6"
              for c in t.chains.values())
    if base.family == "ipv4" and v6_rules:
        notes.append(f"The IPv6 rules ({v6_rules}) are not summarised: the probes are IPv4 (`kubectl whose trace` "
                     f"follows an IPv6 packet).")
    for where, count in ex.untraced:
        notes.append(f"Not traced: {count} more rule{'s' if count != 1 else ''} of {where} (`kubectl whose trace` "
                     f"follows any packet).")
    if tracer.left_out:
        notes.append(f"{tracer.left_out} more probes were left out (more than {len(tracer.done)}).")
    return Summary(claims, notes, len(tracer.done))
