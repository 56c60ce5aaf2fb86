"""NAT-split TCP streams joined into connections, and the proxy's upstream leg linked to them.

Why streams split: a sidecar's `nat OUTPUT ... -j REDIRECT --to-ports 15001` rewrites the app's
SYN to 127.0.0.1:15001 before `lo`'s tap sees it, while the replies are rewritten back to the
original destination before the tap. So tcpdump shows `app:52446 -> 127.0.0.1:15001` (SYN, the
app's ACKs and data) and `10.0.0.3:80 -> app:52446` (SYN-ACK, the proxy's data) as two
4-tuples, and tshark gives them two tcp.stream numbers.

The proof that they are one connection: the reply's raw ack equals the SYN's raw seq + 1, and it
goes to the same client endpoint (same client address when conntrack also moved the app's source
port, see `_answer_to`). Only the kernel that received that SYN can know its ISN, so an
answer carrying ISN+1 answers *that* SYN. Nothing else (ports, timing, addresses) joins streams:
no proof, no join. A reset instead of a SYN-ACK joins the same way (no listener on the redirect
port: the pod's own kernel refused, yet the RST shows the original destination).

The proxy's upstream leg (its own connection to the original destination, usually on eth0) is
*linked*, not joined: there is no sequence-number proof across a proxy, so the link carries its
evidence (destination, timing, the socket's uid) for the reader to weigh.

Input is the summary of `analysis.streams.summary` (a `CaptureSummary` or its `to_dict()`); the streams are
referred to by index and never modified.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from kubectl_whose.analysis.pod import mesh
from kubectl_whose.analysis.pod.redirect_rule import explain_redirect
from kubectl_whose.analysis.pod.sockets import Owner, Socket, SocketIndex, format_endpoint, owner_of
from kubectl_whose.analysis.pod.stream_rows import (Endpoint, is_loopback, is_tcp, parse_endpoint, row_end,
                                                 row_start, iter_stream_rows)

SEQ_MOD = 1 << 32
# How long after the app's SYN a proxy may open its upstream connection and still be "next in time"
# when the capture does not tell us when the app side ended.
DEFAULT_LINK_WINDOW = 30.0


@dataclass
class UpstreamLeg:
    stream: int
    client: str
    server: str
    delay: float  # seconds from the app's SYN to the proxy's SYN
    evidence: List[str] = field(default_factory=list)
    owner: Optional[Owner] = None
    candidates: int = 1  # upstream SYNs that fitted; >1 means time order made the pick

    def to_dict(self) -> Dict[str, Any]:
        return {"stream": self.stream, "client": self.client, "server": self.server,
                "delay": round(self.delay, 6), "evidence": list(self.evidence), "candidates": self.candidates,
                "owner": _owner_dict(self.owner)}


@dataclass
class Connection:
    """One app connection seen as two streams. `to_dict()` is the `connections` JSON entry:
    {"text", "streams": [syn, reply], "syn_stream", "reply_stream", "client", "nat_client", "proxy",
     "redirect_port", "original_dst", "state": "established"|"refused", "proof", "start", "mesh", "proxy_role",
     "reset_by", "client_owner", "proxy_owner" ({"kind", "name", "mesh", "evidence"}|null), "rule", "rule_note",
     "upstream": null | {"stream", "client", "server", "delay", "evidence": [str], "candidates", "owner"}}
    """

    client: str  # the app's endpoint
    proxy: str  # where the redirect sent the SYN (127.0.0.1:15001)
    original_dst: str  # what the app asked for, as the de-NATed reply shows it
    syn_stream: int
    reply_stream: int
    redirect_port: int
    proof: str
    start: Optional[float] = None  # absolute time of the SYN
    nat_client: Optional[str] = None  # the SYN's source when the NAT also moved the app's port
    state: str = "established"  # established | refused
    mesh: Optional[str] = None
    proxy_role: Optional[str] = None  # outbound | inbound (from the well-known port)
    reset_by: Optional[str] = None
    client_owner: Optional[Owner] = None
    proxy_owner: Optional[Owner] = None
    rule: Optional[str] = None
    rule_note: Optional[str] = None
    upstream: Optional[UpstreamLeg] = None

    @property
    def streams(self) -> List[int]:
        return [self.syn_stream, self.reply_stream]

    @property
    def text(self) -> str:
        named = self.client_owner and self.client_owner.kind in ("container", "process", "proxy")
        who = self.client_owner.name if named else "app"
        proxy = self.proxy_owner.name if self.proxy_owner and self.proxy_owner.kind == "proxy" else "proxy"
        line = f"{who} {self.client} → [{proxy} {self.proxy}] → {self.original_dst}"
        return line + (" (refused)" if self.state == "refused" else "")

    def to_dict(self) -> Dict[str, Any]:
        return {
            "text": self.text, "streams": self.streams, "syn_stream": self.syn_stream,
            "reply_stream": self.reply_stream, "client": self.client, "nat_client": self.nat_client,
            "proxy": self.proxy, "redirect_port": self.redirect_port, "original_dst": self.original_dst,
            "state": self.state,
            "proof": self.proof, "start": self.start, "mesh": self.mesh, "proxy_role": self.proxy_role,
            "reset_by": self.reset_by, "client_owner": _owner_dict(self.client_owner),
            "proxy_owner": _owner_dict(self.proxy_owner), "rule": self.rule, "rule_note": self.rule_note,
            "upstream": self.upstream.to_dict() if self.upstream else None,
        }


def _owner_dict(o: Optional[Owner]) -> Optional[Dict[str, Any]]:
    return None if o is None else {"kind": o.kind, "name": o.name, "mesh": o.mesh, "evidence": o.evidence}


def _reply_ack(s: Dict[str, Any]) -> Tuple[Optional[int], str]:
    """The raw ack of the first answer to a SYN in this stream: SYN-ACK, else RST-ACK."""
    if isinstance(s.get("synack_ack"), int):
        return s["synack_ack"], "SYN-ACK"
    rst = s.get("rst_ack")
    if isinstance(rst, int):
        return rst, "RST"
    return None, ""


def _is_local(ip: str, local_addresses: Iterable[str]) -> bool:
    return is_loopback(ip) or ip in set(local_addresses)


# --- the join -----------------------------------------------------------------------------------------

def join_connections(summary: Any, sockets: Optional[Sequence[Socket]] = None, rules: Any = None,
                     local_addresses: Iterable[str] = (), link_window: float = DEFAULT_LINK_WINDOW,
                     container: Optional[str] = None) -> List[Connection]:
    """One Connection per SYN whose answer came back from another address, proved by ISN+1.

    `sockets` (from `ss`) names owners; `rules` (parsed rulesets) names the redirect rule;
    `local_addresses` are the pod's own. A refused SYN joins its RST through the stream's `rst_ack`.
    """
    index = SocketIndex(list(sockets)) if sockets is not None else None
    local = list(local_addresses)
    # One lazy pass keeps only what can take part in a join: streams opened by a SYN that no one
    # answered inside the same 4-tuple, and streams that begin with an answer (SYN-ACK/RST, no SYN).
    syns: List[Dict[str, Any]] = []
    answers: List[Dict[str, Any]] = []
    rows = summary.join_candidates() if hasattr(summary, "join_candidates") else iter_stream_rows(summary)
    for s in rows:
        if not isinstance(s, dict) or not is_tcp(s):
            continue
        has_syn, has_reply = isinstance(s.get("client_isn"), int), _reply_ack(s)[0] is not None
        if has_syn and not has_reply:
            syns.append(s)
        elif has_reply and not has_syn:
            answers.append(s)
    by_ack: Dict[int, List[Dict[str, Any]]] = {}
    for a in answers:
        by_ack.setdefault(_reply_ack(a)[0], []).append(a)

    pairs = []
    for syn in sorted(syns, key=row_start):
        client, target = parse_endpoint(syn.get("client")), parse_endpoint(syn.get("server"))
        if client is None or target is None:
            continue
        want = (syn["client_isn"] + 1) % SEQ_MOD
        origin, reply, app = _answer_to(client, target, by_ack.get(want, []))
        if reply is not None:  # else none, or ambiguous: the rows stay apart
            pairs.append((syn, client, target, origin, reply, app))
    claims: Dict[int, int] = {}
    for pair in pairs:
        claims[pair[4]["index"]] = claims.get(pair[4]["index"], 0) + 1

    connections: List[Connection] = []
    for syn, client, target, origin, reply, app in pairs:
        if claims[reply["index"]] > 1:
            continue  # two SYNs with one ISN (a copy, or chance): which one it answers is not proved
        ack, what = _reply_ack(reply)
        conn = Connection(
            client=format_endpoint(*app), proxy=format_endpoint(*target), original_dst=format_endpoint(*origin),
            syn_stream=syn["index"], reply_stream=reply["index"], redirect_port=target[1], start=row_start(syn),
            proof=(f"SYN seq {syn['client_isn']} in stream {syn['index']} + 1 = {what} ack {ack} in stream "
                   f"{reply['index']}, both {format_endpoint(*app)}"),
            state="refused" if what == "RST" else "established",
        )
        if app != client:
            conn.nat_client = format_endpoint(*client)
            conn.proof = (f"SYN seq {syn['client_isn']} from {conn.nat_client} in stream {syn['index']} + 1 = {what} "
                          f"ack {ack} to {conn.client} in stream {reply['index']}: the NAT also moved the app's source "
                          f"port (conntrack already held that reply tuple)")
        client = app
        known = mesh.PROXY_PORTS.get(target[1])
        if known and _is_local(target[0], local):
            conn.mesh, conn.proxy_role = known
        if index is not None:
            _name_owners(conn, client, target, origin, index, container)
        if conn.state == "refused":
            conn.reset_by = _who_reset(conn, target, local, index)
        if rules is not None:
            app_uid = _socket_uid(index, client, origin)
            conn.rule, conn.rule_note = explain_redirect(rules, client, origin, target, app_uid, local)
        connections.append(conn)

    if connections:
        # a second lazy pass for the proxies' own connections, kept only towards an original destination
        wanted = {c.original_dst for c in connections}
        upstream = [s for s in iter_stream_rows(summary) if isinstance(s, dict) and is_tcp(s)
                    and isinstance(s.get("client_isn"), int) and _normal_endpoint(s.get("server")) in wanted]
        # the joined rows ride along: the app side's end time bounds its upstream leg
        _link_upstream(connections, upstream + syns + answers, index, local, link_window, container)
    return connections


def _normal_endpoint(value: Any) -> Optional[str]:
    ep = parse_endpoint(value)
    return None if ep is None else format_endpoint(*ep)


def connections_json(summary: Any, netinfo: Any = None, rules: Any = None,
                     container: Optional[str] = None) -> List[Dict[str, Any]]:
    """The `connections` list for a summary's JSON, in one call: `netinfo` (`analysis.pod.netinfo.NetInfo`)
    names owners and the pod's addresses, `rules` (parsed rulesets) names the redirect rule. Either may
    be None."""
    joins = join_connections(summary, sockets=netinfo.sockets if netinfo is not None else None, rules=rules,
                             local_addresses=netinfo.local_addresses() if netinfo is not None else (),
                             container=container)
    return [c.to_dict() for c in joins]


def _answer_to(client: Endpoint, target: Endpoint, answers: List[Dict[str, Any]]):
    """(original destination, answer stream, app endpoint) for the one answer carrying this SYN's ISN + 1.

    Usually the answer goes to the very endpoint that sent the SYN. When conntrack already holds the reply
    tuple the redirect would create (the same app port used before towards another destination, still in
    conntrack's TIME_WAIT), the kernel also rewrites the source port: the SYN shows the new port, the
    answer goes back to the app's real one. Then the client IP must match and the port may differ.
    """
    exact, moved = [], []
    for a in answers:
        ends = [parse_endpoint(a.get("client")), parse_endpoint(a.get("server"))]
        if None in ends or ends[0] == ends[1] or target in ends:
            continue
        if client in ends:
            exact.append((ends[1] if ends[0] == client else ends[0], a, client))
            continue
        same_ip = [e for e in ends if e[0] == client[0]]
        if len(same_ip) == 1:
            app = same_ip[0]
            moved.append((ends[1] if ends[0] == app else ends[0], a, app))
    found = exact or moved
    return found[0] if len(found) == 1 else (None, None, None)


def _name_owners(conn: Connection, client: Endpoint, target: Endpoint, origin: Endpoint,
                 sockets: SocketIndex, container: Optional[str]) -> None:
    # The app's socket knows nothing of the NAT: its peer is the original destination.
    app = sockets.find(client[0], client[1], peer=origin)
    if app is not None:
        conn.client_owner = app.owner or owner_of(app, container)
    proxy = sockets.find(target[0], target[1])
    if proxy is not None:
        conn.proxy_owner = proxy.owner or owner_of(proxy, container)
        if conn.proxy_owner.kind == "proxy" and conn.mesh is None:
            conn.mesh = conn.proxy_owner.mesh


def _who_reset(conn: Connection, target: Endpoint, local: List[str], sockets: Optional[SocketIndex]) -> str:
    where = format_endpoint(*target)
    if not _is_local(target[0], local):
        return (f"whoever answers for {where}: the reset came back through the NAT, which rewrote its source to "
                f"{conn.original_dst}")
    told = f"the pod's own kernel: the SYN was redirected to {where} and no socket accepted it there"
    if sockets is not None and sockets.find(target[0], target[1]) is None:
        told += f" (no listener on port {target[1]} in the socket table)"
    return told + f"; the RST only looks like it came from {conn.original_dst} because conntrack reversed the NAT"


def _link_upstream(connections: List[Connection], streams: List[Dict[str, Any]],
                   sockets: Optional[SocketIndex], local: List[str], window: float,
                   container: Optional[str]) -> None:
    """Greedy in time order: each app connection takes the earliest unclaimed upstream SYN to its original
    destination, from this pod (and from the proxy's uid when sockets say so), while it is open.

    `candidates` counts the upstream SYNs that fit before the *next* app connection to the same
    destination began: 1 means the timing leaves no choice; more means time order decided.
    """
    joined = {i for c in connections for i in c.streams}
    by_dst: Dict[Endpoint, List[Tuple[float, int, Dict[str, Any]]]] = {}
    for s in streams:
        if isinstance(s.get("client_isn"), int) and s.get("index") not in joined:
            dst = parse_endpoint(s.get("server"))
            if dst is not None:
                by_dst.setdefault(dst, []).append((row_start(s), s["index"], s))
    for rows in by_dst.values():
        rows.sort(key=lambda r: (r[0], r[1]))
    times = {dst: [r[0] for r in rows] for dst, rows in by_dst.items()}
    used: set = set()
    by_index = {s.get("index"): s for s in streams}
    live = sorted((c for c in connections if c.state == "established"), key=lambda c: c.start or 0.0)
    next_same: Dict[int, Optional[float]] = {}
    later: Dict[str, float] = {}
    for conn in reversed(live):
        next_same[id(conn)] = later.get(conn.original_dst)
        later[conn.original_dst] = conn.start or 0.0
    for conn in live:
        app_ip = parse_endpoint(conn.client)[0]
        origin = parse_endpoint(conn.original_dst)
        start = conn.start or 0.0
        app_end = _app_side_end(by_index.get(conn.syn_stream), by_index.get(conn.reply_stream))
        horizon = app_end or start + window
        proxy_uid = _proxy_uid(conn, sockets)
        fits = []  # every upstream SYN that fits, claimed by an earlier connection or not
        rows = by_dst.get(origin, [])
        for t, idx, s in rows[bisect.bisect_left(times.get(origin, []), start):]:
            if t > horizon:
                break
            up_client = parse_endpoint(s.get("client"))
            if up_client is None or up_client == parse_endpoint(conn.client):
                continue
            if up_client[0] != app_ip and up_client[0] not in local and not is_loopback(up_client[0]):
                continue  # not from this pod
            owner, uid = None, None
            if sockets is not None:
                sock = sockets.find(up_client[0], up_client[1], peer=origin)
                if sock is not None and sock.local_ip is not None:
                    owner, uid = sock.owner or owner_of(sock, container), sock.uid
                    if proxy_uid is not None and uid is not None and uid != proxy_uid:
                        continue  # another process in the pod calling the same destination
            fits.append((t, s, owner, uid))
        free = [f for f in fits if f[1]["index"] not in used]
        if not free:
            continue
        t, s, owner, uid = free[0]  # rows are in time order
        used.add(s["index"])
        delay = t - start
        # How forced the pick was must not depend on earlier picks: count every fitting SYN, claimed or not.
        nxt = next_same[id(conn)]
        before_next = [f for f in fits if nxt is None or f[0] < nxt]
        evidence = [f"destination {conn.original_dst} = the app's original destination",
                    f"SYN {delay * 1000:.3f} ms after the app's SYN, " + (
                        "while the app's connection was open" if app_end else
                        f"within {window:g} s (the capture did not see the app's connection end)")]
        if uid is not None:
            evidence.append(f"socket uid {uid}" + (" = the proxy's uid" if uid == proxy_uid else ""))
        if len(before_next) == 1 and before_next[0][1] is s:
            evidence.append("the only candidate before the next app connection to that destination"
                            if nxt is not None else "the only candidate")
            candidates = 1
        elif not before_next:
            candidates = max(len(fits), 2)  # this SYN could as well serve the later connection
            evidence.append("its SYN came after the next app connection to that destination began "
                            "(time order decides)")
        else:
            candidates = max(len(before_next), 2)
            evidence.append(f"earliest unclaimed of {len(before_next)} candidates (time order decides)")
        conn.upstream = UpstreamLeg(stream=s["index"], client=format_endpoint(*parse_endpoint(s["client"])),
                                    server=conn.original_dst, delay=delay, evidence=evidence, owner=owner,
                                    candidates=candidates)


def _app_side_end(*rows: Optional[Dict[str, Any]]) -> Optional[float]:
    """When the app's connection ended, if the capture saw it end (a FIN or RST in either stream); else None:
    a capture that lost packets (tcpdump's "dropped by kernel") can make it look shorter than it was."""
    rows_seen = [r for r in rows if r is not None]
    if not any((r.get("flags") or {}).get("FIN") or (r.get("flags") or {}).get("RST") for r in rows_seen):
        return None
    return max((e for e in map(row_end, rows_seen) if e is not None), default=None)


def _socket_uid(sockets: Optional[SocketIndex], local: Endpoint, peer: Endpoint) -> Optional[int]:
    if sockets is None:
        return None
    sock = sockets.find(local[0], local[1], peer=peer)
    return sock.uid if sock is not None and sock.local_ip is not None else None


def _proxy_uid(conn: Connection, sockets: Optional[SocketIndex]) -> Optional[int]:
    if sockets is None:
        return None
    target = parse_endpoint(conn.proxy)
    sock = sockets.find(target[0], target[1])
    if sock is not None and sock.uid is not None:
        return sock.uid
    return None
