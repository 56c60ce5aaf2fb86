"""One TCP connection followed from pod to pod: the SYN that left one pod and the SYN that arrived at another.

The proof is the client's initial sequence number: NAT (a Service's DNAT, a masquerade) rewrites addresses
and ports but never the sequence number, so the SYN leaving the client pod for `10.96.0.10:80` and the SYN
arriving at `echo-1:8080` carry the same ISN. When both sides saw the SYN-ACK too, the server's ISN must be
equal as well (64 bits of agreement); a proxy starts a new connection with new numbers, so a proxied hop is
a new pair. An ISN that two streams of one side share (a copy, a port reuse, chance) proves nothing, and such
candidates stay apart: no join is made that the numbers do not force.

What happened between the two sides is read off the difference: the destination rewrite (DNAT), a source
rewrite (SNAT), and the delay from the SYN leaving to the SYN arriving (meaningless across nodes whose
clocks differ, which is said). Per-pod joins compose: the client's sidecar join ends in an upstream leg, the
server's inbound link starts at the arriving stream, and the chain reads app -> sidecar -> Service ->
sidecar -> app.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from kubectl_whose.analysis.pod.stream_rows import is_tcp, parse_endpoint, row_start

MAX_DELAY = 10.0  # seconds between the two sightings of a SYN, beyond which it is not the same connection


@dataclass
class PodCapture:
    """One pod's analysed capture, as the join needs it."""

    label: str  # namespace/pod
    node: str
    ips: Sequence[str]
    rows: List[Dict[str, Any]]  # the summary's stream rows
    connections: List[Dict[str, Any]] = field(default_factory=list)  # its NAT-split joins (`connections`)
    inbound: List[Dict[str, Any]] = field(default_factory=list)  # its inbound links (`inbound`)


def _syns(capture: PodCapture, leaving: bool) -> Dict[int, List[Dict[str, Any]]]:
    """TCP rows whose SYN left this pod (its address is the client), or arrived at it (its address the server)."""
    out: Dict[int, List[Dict[str, Any]]] = {}
    ips = set(capture.ips)
    for r in capture.rows:
        if not is_tcp(r) or not isinstance(r.get("client_isn"), int):
            continue
        end = parse_endpoint(r.get("client" if leaving else "server"))
        if end is not None and end[0] in ips:
            out.setdefault(r["client_isn"], []).append(r)
    return out


def join_pods(captures: Sequence[PodCapture], max_delay: float = MAX_DELAY) -> List[Dict[str, Any]]:
    """Every connection seen leaving one pod and arriving at another, with its proof; the `links` JSON entries."""
    leaving = {c.label: _syns(c, True) for c in captures}
    arriving = {c.label: _syns(c, False) for c in captures}
    by_label = {c.label: c for c in captures}
    links = []
    for src in captures:
        for isn, sent in leaving[src.label].items():
            hits = [(dst, r) for dst in captures if dst.label != src.label for r in arriving[dst.label].get(isn, [])]
            if len(sent) != 1 or len(hits) != 1:
                continue  # no second sighting, or more than one: the numbers do not say which
            a, (dst, b) = sent[0], hits[0]
            if _claimed_twice(leaving, arriving, isn):
                continue
            link = _link(src, a, by_label[dst.label], b, max_delay)
            if link is not None:
                links.append(link)
    links.sort(key=lambda x: (x["start"], x["from"]["pod"], x["from"]["stream"]))
    return links


def _claimed_twice(leaving, arriving, isn: int) -> bool:
    """The ISN leaves from, or arrives at, more than one pod: not one connection's number."""
    return sum(len(by_isn.get(isn, [])) for by_isn in leaving.values()) > 1 or \
        sum(len(by_isn.get(isn, [])) for by_isn in arriving.values()) > 1


