"""Probes: the packets the summary traces, and what a trace of one says, reduced to what the words compare.

The baseline packet per direction stays clear of every value the rules compare with (a TEST-NET destination, a
port and a uid no rule names), so a rule's values are its deviations; `query` turns a point into the
`trace.TraceQuery` that realises it, or None when no real packet could (a remote destination "via lo").
"""
from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from kubectl_whose.analysis.netfilter.trace import TraceResult
from kubectl_whose.analysis.netfilter.trace.packet import TraceQuery, in_network
from kubectl_whose.analysis.netfilter.trace.routing import Routing
from kubectl_whose.analysis.netfilter.words.points import LOCAL, REMOTE, Extraction, Point

# TEST-NET-3/-2/-1 (RFC 5737) first: addresses no cluster uses; then private ones for a pod's own address
REMOTE_CANDIDATES = ("203.0.113.10", "198.51.100.10", "192.0.2.10", "203.0.113.77", "100.64.77.10")
PEER_CANDIDATES = ("198.51.100.20", "192.0.2.20", "203.0.113.20", "100.64.77.20")
FORWARD_CANDIDATES = ("192.0.2.30", "203.0.113.30", "198.51.100.30", "100.64.77.30")
LOCAL_CANDIDATES = ("192.168.77.2", "10.99.77.2", "172.31.77.2", "100.64.99.2")
V6 = {"remote": ("2001:db8::10", "2001:db8:1::10"), "peer": ("2001:db8::20", "2001:db8:1::20"),
      "forward": ("2001:db8::30", "2001:db8:1::30"), "local": ("fd00:77::2", "fd00:78::2")}
PORT_CANDIDATES = (8080, 80, 443, 5000, 9000, 12345, 40123)
UID_CANDIDATES = (1000, 1001, 2000, 4242, 65000)


@dataclass(frozen=True)
class Baseline:
    family: str
    local: str  # this namespace's own address
    local_known: bool
    remote: str  # where an outbound probe goes
    peer: str  # where an inbound probe comes from
    forward_to: str  # where a forwarded probe goes
    port: int
    uid: int
    routes: Tuple[Tuple[str, str], ...]  # (network, device): the namespace's routes, then the rules' hints
    hints: Tuple[Tuple[str, str], ...] = ()  # the routes taken from the rules alone: assumptions, said as such


def _clear(candidates, networks) -> str:
    for c in candidates:
        if not any(in_network(c, n) for n in networks if not n.endswith("/0")):
            return c
    return candidates[0]


def choose_baseline(ex: Extraction, local_ips, routes=()) -> Baseline:
    family = "ipv4" if "ipv4" in ex.families or not ex.families else "ipv6"
    v6 = family == "ipv6"
    nets = {n for n in ex.networks if (":" in n) == v6}
    known = [ip for ip in local_ips if (":" in ip) == v6]
    port = next((p for p in PORT_CANDIDATES if not any(lo <= p <= hi for lo, hi in ex.ports)), 40123)
    uid = next((u for u in UID_CANDIDATES if u not in ex.ids), 65000)
    pick = (lambda kind: _clear(V6[kind], nets)) if v6 else None
    known_routes = tuple(r for r in routes if (":" in r[0]) == v6)
    specific = [r for r in known_routes if not r[0].endswith("/0")]
    hints = tuple(h for h in ex.route_hints if (":" in h[0]) == v6 and not any(
        in_network(h[0].split("/")[0], n) for n, _ in specific))
    return Baseline(family, known[0] if known else (pick("local") if v6 else _clear(LOCAL_CANDIDATES, nets)),
                    bool(known), pick("remote") if v6 else _clear(REMOTE_CANDIDATES, nets),
                    pick("peer") if v6 else _clear(PEER_CANDIDATES, nets),
                    pick("forward") if v6 else _clear(FORWARD_CANDIDATES, nets), port, uid,
                    hints + known_routes, hints)


def _host_route(ip: str) -> str:
    return f"{ip}/{128 if ':' in ip else 32}"


