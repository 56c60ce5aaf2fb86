"""What `kubectl whose rules` shows, as data: the summary (its claims, each with the traced probes that back
it), what was recognised, findings, and the rule sets (filtered by --table/--chain). `to_dict()` is the
`-o json|yaml` form."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence

from kubectl_whose.analysis.netfilter.model import Finding, IptablesRuleset
from kubectl_whose.analysis.netfilter.nft_json import NftRuleset
from kubectl_whose.analysis.netfilter.recognize import Recognition, recognize
from kubectl_whose.analysis.netfilter.words import Summary, summarize
from kubectl_whose.analysis.netfilter.words.probes import device_routes


@dataclass
class RulesReport:
    rulesets: List[object]
    words: Summary
    recognized: List[Recognition]
    findings: List[Finding] = field(default_factory=list)
    table: Optional[str] = None
    chain: Optional[str] = None

    @property
    def summary(self) -> str:
        return self.words.text

    def to_dict(self) -> dict:
        return {
            "summary": self.summary,
            "claims": [c.to_dict() for c in self.words.claims],
            "notes": self.words.notes,
            "recognized": [r.to_dict() for r in self.recognized],
            "findings": [f.to_dict() for f in self.all_findings()],
            "rulesets": [_ruleset_dict(rs, self.table, self.chain) for rs in self.rulesets],
        }

    def all_findings(self) -> List[Finding]:
        out = list(self.findings)
        for rs in self.rulesets:
            out.extend(rs.findings)
        return out


def build_report(rulesets: Sequence, findings: Sequence[Finding] = (), table: Optional[str] = None,
                 chain: Optional[str] = None, local_ips: Sequence[str] = (), routing=None) -> RulesReport:
    """`local_ips`: the namespace's own addresses (read from the pod, or --local-ip), `routing` its routes
    (`trace.routing.Routing`, or None), which the probes use."""
    return RulesReport(list(rulesets), summarize(rulesets, local_ips, device_routes(routing)), recognize(rulesets),
                       list(findings), table, chain)


def _ruleset_dict(rs, table: Optional[str], chain: Optional[str]) -> dict:
    if isinstance(rs, NftRuleset):
        return {"backend": "nftables", "version": rs.version, "source": rs.source, "tables": [
            {"name": f"{t.family} {t.name}", "chains": [
                {"name": c.name, "hook": c.hook, "type": c.type, "priority": c.priority, "policy": c.policy,
                 "rules": [{"text": r.key(), "handle": r.handle} for r in c.rules]}
                for c in t.chains.values() if chain in (None, c.name)],
             "sets": [{"name": s.name, "kind": s.kind, "elements": len(s.elem)} for s in t.sets.values()]}
            for t in rs.tables if table in (None, t.name, f"{t.family} {t.name}")]}
    assert isinstance(rs, IptablesRuleset)
    return {"backend": rs.backend, "family": rs.family, "version": rs.version, "source": rs.source, "tables": [
        {"name": t.name, "chains": [
            {"name": c.name, "policy": c.policy, "counters": {"packets": c.counters[0], "bytes": c.counters[1]},
             "rules": [{"text": r.key(), "target": r.target.name if r.target else None, "goto": bool(
                 r.target and r.target.goto), "counters": ({"packets": r.counters[0], "bytes": r.counters[1]}
                                                           if r.counters else None),
                        "unsupported": r.unsupported} for r in c.rules]}
            for c in t.chains.values() if chain in (None, c.name)]}
        for t in rs.tables.values() if table in (None, t.name)]}
