"""Inbound connections through a sidecar: the connection another pod opened to this pod's port, linked to the
proxy's own local connection that carries it to the app.

Why two streams: a sidecar's `nat PREROUTING ... -j REDIRECT --to-ports 15006` takes `client -> pod:8080` to
the proxy, which then opens a new connection to the app, `127.0.0.6 -> pod:8080` on lo (Istio binds Envoy's
inbound passthrough address 127.0.0.6 so its own rules let it through; other meshes connect from the pod's
address as the proxy's uid). tcpdump on `-i any` sees both, as two tcp.streams with unrelated sequence
numbers: a proxy terminates TCP, so no sequence number proves the link (unlike the outbound join of
`connections`). The link is made on evidence, which it carries: the same destination port, a source that only
the proxy uses (127.0.0.6, or a socket of the proxy's uid), and timing inside the inbound connection. A link
with only timing to stand on says so.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence

from kubectl_whose.analysis.pod import mesh
from kubectl_whose.analysis.pod.sockets import Socket, SocketIndex, format_endpoint
from kubectl_whose.analysis.pod.stream_rows import is_loopback, is_tcp, iter_stream_rows, parse_endpoint, row_end, \
    row_start

PASSTHROUGH = "127.0.0.6"  # Envoy's inbound passthrough source (istio-iptables exempts it)
DEFAULT_WINDOW = 30.0  # seconds after the inbound SYN a local leg may start when the capture missed the end


@dataclass
class InboundLink:
    """`to_dict()` is an `inbound` JSON entry."""

    client: str  # the remote peer, as the pod saw it
    service: str  # pod ip:port the client connected to (before the redirect)
    inbound_stream: int
    local_stream: int
    local_client: str  # the proxy's end of the local connection (127.0.0.6:43121)
    delay: float
    evidence: List[str] = field(default_factory=list)
    by_timing_only: bool = False
    candidates: int = 1
    mesh: Optional[str] = None

    @property
    def text(self) -> str:
        proxy = "istio-proxy" if self.mesh == "istio" else "proxy"
        return f"{self.client} → {self.service} → [{proxy}] {self.local_client} → app {self.service}"

    def to_dict(self) -> Dict[str, Any]:
        return {"text": self.text, "client": self.client, "service": self.service,
                "streams": [self.inbound_stream, self.local_stream], "inbound_stream": self.inbound_stream,
                "local_stream": self.local_stream, "local_client": self.local_client, "delay": round(self.delay, 6),
                "evidence": list(self.evidence), "by_timing_only": self.by_timing_only,
                "candidates": self.candidates, "mesh": self.mesh}


def join_inbound(summary: Any, local_addresses: Iterable[str], sockets: Optional[Sequence[Socket]] = None,
                 window: float = DEFAULT_WINDOW) -> List[InboundLink]:
    """One link per local leg that carries an inbound connection; `local_addresses` are the pod's own (without
    them nothing is inbound)."""
    local = {ip for ip in local_addresses if not is_loopback(ip)}
    if not local:
        return []
    index = SocketIndex(list(sockets)) if sockets is not None else None
    proxy_uids = set(mesh.PROXY_UIDS)
    inbound: Dict[tuple, List[Dict[str, Any]]] = {}
    legs: List[tuple] = []
    for s in iter_stream_rows(summary):
        if not isinstance(s, dict) or not is_tcp(s) or not isinstance(s.get("client_isn"), int):
            continue
        client, server = parse_endpoint(s.get("client")), parse_endpoint(s.get("server"))
        if client is None or server is None or server[0] not in local:
            continue
        if not is_loopback(client[0]) and client[0] not in local:
            inbound.setdefault(server, []).append(s)  # from another pod or host
            continue
        evidence, uid = _proxy_source(client, server, index, proxy_uids)
        legs.append((row_start(s), s, client, server, evidence, uid))
    for rows in inbound.values():
        rows.sort(key=lambda r: (row_start(r), r.get("index", 0)))
    used: set = set()
    links = []
    for start, leg, client, server, source_evidence, uid in sorted(legs, key=lambda r: (r[0], r[1].get("index"))):
        fits = [c for c in inbound.get(server, []) if row_start(c) <= start <= (row_end(c) if _ended(c)
                                                                                  else row_start(c) + window)]
        free = [c for c in fits if c.get("index") not in used]
        if not free:
            continue
        chosen = free[-1]  # the latest inbound SYN before the proxy opened its leg: proxies connect on accept
        used.add(chosen.get("index"))
        delay = start - row_start(chosen)
        evidence = [f"destination {format_endpoint(*server)} = the inbound connection's"] + source_evidence
        evidence.append(f"opened {delay * 1000:.3f} ms after the inbound SYN, " + (
            "while the inbound connection was open" if _ended(chosen) else
            f"within {window:g} s (the capture did not see the inbound connection end)"))
        if len(fits) > 1:
            evidence.append(f"the latest of {len(fits)} inbound connections open then (time order decides)")
        links.append(InboundLink(
            client=format_endpoint(*parse_endpoint(chosen["client"])), service=format_endpoint(*server),
            inbound_stream=chosen["index"], local_stream=leg["index"], local_client=format_endpoint(*client),
            delay=delay, evidence=evidence, by_timing_only=not source_evidence, candidates=len(fits),
            mesh="istio" if client[0] == PASSTHROUGH or uid == 1337 else (mesh.proxy_by_uid(uid) or (None,))[0]))
    return links


def _ended(row: Dict[str, Any]) -> bool:
    flags = row.get("flags") or {}
    return bool(flags.get("FIN") or flags.get("RST")) and row_end(row) is not None


def _proxy_source(client, server, index: Optional[SocketIndex], proxy_uids: set):
    """What says the local connection is the proxy's: Istio's passthrough address, a proxy uid on its socket."""
    evidence, uid = [], None
    if client[0] == PASSTHROUGH:
        evidence.append(f"source {PASSTHROUGH}, Envoy's inbound passthrough address (only the sidecar binds it)")
    if index is not None:
        sock = index.find(client[0], client[1], peer=server)
        if sock is not None and sock.uid is not None:
            uid = sock.uid
            if uid in proxy_uids:
                evidence.append(f"socket uid {uid} = {mesh.PROXY_UIDS[uid][1]}")
    return evidence, uid
