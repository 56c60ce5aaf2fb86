"""Which kube-proxy rule chose the endpoint of a connection followed from pod to pod (`pod_to_pod`).

A Service's DNAT happens on the client's node (PREROUTING, for a packet forwarded from a pod's veth): the
connection's first SYN, traced through that node's rules as the kernel walks them, reaches every endpoint the
rules can choose, each with its probability; the walk that ends at the endpoint the server pod really saw
names the rule (kube-proxy's KUBE-SEP-... DNAT, or the nftables chain's dnat). Only the node path (`--node`)
reads a node's rules, so only there is the rule known.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from kubectl_whose.analysis.pod.stream_rows import parse_endpoint


def name_service_rules(links: List[Dict[str, Any]], rules_by_node: Dict[str, Sequence]) -> None:
    """Add `service_rule` to every DNATed link whose client node's rules are known (None otherwise)."""
    for link in links:
        link.setdefault("service_rule", None)
        rulesets = rules_by_node.get(link["from"]["node"])
        if not rulesets or link["from"]["server"] == link["to"]["server"]:
            continue
        found = chosen_by(rulesets, link["from"]["client"], link["from"]["server"], link["to"]["server"])
        if found is not None:
            link["service_rule"] = {"node": link["from"]["node"], **found}
            link["proof"].append(f"on {link['from']['node']}, {found['chain']} chose {link['to']['server']} with "
                                 f"probability {found['probability']:.4g} of {found['endpoints']} endpoint(s): "
                                 f"{found['rule']}")


def chosen_by(rulesets: Sequence, client: str, service: str, endpoint: str) -> Optional[Dict[str, Any]]:
    from kubectl_whose.analysis.netfilter.trace import trace
    from kubectl_whose.analysis.netfilter.trace.packet import TraceQuery

    src, dst = parse_endpoint(client), parse_endpoint(service)
    if src is None or dst is None:
        return None
    result = trace(rulesets, TraceQuery(dst=dst[0], dport=dst[1], proto="tcp", src=src[0], sport=src[1],
                                        inbound=True, ctstate_given=True))
    dnat_ends = [o for o in result.outcomes if o.destination and o.destination != service]
    for outcome in dnat_ends:
        if outcome.destination != endpoint:
            continue
        step = next((s for s in reversed(outcome.steps) if s.matched and "DNAT" in s.rule.upper()), None)
        if step is None:
            return None
        return {"chain": step.chain, "table": step.table, "rule": step.rule,
                "probability": round(outcome.probability, 6), "endpoints": len(dnat_ends)}
    return None
