"""Sockets from `ss -H -tuanpe` and who owns each one: the app's container or the mesh proxy.

ss prints one line per socket (without -i/-m): `tcp LISTEN 0 128 127.0.0.1:15001 0.0.0.0:*
users:(("envoy",pid=12,fd=30)) uid:1337 ino:31329 sk:6 cgroup:... <->`. Quirks handled here,
all from iproute2's misc/ss.c:
- the Netid column is left out when only one protocol is listed (`ss -tanpe`);
- `uid:` is printed only when it is not 0, so a socket with an inode and no `uid:` is root's; a
  TIME-WAIT socket has `ino:0` and no owner at all;
- `users:(...)` lists only processes whose /proc/PID/fd the caller may read: in a debug container
  that is the processes of the container named with `-c` (shared process namespace) and of its
  own uid; another uid (the proxy's 1337) needs CAP_SYS_PTRACE, which the debug container lacks.
  The uid, from the kernel's socket diag, is always there: that is what names the proxy.
- addresses: `10.0.0.1:80`, `[fd00::1]:80`, `*:15001` (dual-stack wildcard), `0.0.0.0:*`,
  `127.0.0.53%lo:53` and `[fe80::1]%eth0:546` (bound to a device).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from kubectl_whose.analysis.pod import mesh
from kubectl_whose.errors import ExitCode, WhoseError

NETIDS = {"tcp", "udp", "raw", "u_str", "u_dgr", "u_seq", "sctp", "mptcp", "tcp6", "udp6", "p_raw", "p_dgr"}
TCP_STATES = {"ESTAB", "SYN-SENT", "SYN-RECV", "FIN-WAIT-1", "FIN-WAIT-2", "TIME-WAIT", "CLOSE-WAIT", "LAST-ACK",
              "LISTEN", "CLOSING", "CLOSED", "UNCONN", "UNKNOWN", "NEW-SYN-RECV", "BOUND-INACTIVE"}

_USERS_RE = re.compile(r"users:\((.*?)\)(?=\s|$)")
_PROC_RE = re.compile(r'\("((?:[^"\\]|\\.)*)",pid=(\d+),fd=(\d+)\)')


@dataclass
class Process:
    name: str
    pid: int
    fd: int


@dataclass
class Owner:
    kind: str  # proxy | container | process | none | unknown
    name: str
    mesh: Optional[str] = None
    evidence: str = ""


@dataclass
class Socket:
    proto: str  # tcp | udp
    state: str
    local_ip: Optional[str]  # None: wildcard
    local_port: Optional[int]
    peer_ip: Optional[str]
    peer_port: Optional[int]
    recv_q: int = 0
    send_q: int = 0
    device: Optional[str] = None  # bound with SO_BINDTODEVICE / scope (`%eth0`)
    uid: Optional[int] = None  # None: the socket has no owner (TIME-WAIT) or ss ran without -e
    inode: Optional[int] = None
    cookie: Optional[str] = None
    processes: List[Process] = field(default_factory=list)
    owner: Optional[Owner] = None

    @property
    def listening(self) -> bool:
        return self.state == "LISTEN" or (self.proto == "udp" and self.peer_port is None)

    @property
    def local(self) -> str:
        return format_endpoint(self.local_ip, self.local_port)

    @property
    def peer(self) -> str:
        return format_endpoint(self.peer_ip, self.peer_port)

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["local"], d["peer"], d["listening"] = self.local, self.peer, self.listening
        return d


def format_endpoint(ip: Optional[str], port: Optional[int]) -> str:
    host = "*" if ip is None else (f"[{ip}]" if ":" in ip else ip)
    return f"{host}:{'*' if port is None else port}"


def parse_endpoint(text: str) -> Tuple[Optional[str], Optional[int], Optional[str]]:
    """`ss` address column -> (ip or None for a wildcard, port or None, device)."""
    host, sep, port = text.rpartition(":")
    if not sep or not (port == "*" or port.isdigit()):
        raise ValueError(f"no port in {text!r}")
    device = None
    if "%" in host:
        host, device = host.rsplit("%", 1)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    ip = None if host in ("*", "0.0.0.0", "::") else host
    if ip and ip.lower().startswith("::ffff:") and "." in ip:
        ip = ip[7:]  # an IPv4-mapped v6 socket talks IPv4 on the wire; captures show the v4 address
    return ip, (None if port == "*" else int(port)), device


def parse_ss(text: str, what: str = "ss output") -> List[Socket]:
    sockets: List[Socket] = []
    for lineno, raw in enumerate((text or "").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("Netid", "State ", "Failed to find cgroup")):
            continue
        procs: List[Process] = []
        m = _USERS_RE.search(line)
        if m:  # before splitting: a process name may contain spaces
            procs = [Process(n.replace('\\"', '"'), int(p), int(f)) for n, p, f in _PROC_RE.findall(m.group(1))]
            line = line[:m.start()] + line[m.end():]
        tokens = line.split()
        proto = None
        if tokens and tokens[0] in NETIDS:
            proto = tokens.pop(0)
        if len(tokens) < 5 or tokens[0] not in TCP_STATES:
            raise WhoseError(f"{what} line {lineno}: not the `ss -H -tuanpe` format: {raw.strip()[:80]!r}",
                             ExitCode.BAD_INPUT)
        state, recv_q, send_q, local, peer, *extra = tokens
        if proto is not None and proto not in ("tcp", "udp", "tcp6", "udp6"):
            continue  # raw/packet/unix sockets are not what `net` shows (and their addresses are not ip:port)
        if not (recv_q.isdigit() and send_q.isdigit()):
            raise WhoseError(f"{what} line {lineno}: Recv-Q/Send-Q {recv_q!r}/{send_q!r} are not numbers; is this "
                             f"`ss -H -tuanpe` output?", ExitCode.BAD_INPUT)
        rq, sq = int(recv_q), int(send_q)
        try:
            lip, lport, dev = parse_endpoint(local)
            pip, pport, _ = parse_endpoint(peer)
        except ValueError as e:
            raise WhoseError(f"{what} line {lineno}: bad address ({e})", ExitCode.BAD_INPUT) from None
        if proto is None:  # single-protocol listing: TCP has states, UDP is UNCONN/ESTAB only
            proto = "udp" if state == "UNCONN" else "tcp"
        fields = dict(t.split(":", 1) for t in extra if ":" in t and not t.startswith(("timer", "cgroup")))
        inode = int(fields["ino"]) if fields.get("ino", "").isdigit() else None
        uid: Optional[int] = int(fields["uid"]) if fields.get("uid", "").isdigit() else None
        if uid is None and inode:  # ss omits uid:0
            uid = 0
        sockets.append(Socket(proto=proto[:3], state=state, local_ip=lip, local_port=lport, peer_ip=pip,
                              peer_port=pport, recv_q=rq, send_q=sq, device=dev, uid=uid,
                              inode=inode or None, cookie=fields.get("sk"), processes=procs))
    return sockets


def attribute_owners(sockets: List[Socket], container: Optional[str] = None) -> List[Socket]:
    """Set `owner` on each socket: the proxy by uid or process name, else the container or process."""
    for s in sockets:
        s.owner = owner_of(s, container)
    return sockets


def owner_of(s: Socket, container: Optional[str] = None) -> Owner:
    for p in s.processes:
        mesh_name = mesh.proxy_by_process(p.name)
        if mesh_name:
            return Owner("proxy", p.name, mesh_name, f"process {p.name} (pid {p.pid})")
    by_uid = mesh.proxy_by_uid(s.uid)
    if by_uid:
        return Owner("proxy", by_uid[1], by_uid[0], f"uid {s.uid} ({by_uid[0]}'s proxy uid)")
    if s.processes:
        p = s.processes[0]
        if container:
            return Owner("container", container, None,
                         f"process {p.name} (pid {p.pid}) in {container}'s process namespace")
        return Owner("process", p.name, None, f"process {p.name} (pid {p.pid}), uid {s.uid}")
    if s.uid is None:
        return Owner("none", "-", None, "no owning process (e.g. TIME-WAIT: the kernel holds it)")
    hint = "" if container else "; -c CONTAINER shows its processes"
    return Owner("unknown", f"uid {s.uid}", None, f"process not visible from the debug container{hint}")


class SocketIndex:
    """Sockets by (proto, local ip, local port): lookups stay cheap when a capture has thousands of streams."""

    def __init__(self, sockets: List[Socket]):
        self.by_local: Dict[Tuple[str, Optional[str], Optional[int]], List[Socket]] = {}
        for s in sockets:
            self.by_local.setdefault((s.proto, s.local_ip, s.local_port), []).append(s)

    def find(self, ip: str, port: int, peer: Optional[Tuple[str, int]] = None, proto: str = "tcp") -> Optional[Socket]:
        """The socket bound to ip:port: the one whose peer matches, else the listener (exact address, then
        wildcard), else any socket there. A listener beats a TIME-WAIT leftover on the same address: the
        kernel holds those with no owner, the listener names who serves the port."""
        exact = self.by_local.get((proto, ip, port), [])
        if peer is not None:
            for s in exact:
                if (s.peer_ip, s.peer_port) == peer:
                    return s
        listening = [s for s in exact if s.listening]
        listening += [s for s in self.by_local.get((proto, None, port), []) if s.listening]
        if listening:
            return listening[0]
        return exact[0] if exact else None


def find_socket(sockets: List[Socket], ip: str, port: int, peer: Optional[Tuple[str, int]] = None,
                proto: str = "tcp") -> Optional[Socket]:
    return SocketIndex(sockets).find(ip, port, peer, proto)