def _link(src: PodCapture, a: Dict[str, Any], dst: PodCapture, b: Dict[str, Any], max_delay: float):
    delay = row_start(b) - row_start(a)
    if abs(delay) > max_delay:
        return None
    proof = [f"SYN seq {a['client_isn']} leaves {src.label} in stream {a['index']} and arrives at {dst.label} in "
             f"stream {b['index']}"]
    sa, sb = a.get("server_isn"), b.get("server_isn")
    if isinstance(sa, int) and isinstance(sb, int):
        if sa != sb:
            return None  # the same client ISN answered by two different servers: not one connection
        proof.append(f"the SYN-ACK's seq {sa} is the same on both sides")
    else:
        proof.append("the SYN-ACK was not seen on both sides: the client's ISN and the timing carry the join")
    nat = []
    if a["server"] != b["server"]:
        nat.append(f"DNAT {a['server']} -> {b['server']}")
    if a["client"] != b["client"]:
        nat.append(f"SNAT {a['client']} -> {b['client']}")
    caveat = None
    if src.node != dst.node:
        caveat = (f"{src.label} runs on {src.node} and {dst.label} on {dst.node}: the delay mixes two clocks "
                  f"(it can even be negative)")
    chain = _chain(src, a, dst, b)
    return {"text": chain["text"], "from": {"pod": src.label, "node": src.node, "stream": a["index"],
                                            "client": a["client"], "server": a["server"]},
            "to": {"pod": dst.label, "node": dst.node, "stream": b["index"], "client": b["client"],
                   "server": b["server"]},
            "nat": nat, "delay": round(delay, 6), "clock_caveat": caveat, "proof": proof, "start": row_start(a),
            "hops": chain["hops"]}


def _chain(src: PodCapture, a: Dict[str, Any], dst: PodCapture, b: Dict[str, Any]) -> Dict[str, Any]:
    """The whole path with sidecars on either side: the client's join that ends in this leg, the server's
    inbound link that starts at it."""
    hops: List[Dict[str, Any]] = []
    parts: List[str] = []
    outbound: Optional[Dict[str, Any]] = next((c for c in src.connections if (c.get("upstream") or {})
                                               .get("stream") == a["index"]), None)
    if outbound is not None:
        hops.append({"pod": src.label, "what": "app -> sidecar", "streams": outbound["streams"]})
        parts += [f"app {outbound['client']}", f"[{src.label} sidecar {outbound['proxy']}]"]
    else:
        parts.append(a["client"])
    hops.append({"pod": src.label, "what": "leaves", "streams": [a["index"]]})
    parts.append(a["server"])
    if a["server"] != b["server"]:
        parts.append(f"DNAT {b['server']}")
    hops.append({"pod": dst.label, "what": "arrives", "streams": [b["index"]]})
    inbound = next((i for i in dst.inbound if i.get("inbound_stream") == b["index"]), None)
    if inbound is not None:
        hops.append({"pod": dst.label, "what": "sidecar -> app", "streams": [inbound["local_stream"]]})
        parts += [f"[{dst.label} sidecar]", f"app {inbound['service']}"]
    else:
        parts.append(f"{dst.label}")
    return {"text": " → ".join(parts), "hops": hops}


def number_in_merged(links: List[Dict[str, Any]], rows_by_pod: Dict[str, List[Dict[str, Any]]],
                     merged_rows: List[Dict[str, Any]]) -> None:
    """Give every hop its stream numbers in the merged file too (`merged_streams`): the numbers
    `analyze FILE --stream N` and `tshark -r FILE -Y tcp.stream==N` use there. A pod's stream is the merged
    file's stream with the same endpoints and client ISN: a connection two pods saw unchanged (no NAT between)
    is one stream of the merged file, as tshark counts it."""
    def key(r: Dict[str, Any]):
        return r.get("proto"), frozenset((r.get("client"), r.get("server"))), r.get("client_isn")

    merged: Dict[Any, List[int]] = {}
    for r in merged_rows:
        merged.setdefault(key(r), []).append(r["index"])
    by_index = {pod: {r["index"]: r for r in rows if is_tcp(r)} for pod, rows in rows_by_pod.items()}
    for link in links:
        for hop in link["hops"]:
            found = []
            for index in hop["streams"]:
                row = by_index.get(hop["pod"], {}).get(index)
                hits = merged.get(key(row), []) if row is not None else []
                found.append(hits[0] if len(hits) == 1 else None)  # None: the merged file does not say which
            hop["merged_streams"] = found


def join_pods_of_file(captures: Sequence[PodCapture], merged_path: Optional[str],
                      rules_by_node: Optional[Dict[str, Sequence]] = None) -> List[Dict[str, Any]]:
    """`join_pods`, with the hops numbered in the merged file as well when there is one, and the kube-proxy
    rule of each Service hop where its node's rules are known (`service_rule`)."""
    from kubectl_whose.analysis.pod.service_rule import name_service_rules

    links = join_pods(captures)
    name_service_rules(links, rules_by_node or {})
    if merged_path and links:
        from kubectl_whose.analysis.streams import analyze_file

        merged_rows = list(analyze_file(merged_path, proto="tcp").iter_streams())
        number_in_merged(links, {c.label: c.rows for c in captures}, merged_rows)
    for hop in (h for link in links for h in link["hops"] if "merged_streams" not in h):
        hop["merged_streams"] = [None] * len(hop["streams"])  # no merged file was written
    return links
