"""How mesh proxies are recognised: their uids, process names and redirect ports.

Sources: istio-iptables (`-u 1337`, outbound 15001, inbound 15006, `127.0.0.6` passthrough bind),
linkerd2-proxy-init (uid 2102, outbound 4140, inbound 4143), Istio ambient's in-pod ztunnel
redirect (15001/15006/15008). See research/anchors-netfilter.md §1-2.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

# uid -> (mesh, what runs as it). The uid is what the kernel reports for every socket (`ss -e`),
# even when the debug container may not look into the proxy's /proc (other uid, no CAP_SYS_PTRACE).
PROXY_UIDS: Dict[int, Tuple[str, str]] = {
    1337: ("istio", "istio-proxy"),  # the sidecar container; envoy and pilot-agent run as 1337
    2102: ("linkerd", "linkerd-proxy"),  # the sidecar container; the process is linkerd2-proxy
}

PROXY_PROCESSES: Dict[str, str] = {
    "envoy": "istio",
    "pilot-agent": "istio",
    "ztunnel": "istio-ambient",
    "linkerd2-proxy": "linkerd",
}

# port -> (mesh, role): where the mesh's REDIRECT rules send TCP.
PROXY_PORTS: Dict[int, Tuple[str, str]] = {
    15001: ("istio", "outbound"),
    15006: ("istio", "inbound"),
    15008: ("istio", "hbone"),
    4140: ("linkerd", "outbound"),
    4143: ("linkerd", "inbound"),
}


def proxy_by_uid(uid: Optional[int]) -> Optional[Tuple[str, str]]:
    return PROXY_UIDS.get(uid) if uid is not None else None


def proxy_by_process(name: Optional[str]) -> Optional[str]:
    if not name:
        return None
    # The kernel truncates comm to 15 characters ("linkerd2-proxy" fits; keep the prefix check honest).
    for proc, mesh in PROXY_PROCESSES.items():
        if name == proc or (len(name) == 15 and proc.startswith(name)):
            return mesh
    return None
