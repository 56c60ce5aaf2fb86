"""A pod's network view from `ip -j` output: interfaces, addresses, routes, policy rules, neighbours.

Pure: text in, dataclasses out. Sockets and their owners are in `analysis.pod.sockets`; `NetInfo`
holds both. Each parser accepts the JSON iproute2 prints (`ip -j ...`); an empty output (no
neighbours, no rules for a family) is an empty list, not an error.

The veth peer: inside a pod, `ip link` shows `eth0@if50`. iproute2 prints `@ifNN` when the link's
IFLA_LINK attribute is set, and in JSON as `link_index` (plus `link_netnsid` when the peer lives
in another namespace). For a veth that is the peer's ifindex *in the peer's namespace*: on the
node, `ip link | grep '^50:'` names the host side (`cali...`, `veth...`, `lxc...`). That is what
people otherwise dig out with `ethtool -S eth0` (`peer_ifindex`).
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from kubectl_whose.errors import ExitCode, WhoseError


@dataclass
class Address:
    family: str  # inet | inet6
    local: str
    prefixlen: int
    scope: str = ""
    peer: Optional[str] = None  # point-to-point (`peer` in ip addr), e.g. Calico's /32 + onlink
    label: Optional[str] = None

    @property
    def cidr(self) -> str:
        return f"{self.local}/{self.prefixlen}"


@dataclass
class Interface:
    index: int
    name: str
    kind: Optional[str] = None  # linkinfo.info_kind: veth, bridge, vxlan, ... (None: plain/loopback)
    link_type: str = ""  # ether, loopback, none (tun), ...
    mtu: Optional[int] = None
    state: str = ""  # operstate
    flags: List[str] = field(default_factory=list)
    mac: Optional[str] = None
    master: Optional[str] = None
    peer_index: Optional[int] = None  # link_index: `eth0@if50` -> 50
    peer_netnsid: Optional[int] = None  # link_netnsid: set when the peer is in another namespace
    peer_name: Optional[str] = None  # the linked interface's name when it is in this namespace (vlan parent)
    addresses: List[Address] = field(default_factory=list)

    @property
    def display_name(self) -> str:
        """As `ip link` prints it: `eth0@if50` (peer elsewhere), `eth0.100@eth0` (parent here)."""
        if self.peer_name:
            return f"{self.name}@{self.peer_name}"
        return self.name if self.peer_index is None else f"{self.name}@if{self.peer_index}"

    @property
    def peer_note(self) -> Optional[str]:
        """The `@ifNN` suffix in words, or None when the link has no peer."""
        if self.peer_index is None and not self.peer_name:
            return None
        if self.peer_name or self.peer_netnsid is None:
            parent = self.peer_name or f"interface {self.peer_index}"
            role = "veth peer" if self.kind == "veth" else f"{self.kind} parent" if self.kind else ""
            return f"linked to {parent} in this namespace" + (f" (its {role})" if role else "")
        what = "the veth peer" if self.kind in (None, "veth") else f"the {self.kind} parent"
        return (f"{what} is interface index {self.peer_index} in another network namespace (netnsid "
                f"{self.peer_netnsid}, usually the node): on the node, `ip -o link | grep '^{self.peer_index}:'` "
                f"names it")

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["display_name"] = self.display_name
        d["peer_note"] = self.peer_note
        return d


@dataclass
class Route:
    dst: str  # "default", "10.0.0.0/24", "10.0.0.1"
    table: str = "main"
    type: str = "unicast"
    family: str = "inet"
    gateway: Optional[str] = None
    dev: Optional[str] = None
    protocol: Optional[str] = None
    scope: Optional[str] = None
    prefsrc: Optional[str] = None
    metric: Optional[int] = None
    flags: List[str] = field(default_factory=list)


@dataclass
class Rule:
    priority: int
    family: str = "inet"
    src: str = "all"
    dst: Optional[str] = None
    table: Optional[str] = None
    action: Optional[str] = None  # unreachable, prohibit, blackhole, goto... (no table then)
    fwmark: Optional[str] = None
    iif: Optional[str] = None
    oif: Optional[str] = None
    invert: bool = False

    @property
    def text(self) -> str:
        parts = ["not"] if self.invert else []
        parts.append(f"from {self.src}")
        if self.dst:
            parts.append(f"to {self.dst}")
        if self.fwmark:
            parts.append(f"fwmark {self.fwmark}")
        if self.iif:
            parts.append(f"iif {self.iif}")
        if self.oif:
            parts.append(f"oif {self.oif}")
        parts.append(f"lookup {self.table}" if self.table else (self.action or ""))
        return " ".join(p for p in parts if p)


@dataclass
class Neighbour:
    dst: str
    dev: Optional[str] = None
    lladdr: Optional[str] = None
    state: List[str] = field(default_factory=list)  # REACHABLE, STALE, PERMANENT, FAILED, ...
    router: bool = False


def _load(text: str, what: str) -> List[Dict[str, Any]]:
    text = (text or "").strip()
    if not text:
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise WhoseError(f"{what}: not the JSON `ip -j` prints ({e.msg} at line {e.lineno} column {e.colno})",
                         ExitCode.BAD_INPUT) from None
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        raise WhoseError(f"{what}: expected a JSON list of objects, as `ip -j` prints", ExitCode.BAD_INPUT)
    return data


def _int(value: Any) -> Optional[int]:
    return value if isinstance(value, int) else None


def parse_links(text: str, what: str = "ip -j link") -> List[Interface]:
    out = []
    for o in _load(text, what):
        if "ifindex" not in o or "ifname" not in o:
            raise WhoseError(f"{what}: an entry has no ifindex/ifname; is this `ip -j link` output?",
                             ExitCode.BAD_INPUT)
        out.append(Interface(
            index=o["ifindex"], name=o["ifname"],
            kind=(o.get("linkinfo") or {}).get("info_kind"),
            link_type=o.get("link_type", ""), mtu=_int(o.get("mtu")), state=o.get("operstate", ""),
            flags=list(o.get("flags") or []), mac=o.get("address"), master=o.get("master"),
            # iproute2 names a link in this namespace ("link": "eth0") and numbers one elsewhere
            # ("link_index": 50 with "link_netnsid"), exactly as `ip link` prints eth0@eth0 / eth0@if50
            peer_index=_int(o.get("link_index")), peer_netnsid=_int(o.get("link_netnsid")),
            peer_name=o.get("link") if isinstance(o.get("link"), str) else None,
        ))
    return out


def parse_addresses(text: str, what: str = "ip -j addr") -> Dict[int, List[Address]]:
    """ifindex -> addresses. `ip -j addr` also carries the link fields, so it can stand in for `link`."""
    out: Dict[int, List[Address]] = {}
    for o in _load(text, what):
        if "ifindex" not in o:
            raise WhoseError(f"{what}: an entry has no ifindex; is this `ip -j addr` output?", ExitCode.BAD_INPUT)
        out[o["ifindex"]] = [
            Address(family=a.get("family", ""), local=a.get("local", ""), prefixlen=a.get("prefixlen", 0),
                    scope=a.get("scope", ""), peer=a.get("address") if a.get("address") != a.get("local") else None,
                    label=a.get("label"))
            for a in o.get("addr_info") or [] if a.get("local")
        ]
    return out


def parse_routes(text: str, what: str = "ip -j route") -> List[Route]:
    out = []
    for o in _load(text, what):
        dst = o.get("dst", "")
        gateway = o.get("gateway") or (o.get("via") or {}).get("host")
        fam = "inet6" if ":" in dst or ":" in (gateway or "") else "inet"
        out.append(Route(dst=dst, table=str(o.get("table", "main")), type=o.get("type", "unicast"), family=fam,
                         gateway=gateway, dev=o.get("dev"), protocol=o.get("protocol"), scope=o.get("scope"),
                         prefsrc=o.get("prefsrc"), metric=_int(o.get("metric")), flags=list(o.get("flags") or [])))
    return out


def parse_rules(text: str, family: str = "inet", what: str = "ip -j rule") -> List[Rule]:
    out = []
    for o in _load(text, what):
        src = o.get("src", "all")
        if o.get("srclen") is not None and src != "all":
            src = f"{src}/{o['srclen']}"
        dst = o.get("dst")
        if dst and o.get("dstlen") is not None:
            dst = f"{dst}/{o['dstlen']}"
        fwmark = o.get("fwmark")
        if fwmark and o.get("fwmask"):
            fwmark = f"{fwmark}/{o['fwmask']}"
        table = o.get("table")
        action = o.get("action") if not table else None
        out.append(Rule(priority=o.get("priority", 0), family=family, src=src, dst=dst, table=table and str(table),
                        action=action, fwmark=fwmark, iif=o.get("iif"), oif=o.get("oif"), invert=bool(o.get("not"))))
    return out


def parse_neighbours(text: str, what: str = "ip -j neigh") -> List[Neighbour]:
    return [Neighbour(dst=o.get("dst", ""), dev=o.get("dev"), lladdr=o.get("lladdr"),
                      state=list(o.get("state") or []), router="router" in o)
            for o in _load(text, what)]


def build_interfaces(link_text: Optional[str], addr_text: Optional[str], link_what: str = "ip -j link",
                     addr_what: str = "ip -j addr") -> List[Interface]:
    """Interfaces from `ip -j link` (kind needs `-d`) joined with `ip -j addr` by ifindex.

    Either may be missing: `addr` alone yields interfaces without a kind.
    """
    links = parse_links(link_text, link_what) if link_text and link_text.strip() else []
    addrs = parse_addresses(addr_text, addr_what) if addr_text and addr_text.strip() else {}
    if not links and addr_text and addr_text.strip():
        links = parse_links(addr_text, addr_what)
    index_of = {i.name: i.index for i in links}
    for iface in links:
        iface.addresses = addrs.get(iface.index, [])
        if iface.peer_name and iface.peer_index is None:
            iface.peer_index = index_of.get(iface.peer_name)
    return sorted(links, key=lambda i: i.index)


@dataclass
class NetInfo:
    """Everything `net` shows about one pod's network namespace.

    `-o json` contract (`to_dict()`):
      {"container": str|null,                       # -c: whose process namespace was shared
       "interfaces": [{"index", "name", "display_name": "eth0@if50", "kind": "veth"|null, "link_type",
                       "mtu", "state", "flags", "mac", "master", "peer_index": int|null,
                       "peer_netnsid": int|null, "peer_note": str|null,
                       "addresses": [{"family", "local", "prefixlen", "scope", "peer", "label"}]}],
       "routes": [{"dst", "table", "type", "family", "gateway", "dev", "protocol", "scope", "prefsrc",
                   "metric", "flags"}],
       "rules": [{"priority", "family", "src", "dst", "table", "action", "fwmark", "iif", "oif", "invert",
                  "text"}],
       "neighbours": [{"dst", "dev", "lladdr", "state": [str], "router"}],
       "sockets": [{"proto", "state", "local", "peer", "local_ip"|null, "local_port", "peer_ip", "peer_port",
                    "listening", "recv_q", "send_q", "device", "uid": int|null, "inode", "cookie",
                    "processes": [{"name", "pid", "fd"}],
                    "owner": {"kind": "proxy"|"container"|"process"|"none"|"unknown", "name", "mesh", "evidence"}}],
       "missing": [str],                            # views not collected, and why
       "seen_from": {"where": "node", "node", "pod", "host_interface": {...}}}   # only with --node / node/NAME
    """

    interfaces: List[Interface] = field(default_factory=list)
    routes: List[Route] = field(default_factory=list)
    rules: List[Rule] = field(default_factory=list)
    neighbours: List[Neighbour] = field(default_factory=list)
    sockets: list = field(default_factory=list)  # analysis.pod.sockets.Socket, owners attributed
    container: Optional[str] = None
    missing: List[str] = field(default_factory=list)  # views that could not be collected, with why
    # None: inside the pod; {"where": "node", "node", "pod", "host_interface": {...}} with `net --node`
    seen_from: Optional[Dict[str, Any]] = None

    def local_addresses(self) -> List[str]:
        return [a.local for i in self.interfaces for a in i.addresses]

    def to_dict(self) -> Dict[str, Any]:
        return {
            "container": self.container,
            "interfaces": [i.to_dict() for i in self.interfaces],
            "routes": [asdict(r) for r in self.routes],
            "rules": [dict(asdict(r), text=r.text) for r in self.rules],
            "neighbours": [asdict(n) for n in self.neighbours],
            "sockets": [s.to_dict() for s in self.sockets],
            "missing": list(self.missing),
            **({"seen_from": self.seen_from} if self.seen_from else {}),
        }


def build_netinfo(outputs: Dict[str, Optional[str]], container: Optional[str] = None,
                  missing: Optional[List[str]] = None, sources: Optional[Dict[str, str]] = None) -> NetInfo:
    """outputs: recipe name (see collect.netinfo.RECIPES) -> text, or None when not collected.
    sources: recipe name -> what to call it in an error (the file it came from, offline)."""
    from kubectl_whose.analysis.pod.sockets import attribute_owners, parse_ss

    def text(name: str) -> str:
        return outputs.get(name) or ""

    def what(name: str, default: str) -> str:
        return (sources or {}).get(name, default)

    rules = (parse_rules(text("rule"), "inet", what("rule", "ip -j rule"))
             + parse_rules(text("rule6"), "inet6", what("rule6", "ip -j -6 rule")))
    return NetInfo(
        interfaces=build_interfaces(outputs.get("link"), outputs.get("addr"), what("link", "ip -j link"),
                                    what("addr", "ip -j addr")),
        routes=parse_routes(text("route"), what("route", "ip -j route")),
        rules=sorted(rules, key=lambda r: (r.family, r.priority)),
        neighbours=parse_neighbours(text("neigh"), what("neigh", "ip -j neigh")),
        sockets=attribute_owners(parse_ss(text("sockets"), what("sockets", "ss output")), container),
        container=container,
        missing=list(missing or []),
    )


def pod_addresses(ip_addr_output: str) -> List[str]:
    """Addresses from `ip -o addr show` (non-loopback first): the trace's LOCAL set."""
    return own_addresses(re.findall(r"\binet6?\s+([0-9a-fA-F:.]+)/\d+", ip_addr_output))


def own_addresses(addrs) -> List[str]:
    """The addresses a packet from this namespace may come from: no loopback, no link-local."""
    return [a for a in addrs if not (a.startswith("127.") or a == "::1" or a.lower().startswith("fe80"))]
