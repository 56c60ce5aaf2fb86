"""Name what wrote the rules (mesh, kube-proxy, CNI).

Recognition keys on chain and table names the writers document (sources in
`research/anchors-netfilter.md`): Istio `ISTIO_*` (istio-iptables, ambient `ISTIO_PRERT`, nft
tables `istio-proxy-*`), Linkerd `PROXY_INIT_*`, kube-proxy `KUBE-SERVICES`/`KUBE-SVC-*` or the nft
table `kube-proxy`, Calico `cali-*`, Cilium `CILIUM_*`, AWS VPC CNI `AWS-SNAT-CHAIN-*`, Antrea
`ANTREA-*`, Docker `DOCKER*`. Names say who wrote the rules, never what they do: that is `words`,
which derives every claim from traced packets.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Set

from kubectl_whose.analysis.netfilter.model import IptablesRuleset
from kubectl_whose.analysis.netfilter.nft_json import NftRuleset


@dataclass
class Recognition:
    name: str
    evidence: List[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"name": self.name, "evidence": self.evidence}


def _chains(rulesets: Sequence) -> Dict[str, Set[str]]:
    out: Dict[str, Set[str]] = {}
    for rs in rulesets:
        if isinstance(rs, IptablesRuleset):
            for t in rs.tables.values():
                out.setdefault(t.name, set()).update(t.chains)
    return out


def recognize(rulesets: Sequence) -> List[Recognition]:
    """The writers of the rules, each once (a writer with several tables or dumps lists them all as evidence)."""
    found: Dict[str, Recognition] = {}
    chains = _chains(rulesets)
    nat, mangle = chains.get("nat", set()), chains.get("mangle", set())
    every = set().union(*chains.values()) if chains else set()
    every |= {r.target.name for rs in rulesets if isinstance(rs, IptablesRuleset) for t in rs.tables.values()
              for c in t.chains.values() for r in c.rules if r.target}

    def add(name: str, evidence: List[str]) -> None:
        if name in found:
            found[name].evidence += [e for e in evidence if e not in found[name].evidence]
        else:
            found[name] = Recognition(name, list(evidence))

    if "ISTIO_PRERT" in nat:
        add("Istio ambient (ztunnel in-pod rules)", ["nat chain ISTIO_PRERT"])
    elif {"ISTIO_OUTPUT", "ISTIO_REDIRECT"} & nat or "ISTIO_INBOUND" in mangle:
        add("Istio sidecar", sorted(c for c in every if c.startswith("ISTIO_")))
    if "ISTIO_POSTRT" in nat:
        add("Istio ambient (istio-cni node rules)", ["nat chain ISTIO_POSTRT"])
    if {"PROXY_INIT_OUTPUT", "PROXY_INIT_REDIRECT"} & nat:
        add("Linkerd proxy-init", sorted(c for c in nat if c.startswith("PROXY_INIT")))
    if "KUBE-SERVICES" in nat:
        svcs = [c for c in nat if c.startswith("KUBE-SVC-")]
        seps = [c for c in nat if c.startswith("KUBE-SEP-")]
        add("kube-proxy (iptables mode)", [f"{len(svcs)} KUBE-SVC chains, {len(seps)} KUBE-SEP chains"])
    for prefix, name in (("cali-", "Calico (iptables dataplane)"), ("CILIUM_", "Cilium (iptables feeder chains)"),
                         ("AWS-SNAT-CHAIN", "AWS VPC CNI"), ("AWS-CONNMARK-CHAIN", "AWS VPC CNI"),
                         ("ANTREA-", "Antrea"), ("DOCKER", "Docker")):
        hits = sorted(c for c in every if c.startswith(prefix))
        if hits:
            add(name, hits[:5] + ([f"... {len(hits) - 5} more"] if len(hits) > 5 else []))
    for rs in rulesets:
        if not isinstance(rs, NftRuleset):
            continue
        for t in rs.tables:
            where = f"table {t.family} {t.name}"
            if t.name == "kube-proxy":
                vm = t.sets.get("service-ips")
                add("kube-proxy (nftables mode)", [where, f"{len(vm.elem) if vm else 0} service-ips entries"])
            elif t.name.startswith("istio-proxy"):
                add("Istio sidecar (native nftables)", [where])
            elif t.name.startswith("istio-ambient"):
                chains_here = set(t.chains)
                add("Istio ambient (istio-cni node rules, nftables)" if chains_here <= {"postrouting"} and
                    chains_here else "Istio ambient (ztunnel in-pod rules, nftables)", [where])
            elif t.name.startswith("istio"):
                add("Istio (nftables)", [where])
            elif t.name.startswith("cali"):
                add("Calico (nftables dataplane)", [where])
    return list(found.values())


