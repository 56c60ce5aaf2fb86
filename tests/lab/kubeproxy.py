"""kube-proxy's iptables mode, for the lab's node namespace: iptables-restore input built like
`pkg/proxy/iptables/proxier.go` writes it (chain names hashed the same way, `statistic` probabilities
1/(n-i) with 10 decimals, the 0x4000 masquerade mark). Source: research/anchors-netfilter.md §3.1, fixture 3a.
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import List, Sequence


@dataclass(frozen=True)
class ServicePort:
    namespace: str
    name: str
    port_name: str
    cluster_ip: str
    port: int
    protocol: str  # "TCP" / "UDP"
    endpoints: Sequence[str]  # "ip:port"

    @property
    def svc_port_name(self) -> str:
        return f"{self.namespace}/{self.name}:{self.port_name}" if self.port_name else f"{self.namespace}/{self.name}"


def _hash(text: str) -> str:
    # servicePortChainName / servicePortEndpointChainName: base32(sha256(...))[:16]
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def svc_chain(sp: ServicePort) -> str:
    return "KUBE-SVC-" + _hash(sp.svc_port_name + sp.protocol.lower())


def sep_chain(sp: ServicePort, endpoint: str) -> str:
    return "KUBE-SEP-" + _hash(sp.svc_port_name + sp.protocol.lower() + endpoint)


def nat_rules(services: Sequence[ServicePort], cluster_cidr: str) -> str:
    chains: List[str] = ["KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-MARK-MASQ", "KUBE-NODEPORTS"]
    rules: List[str] = [
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
        "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
    ]
    per_service: List[str] = []
    for sp in services:
        if not sp.endpoints:
            continue  # no nat rules; the filter table rejects it
        proto = sp.protocol.lower()
        svc = svc_chain(sp)
        chains.append(svc)
        rules.append(f'-A KUBE-SERVICES -m comment --comment "{sp.svc_port_name} cluster IP" -m {proto} -p {proto} '
                     f"-d {sp.cluster_ip} --dport {sp.port} -j {svc}")
        per_service.append(f'-A {svc} -m comment --comment "{sp.svc_port_name} cluster IP" -m {proto} -p {proto} '
                           f"-d {sp.cluster_ip} --dport {sp.port} ! -s {cluster_cidr} -j KUBE-MARK-MASQ")
        n = len(sp.endpoints)
        for i, ep in enumerate(sp.endpoints):
            sep = sep_chain(sp, ep)
            chains.append(sep)
            stat = f"-m statistic --mode random --probability {1.0 / (n - i):.10f} " if i < n - 1 else ""
            per_service.append(f'-A {svc} -m comment --comment "{sp.svc_port_name} -> {ep}" {stat}-j {sep}')
            ep_ip = ep.rsplit(":", 1)[0]
            per_service.append(f"-A {sep} -m comment --comment {sp.svc_port_name} -s {ep_ip} -j KUBE-MARK-MASQ")
            per_service.append(f"-A {sep} -m comment --comment {sp.svc_port_name} -m {proto} -p {proto} "
                               f"-j DNAT --to-destination {ep}")
    rules.append('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last '
                 'rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')
    header = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
              ":POSTROUTING ACCEPT [0:0]"] + [f":{c} - [0:0]" for c in chains]
    return "\n".join(header + rules + per_service + ["COMMIT"] + _filter_rules(services) + [""])


def _filter_rules(services: Sequence[ServicePort]) -> List[str]:
    """The filter table: a ClusterIP port without endpoints is REJECTed (icmp-port-unreachable), so clients fail
    at once instead of timing out."""
    out = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":KUBE-SERVICES - [0:0]",
           '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
           '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
           '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES']
    for sp in services:
        if not sp.endpoints:
            proto = sp.protocol.lower()
            out.append(f'-A KUBE-SERVICES -m comment --comment "{sp.svc_port_name} has no endpoints" -m {proto} '
                       f"-p {proto} -d {sp.cluster_ip} --dport {sp.port} -j REJECT")
    return out + ["COMMIT"]
