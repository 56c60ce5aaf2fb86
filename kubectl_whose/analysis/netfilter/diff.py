"""Compare two snapshots of a pod's rules chain by chain, the way one compares `iptables-save`
before and after a NetworkPolicy by hand, without the noise: counters, the order chains are
declared in, and spelling differences (restore input vs save output) are ignored. Within a chain
the rule order matters to the kernel, so a pure reordering is reported as such."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from kubectl_whose.analysis.netfilter.nft_json import NftRuleset

ChainKey = Tuple[str, str, str]  # (ruleset label, table, chain)


@dataclass
class ChainDiff:
    ruleset: str
    table: str
    chain: str
    status: str  # added | removed | changed | reordered
    added: List[str] = field(default_factory=list)
    removed: List[str] = field(default_factory=list)
    policy: Optional[Tuple[Optional[str], Optional[str]]] = None

    def to_dict(self) -> dict:
        d = {"ruleset": self.ruleset, "table": self.table, "chain": self.chain, "status": self.status,
             "added": self.added, "removed": self.removed}
        if self.policy:
            d["policy"] = {"before": self.policy[0], "after": self.policy[1]}
        return d


@dataclass
class RulesDiff:
    chains: List[ChainDiff]

    @property
    def identical(self) -> bool:
        return not self.chains

    def to_dict(self) -> dict:
        return {"identical": self.identical, "chains": [c.to_dict() for c in self.chains]}


def _label(rs) -> str:
    if isinstance(rs, NftRuleset):
        return "nftables"
    return f"{rs.family} {rs.backend or 'iptables'}"


def _index(rulesets: Sequence) -> Dict[ChainKey, Tuple[Optional[str], List[str]]]:
    out: Dict[ChainKey, Tuple[Optional[str], List[str]]] = {}
    for rs in rulesets:
        label = _label(rs)
        if isinstance(rs, NftRuleset):
            for t in rs.tables:
                for c in t.chains.values():
                    out[(label, f"{t.family} {t.name}", c.name)] = (c.policy, [r.key() for r in c.rules])
        else:
            for t in rs.tables.values():
                for c in t.chains.values():
                    out[(label, t.name, c.name)] = (c.policy, [r.key() for r in c.rules])
    return out


def diff_rules(before: Sequence, after: Sequence) -> RulesDiff:
    a, b = _index(before), _index(after)
    result: List[ChainDiff] = []
    for key in sorted(set(a) | set(b)):
        label, table, chain = key
        if key not in a:
            if b[key][1] or b[key][0] not in (None, "ACCEPT", "accept"):
                result.append(ChainDiff(label, table, chain, "added", added=list(b[key][1])))
            continue
        if key not in b:
            if a[key][1] or a[key][0] not in (None, "ACCEPT", "accept"):
                result.append(ChainDiff(label, table, chain, "removed", removed=list(a[key][1])))
            continue
        (pa, ra), (pb, rb) = a[key], b[key]
        ca, cb = Counter(ra), Counter(rb)
        added = list((cb - ca).elements())
        removed = list((ca - cb).elements())
        policy = (pa, pb) if pa != pb else None
        if added or removed or policy:
            result.append(ChainDiff(label, table, chain, "changed", added, removed, policy))
        elif ra != rb:
            result.append(ChainDiff(label, table, chain, "reordered", added=rb, removed=ra))
    return RulesDiff(result)
