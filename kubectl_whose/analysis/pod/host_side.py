"""Which interface on the node carries a pod's traffic: the host side of its veth, found as the kernel
would forward a packet to the pod.

The two CNI styles of the talk "Packet-level Debugging of Bridged and Non-bridged CNI Plugins":
- routed (Calico `cali*`, AWS VPC CNI `eni*`, Cilium `lxc*`): the node holds a /32 route to the pod through
  its veth, so `ip route get POD_IP` names the interface;
- bridged (`cni0`, `cbr0`, `docker0`): the route leads to the bridge, and the bridge's forwarding table
  (`bridge fdb`) says which of its ports has the pod's MAC, the one the node's ARP entry for POD_IP holds.

Input is what the node's own tools print (`ip -j route get`, `ip -d -j link show`, `ip -j neigh show`,
`bridge -j fdb show`); output is the interface and the sentence that says why it is the one.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from kubectl_whose.errors import ExitCode, WhoseError


@dataclass(frozen=True)
class HostInterface:
    name: str
    style: str  # "routed" | "bridged"
    why: str  # one sentence: the evidence for this interface
    bridge: Optional[str] = None
    mac: Optional[str] = None  # the pod's MAC, when found through the bridge

    def to_dict(self) -> Dict[str, Any]:
        return {"interface": self.name, "cni": self.style, "why": self.why, "bridge": self.bridge, "mac": self.mac}


def _json(text: Optional[str]) -> List[dict]:
    if not text or not text.strip():
        return []
    try:
        data = json.loads(text)
    except ValueError:
        return []
    return data if isinstance(data, list) else []


def _kind(link: dict) -> str:
    return ((link.get("linkinfo") or {}).get("info_kind") or "").lower()


def bridge_ports(links: List[dict], bridge: str) -> List[str]:
    return [lk["ifname"] for lk in links if lk.get("master") == bridge]


def find_host_interface(pod_ip: str, route_get: str, links: str, neigh: str, fdb: str,
                        node: str = "the node", arp_reply: Optional[str] = None) -> HostInterface:
    """The pod's host-side interface; a WhoseError(BAD_INTERFACE) listing the candidates when the node's tables
    do not say which one it is. `arp_reply`: what `arping` printed when the node asked for the pod's MAC (its
    ARP cache may lack the pod, or hold a stale MAC of an earlier pod with the same address)."""
    routes, link_list = _json(route_get), _json(links)
    by_name = {lk.get("ifname"): lk for lk in link_list}
    if not routes or not routes[0].get("dev"):
        raise WhoseError(f"node {node} has no route to the pod's address {pod_ip} (ip route get {pod_ip}); the pod "
                         f"may run on another node or its network is not set up", ExitCode.BAD_INTERFACE)
    dev = routes[0]["dev"]
    link = by_name.get(dev, {})
    if _kind(link) != "bridge":
        kind = _kind(link) or "an interface"
        return HostInterface(dev, "routed", f"routed CNI: the node's route to {pod_ip} goes through {dev} "
                                            f"({kind}; ip route get {pod_ip})")
    ports = bridge_ports(link_list, dev)
    live = arping_mac(arp_reply or "")
    mac = live or next((n.get("lladdr") for n in _json(neigh)
                        if n.get("dst") == pod_ip and n.get("dev") == dev and n.get("lladdr")), None)
    source = "its answer to an ARP request from the node" if live else "the node's ARP entry"
    if mac:
        for entry in _json(fdb):
            if (entry.get("mac") or "").lower() == mac.lower() and entry.get("master") == dev \
                    and entry.get("ifname") in ports and entry.get("state") != "permanent":
                return HostInterface(entry["ifname"], "bridged",
                                     f"bridged CNI: the route to {pod_ip} goes to bridge {dev}, whose forwarding "
                                     f"table has the pod's MAC {mac} ({source}) on port {entry['ifname']}",
                                     bridge=dev, mac=mac)
    how = f"its forwarding table has no port for the pod's MAC {mac} ({source})" if mac else \
        f"{pod_ip} answers no ARP request from the node, so the pod's MAC is unknown"
    raise WhoseError(f"cannot tell which port of bridge {dev} on node {node} leads to the pod ({how}); pass -i "
                     f"with one of the bridge's ports: {', '.join(ports) or 'none'}", ExitCode.BAD_INTERFACE)


_ARPING_REPLY = re.compile(r"reply from [0-9a-fA-F.:]+ \[([0-9a-fA-F:]{17})\]", re.I)


def arping_mac(text: str) -> Optional[str]:
    """The MAC in iputils arping's `Unicast reply from 10.244.0.11 [7A:79:0F:00:8B:04]  0.6ms`."""
    m = _ARPING_REPLY.search(text)
    return m.group(1).lower() if m else None