def query(direction: str, proto: str, point: Point, base: Baseline, local_ips) -> Optional[TraceQuery]:
    """The packet a point describes, or None when none could exist."""
    d: Dict[str, object] = {x.dim: x.value for x in point}
    inbound = direction == "inbound"
    local = tuple(local_ips) or (base.local,)
    dst = d.get("dst")
    if dst == LOCAL:
        dst = base.local
    elif dst == REMOTE:
        dst = base.forward_to if inbound else base.remote
    elif dst is None:
        dst = base.local if inbound else base.remote
    if (":" in str(dst)) != (base.family == "ipv6"):
        return None
    is_local = dst in local or _loopback(dst)
    routes = base.routes
    iface = None
    oif, iif = d.get("oif"), d.get("iif")
    if inbound:
        if "uid" in d or "gid" in d or "mark" in d or iif == "lo":
            # an arriving packet has no owner and no mark (the kernel clears skb->mark between namespaces);
            # "arriving on lo" is the outbound probe to a local address
            return None
        if oif is not None:
            if is_local or oif == "lo":
                return None
            routes = routes + ((_host_route(dst), oif),)
        if is_local and _loopback(dst) or _loopback(d.get("src")):
            return None  # the kernel drops an arriving packet to or from loopback (a martian)
        iface = iif or _device_of(d.get("src"), routes)
        src = d.get("src") or (_host_behind(iif, routes) if iif else None) or base.peer
        if iif and _device_of(src, routes) not in (None, iif):
            return None  # a source routed elsewhere arriving on this device is a spoof: its answer goes elsewhere
        specific = tuple(r for r in routes if not r[0].endswith("/0"))
        if not is_local and _device_of(src, specific) is not None and \
                _device_of(src, specific) == (oif or _device_of(dst, specific)):
            return None  # routed back out the device it came by, to a neighbour of the sender: not probed
    else:
        if iif is not None or d.get("ctstate") == "INVALID":
            return None
        if oif == "lo" and not is_local:
            if "dst" in d:
                return None
            dst, is_local = base.local, True
        if oif not in (None, "lo"):
            if is_local:
                return None
            iface = oif
            routes = routes + ((_host_route(dst), oif),)  # where routing must send it for it to leave there
        src = d.get("src")
        if src is not None and not (_loopback(src) or src in local):
            return None  # a local socket sends from a local address
        if src is not None and _loopback(src) and not is_local:
            return None  # ... and from loopback only to itself
    return TraceQuery(dst=dst, dport=int(d.get("dport", base.port)), proto=proto, src=src,
                      sport=d.get("sport"), uid=None if inbound else int(d.get("uid", base.uid)),
                      gid=None if inbound else int(d.get("gid", base.uid)), inbound=inbound, iface=iface,
                      pod_ips=local, ctstate=str(d.get("ctstate", "NEW")), mark=int(d.get("mark", 0)),
                      ctstate_given="ctstate" in d, routing=probe_routing(local, _with_default(routes, ":" in dst)),
                      in_sets=_in_sets(point))


def _with_default(routes, v6: bool) -> Tuple[Tuple[str, str], ...]:
    """The routes, and the default route through eth0 unless one is given (a pod's, or the node's uplink)."""
    return tuple(routes) if any(n.endswith("/0") for n, _ in routes) else tuple(routes) + (
        ("::/0" if v6 else "0.0.0.0/0", "eth0"),)


@functools.lru_cache(maxsize=256)
def probe_routing(local: Tuple[str, ...], routes: Tuple[Tuple[str, str], ...]) -> Routing:
    """The routing a probe is traced with: this namespace's addresses and (network, device) routes, as
    `trace --local-ip IP --route 'NET dev DEV'` builds it (`route_words` gives those words back)."""
    words = tuple(f"{'default' if n == '0.0.0.0/0' else n} dev {dev}" for n, dev in routes)
    routing = Routing.from_flags(local, words)
    routing.route_words = words  # what `trace_command` prints and the lab sets up
    return routing


def device_routes(routing) -> Tuple[Tuple[str, str], ...]:
    """A namespace's unicast routes through a device (`trace.routing.Routing`, from `ip -j route`), as the
    (network, device) pairs `summarize` takes; None: none. Policy rules and tables other than main are left out."""
    if routing is None:
        return ()
    out = []
    for r in routing.routes:
        if r.dev and r.type == "unicast" and str(r.table) in ("main", "254"):
            net = ("::/0" if r.family == "inet6" else "0.0.0.0/0") if r.dst == "default" else r.dst
            if "/" not in net:
                net += "/128" if ":" in net else "/32"
            out.append((net, r.dev))
    return tuple(out)


