"""The packet a trace follows, the question asked about it, and the NAT arithmetic shared by the
iptables and nftables evaluators.

Defaults follow the kernel for a *new* connection: conntrack state NEW, mark 0, connmark 0; a
locally generated packet has an owner (uid/gid) and an output interface chosen by routing before
the OUTPUT hook; an inbound packet has an input interface and no owner.
"""
from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass, field, replace
from typing import List, Optional, Tuple

LOOPBACK4 = ipaddress.ip_network("127.0.0.0/8")
LOOPBACK6 = ipaddress.ip_network("::1/128")
EPHEMERAL_PORT = 40000  # inside Linux's default ip_local_port_range (32768-60999)
CTSTATES = ("NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED")  # conntrack states a rule may match


@dataclass(frozen=True)
class TraceQuery:
    """What the user asked: `--to IP:PORT --proto P [--from IP[:PORT]] [--uid] [--gid] [--inbound] [--iface]`."""

    dst: str
    dport: Optional[int]
    proto: str = "tcp"
    src: Optional[str] = None
    sport: Optional[int] = None
    uid: Optional[int] = None
    gid: Optional[int] = None
    inbound: bool = False
    iface: Optional[str] = None
    pod_ips: Tuple[str, ...] = ()
    ctstate: str = "NEW"
    mark: int = 0
    ctstate_given: bool = False  # False: NEW is an assumption, named when a rule looks at the state
    kernel_generated: bool = False  # an ICMP error or RST the kernel sends for a REJECT: no socket, no owner
    reply: bool = False  # the connection's reply direction (the answer to the traced packet)
    replay_nat: Tuple[tuple, ...] = ()  # later packets of a connection: the NAT its first packet set up
    in_sets: Tuple[str, ...] = ()  # ipsets the packet's addresses are in (an ipset's members are not in a dump)
    # the namespace's addresses, routes and policy rules (`routing.Routing`); None: not known, see `assume`
    routing: Optional[object] = field(default=None, compare=False)

    @property
    def family(self) -> str:
        return "ipv6" if ":" in self.dst else "ipv4"

    @classmethod
    def from_flags(cls, to, src, mark: str, ctstate: Optional[str], **given) -> "TraceQuery":
        """The query `trace`'s flags ask: `to`/`src` are `analysis.ip_port.Endpoint`s (src may be None),
        `mark` as typed (0x4000 or 16384). A ValueError says which flags disagree."""
        if (given.get("uid") is not None or given.get("gid") is not None) and given.get("inbound"):
            raise ValueError("--uid/--gid describe the sending process of an outbound packet; drop them or --inbound")
        try:
            mark_value = int(mark, 0)
        except ValueError:
            raise ValueError(f"--mark {mark!r} is not a number (examples: 0x4000, 16384)") from None
        return cls(dst=to.ip, dport=to.port, src=src.ip if src else None, sport=src.port if src else None,
                   ctstate=(ctstate or "NEW").upper(), ctstate_given=ctstate is not None, mark=mark_value, **given)


@dataclass
class Packet:
    proto: str
    src: Optional[str]
    sport: Optional[int]
    dst: str
    dport: Optional[int]
    iif: Optional[str] = None
    oif: Optional[str] = None
    uid: Optional[int] = None
    gid: Optional[int] = None
    mark: int = 0
    ctmark: int = 0
    ctstate: str = "NEW"
    ctzone: int = 0
    nat: List[str] = field(default_factory=list)  # what rewrote the packet, in order
    dnat_hooks: List[str] = field(default_factory=list)
    snat_done: bool = False
    delivered_to: Optional[str] = None  # "ip:port" for REDIRECT/TPROXY (the local socket)
    verdict_kind: Optional[str] = None  # REDIRECT | DNAT | TPROXY (the destination rewrite), SNAT | MASQUERADE
    reject_with: Optional[str] = None  # what a REJECT answers with (iptables --reject-with, nft reject type)
    destination_unknown: bool = False  # a NAT target whose parameters the reader lost ([unsupported revision])
    reroute_oif: Optional[str] = None  # output device after a destination NAT in OUTPUT, from POSTROUTING on
    nat_log: List[tuple] = field(default_factory=list)  # (hook, "dst"|"src", ip, port, oif): replayed for later packets
    unroutable: bool = False  # the kernel cannot route it after a NAT (loopback source toward another host)
    no_route: Optional[str] = None  # the routing decision that ended the walk (unreachable, prohibit, no route)

    def copy(self) -> "Packet":
        return replace(self, nat=list(self.nat), dnat_hooks=list(self.dnat_hooks), nat_log=list(self.nat_log))


def endpoint(ip: Optional[str], port: Optional[int]) -> Optional[str]:
    if ip is None:
        return None
    if port is None:
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@functools.lru_cache(maxsize=65536)
def in_network(ip: str, network: str) -> bool:
    address, net = _address(ip), _network(network)
    return address is not None and net is not None and address[0] == net[0] and address[1] & net[2] == net[1]


# Parsed once each: a walk past a kube-proxy KUBE-SERVICES chain compares one address with 5,000 networks, and
# parsing the pair each time (ipaddress is pure Python) was most of the walk.
@functools.lru_cache(maxsize=65536)
def _network(text: str):
    try:
        n = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    return n.version, int(n.network_address), int(n.netmask)


@functools.lru_cache(maxsize=4096)
def _address(text: str):
    try:
        a = ipaddress.ip_address(text)
    except ValueError:
        return None
    return a.version, int(a)


def is_loopback(ip: str) -> bool:
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return a in (LOOPBACK6 if a.version == 6 else LOOPBACK4)


def iface_matches(pattern: str, name: Optional[str]) -> bool:
    """iptables `-i eth+` / nft `iifname "eth*"`: a trailing + or * matches any suffix."""
    if name is None:
        return False
    if pattern.endswith("+") or pattern.endswith("*"):
        return name.startswith(pattern[:-1])
    return name == pattern


def port_in(spec: str, port: Optional[int]) -> bool:
    """`80`, `80:90` (iptables), `80-90` (nft), comma lists."""
    if port is None:
        return False
    for part in str(spec).split(","):
        part = part.strip()
        sep = ":" if ":" in part else ("-" if "-" in part else None)
        if sep:
            lo, hi = part.split(sep, 1)
            if int(lo or 0) <= port <= int(hi or 65535):
                return True
        elif part and int(part) == port:
            return True
    return False


def parse_nat_to(text: str) -> Tuple[Optional[str], Optional[int], Optional[str]]:
    """`10.0.0.1:80`, `10.0.0.1`, `:80`, `[fd00::1]:80`, `10.0.0.1-10.0.0.3:80-90` -> (ip, port, note)."""
    note = None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    if "-" in host:
        host, _, last = host.partition("-")
        note = f"address range {host}-{last}: the first address is used"
    port = None
    if port_text:
        first, _, last = port_text.partition("-")
        port = int(first)
        if last:
            note = (note + "; " if note else "") + f"port range {port_text}: the first port is used"
    return (host or None), port, note
