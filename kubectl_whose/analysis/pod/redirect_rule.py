"""The rule that sent an app's SYN to the proxy, named by tracing the packet through the pod's rules.

Uses the netfilter trace evaluator (`analysis.netfilter.trace`), imported when needed so the join keeps
working in a build without it. The trace is asked the question the kernel answered: a new TCP
connection from the app's endpoint (and uid, when the socket table gave it) to the original
destination, locally generated; the rule is the matched step that rewrote the destination.
"""
from __future__ import annotations

import re
from typing import Any, List, Optional, Sequence, Tuple

from kubectl_whose.analysis.pod.sockets import format_endpoint

Endpoint = Tuple[str, int]


def explain_redirect(rules: Any, client: Endpoint, origin: Endpoint, proxy: Endpoint, uid: Optional[int],
                     local_addresses: Sequence[str] = ()) -> Tuple[Optional[str], Optional[str]]:
    """(the rule that sent the app's SYN to the proxy, a note) from the netfilter trace evaluator.

    `rules`: one parsed ruleset or a list of them (iptables legacy/nft, nftables). The evaluator is
    optional at import time so the join works in builds without it.
    """
    try:
        from kubectl_whose.analysis.netfilter.trace.packet import TraceQuery
        from kubectl_whose.analysis.netfilter.trace import trace
    except ImportError:
        return None, "rules given, but this build has no netfilter trace evaluator"
    rulesets = list(rules) if isinstance(rules, (list, tuple)) else [rules]
    query = TraceQuery(dst=origin[0], dport=origin[1], proto="tcp", src=client[0], sport=client[1], uid=uid,
                       pod_ips=tuple(local_addresses) or (client[0],))
    try:
        result = trace(rulesets, query)
    except Exception as e:  # noqa: BLE001 - a rules-model gap must not cost the user the capture summary
        return None, f"the rules could not be traced ({type(e).__name__}: {e})"
    want = format_endpoint(*proxy)
    notes: List[str] = []
    for outcome in result.outcomes:
        dest = _port_of(outcome.destination)
        if dest == proxy[1] and outcome.verdict in ("REDIRECT", "DNAT", "TPROXY"):
            rule = next((st for st in reversed(outcome.steps) if st.matched and st.rule.split()[-1:] != ["ACCEPT"]
                         and outcome.verdict.lower() in (st.rule + " " + st.note).lower()), None)
            if rule is None:
                break
            if outcome.probability < 1:
                notes.append(f"one of {len(result.outcomes)} outcomes, p={outcome.probability:.3g}")
            # the evaluator's hints name `trace` flags ("(pass --iface)"); here only the assumption matters
            notes += [re.sub(r" \(pass --[a-z-]+\)", "", a) for a in result.assumptions]
            return f"{rule.table}/{rule.chain}: {rule.rule}", "; ".join(notes) or None
    ends = ", ".join(f"{o.verdict} {o.destination or ''}".strip() for o in result.outcomes) or "no outcome"
    return None, f"the rules do not send {format_endpoint(*client)} → {format_endpoint(*origin)} to {want} " \
                 f"(the trace ends: {ends}); were they collected from this pod at capture time?"


def _port_of(endpoint: Optional[str]) -> Optional[int]:
    if not endpoint or ":" not in endpoint:
        return None
    port = endpoint.rsplit(":", 1)[1]
    return int(port) if port.isdigit() else None