def routes_of(q: TraceQuery) -> Tuple[Tuple[str, str], ...]:
    """The (network, device) routes a probe was traced with."""
    out = []
    for words in getattr(q.routing, "route_words", ()):
        dst, _, dev = words.split()
        out.append(("0.0.0.0/0" if dst == "default" else dst, dev))
    return tuple(out)


def _host_behind(device, routes) -> Optional[str]:
    """A source for a packet arriving on `device`: the first host of a network routed there (a packet from
    elsewhere would be a spoof, its reply routed another way)."""
    for network, dev in routes:
        if dev == device and not network.endswith("/0"):
            net = ipaddress.ip_network(network, strict=False)
            return str(net.network_address + (1 if net.num_addresses > 2 else 0))
    return None


def _in_sets(point: Point) -> Tuple[str, ...]:
    """`NAME:src` / `NAME:dst`: which of the packet's addresses the probe takes to be in the ipset."""
    out = []
    for d in point:
        if d.dim == "set":
            side = (d.text.split(" ") + ["dst"])[1].split(",")[0]
            out.append(f"{d.value}:{side}")
    return tuple(out)


def _loopback(ip) -> bool:
    if ip is None:
        return False
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def _device_of(ip, routes) -> Optional[str]:
    """The device of the longest prefix of `routes` holding `ip` (None: no route given for it)."""
    best, device = -1, None
    for network, dev in routes if ip else ():
        length = ipaddress.ip_network(network, strict=False).prefixlen
        if in_network(ip, network) and length > best:
            best, device = length, dev
    return device


# ---- what a trace says, for the words ---------------------------------------------------------------------------

@dataclass(frozen=True)
class End:
    """One way a probe can end, reduced to what the words say about it."""

    kind: str  # pass | redirect | dnat | tproxy | drop | reject
    to: Optional[str] = None  # the new destination (redirect, dnat), the socket's port (tproxy)
    source: Optional[str] = None  # the new source address (SNAT, MASQUERADE)
    source_by: Optional[str] = None  # SNAT | MASQUERADE
    sees: str = "delivered"
    untracked: bool = False
    mark: Optional[str] = None  # tproxy: the mark that routes it to the local socket
    share: float = 1.0


Effect = Tuple[End, ...]


def effect(result: TraceResult, q: TraceQuery) -> Effect:
    ends = []
    original = q.src or (q.pod_ips[0] if q.pod_ips and not q.inbound else None)
    for o in result.outcomes:
        source = by = None
        for step in o.nat:
            if step.startswith(("SNAT", "MASQUERADE")):
                by = step.split()[0]
        if by and o.source and address_of(o.source) != original:
            source = address_of(o.source)  # a source rewritten to the address it had is not said
        if o.verdict == "DROP":
            ends.append(End("drop", sees=o.sender_sees, untracked=o.untracked, share=round(o.probability, 4)))
            continue
        if o.verdict == "REJECT":
            ends.append(End("reject", sees=o.sender_sees, untracked=o.untracked, share=round(o.probability, 4)))
            continue
        kind, to, mark = "pass", None, None
        if any(s.startswith("REDIRECT") for s in o.nat):
            kind, to = "redirect", o.destination
        elif any(s.startswith("DNAT") for s in o.nat):
            kind, to = "dnat", o.destination
        elif any(s.startswith("TPROXY") for s in o.nat):
            kind, to, mark = "tproxy", (o.destination or "").rsplit(":", 1)[-1], f"{o.mark:#x}"
        ends.append(End(kind, to, source, by, o.sender_sees, o.untracked, mark, round(o.probability, 4)))
    return tuple(sorted(ends, key=lambda e: (-e.share, e.kind, e.to or "")))


def address_of(endpoint: str) -> str:
    """`10.0.0.1:80` -> `10.0.0.1`, `[fd00::1]:80` -> `fd00::1`, `10.0.0.1` -> itself."""
    if endpoint.startswith("["):
        return endpoint[1:].split("]")[0]
    return endpoint.rsplit(":", 1)[0] if endpoint.count(":") == 1 else endpoint
