"""The lab that asks the kernel about each claim of `rules`' summary: the rule set loaded with the real tool in
a namespace ("pod": a pod, or a node for node-level writers), and around it everything each claim's probes
need, made from the probes themselves:

- `peer` on eth0 (the default route): it sends the inbound probes, from whatever source they name, and owns
  the outbound probes' remote destinations (phase "outbound") or routes them into the pod (phase "inbound");
- one namespace per routed device (`devices`: docker0, cali..., eth1 for forwarded destinations), behind an
  unnumbered link, owning the addresses routed there (DNAT endpoints, containers); the pod's only address is
  10.77.1.2, so MASQUERADE picks it whatever the device, as `trace` assumes;
- listeners on every port a probe or a predicted end uses (the pod's are transparent, for TPROXY), the
  policy routing TPROXY needs for the marks the trace names, ipsets the rules name.

`check(claims)` sends every probe as real connections (as its uid/gid, from its source, with its mark) and
returns the probes where the kernel disagreed with the trace, with what each side said.
"""
from __future__ import annotations

import collections
import ipaddress
import json
import os
import re
import subprocess
import sys
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from kubectl_whose.analysis.netfilter.words.probes import routes_of
from tests.helpers.netns import NetLab, Netns

AGENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nflab_agent.py")
POD_IP, PEER_IP = "10.77.1.2", "10.77.1.1"
TIMEOUT = 0.6  # a lab connection answers in microseconds; a DROP is a wait this long
RANDOM_TRIES = 40  # connections for a probe with random ends (each of 3 ends seen with p > 1 - 1e-6)


def _address(endpoint: Optional[str]) -> Optional[str]:
    if endpoint is None:
        return None
    if endpoint.startswith("["):
        return endpoint[1:].split("]")[0]
    return endpoint.rsplit(":", 1)[0] if endpoint.count(":") == 1 else endpoint


def _port(endpoint: Optional[str]) -> Optional[int]:
    if endpoint and endpoint.rsplit(":", 1)[-1].isdigit() and ":" in endpoint:
        return int(endpoint.rsplit(":", 1)[-1])
    return None


class ClaimsLab:
    def __init__(self, lab: NetLab, workdir: str, devices: Optional[Dict[str, Sequence[str]]] = None):
        self.lab, self.workdir = lab, workdir
        self.devices = dict(devices or {})
        self.devices.setdefault("eth1", ("192.0.2.0/24",))  # where forwarded probes go
        self.pod, self.peer = lab.ns("pod"), lab.ns("peer")
        lab.link(self.pod, "eth0", f"{POD_IP}/24", self.peer, "eth0", f"{PEER_IP}/24")
        self.pod.run(["ip", "route", "add", "default", "via", PEER_IP])
        self.peer.run(["ip", "route", "add", "default", "via", POD_IP])  # answers to SNATed sources, wherever
        self.sides: Dict[str, Netns] = {}
        self.side_dev: Dict[str, str] = {}
        for n, (dev, nets) in enumerate(sorted(self.devices.items())):
            side = lab.ns(f"d{n}")
            lab.link(self.pod, dev, None, side, "eth0", None)
            side.run(["ip", "route", "add", "default", "via", POD_IP, "dev", "eth0", "onlink"])
            # static neighbours across the unnumbered link: a first SYN held for ARP there costs a 1 s retransmission
            side.run(["ip", "neigh", "replace", POD_IP, "lladdr", _mac(self.pod, dev), "dev", "eth0", "nud", "permanent"])
            for net in nets:
                self.pod.run(["ip", "route", "add", net, "dev", dev])
                self.peer.run(["ip", "route", "add", net, "via", POD_IP])
            self.sides[dev] = side
            self.side_dev[side.name] = dev
        for ns in [self.pod, self.peer, *self.sides.values()]:
            ns.run(["sysctl", "-q", "-w", "net.ipv4.icmp_ratelimit=0", "net.ipv4.conf.all.rp_filter=0",
                    "net.ipv4.conf.default.rp_filter=0"])
        self.pod.run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
        self.owned: Dict[str, set] = collections.defaultdict(set)

    @property
    def routes(self) -> List[Tuple[str, str]]:
        """The pod's routes, as `summarize` takes them."""
        return [(net, dev) for dev, nets in self.devices.items() for net in nets] + \
            [("10.77.1.0/24", "eth0"), ("0.0.0.0/0", "eth0")]

    # -- rules --
    def load(self, text: str, tool: str) -> None:
        for name in sorted(set(re.findall(r"--match-set (\S+)", text))):
            self.pod.run(["ipset", "create", name, "hash:ip", "-exist"])
        if tool == "nftables":
            path = os.path.join(self.workdir, "rules.nft")
            with open(path, "w") as f:
                f.write(text)
            self.pod.run(["nft", "-f", path])
        else:
            self.pod.run([f"iptables-{tool}-restore"], input=text)

    def dump(self, tool: str, text: bool = False) -> str:
        if tool == "nftables":
            argv, name = (["nft", "list", "ruleset"], "live.nft") if text else (["nft", "-j", "list", "ruleset"],
                                                                                  "live.json")
        else:
            argv, name = [f"iptables-{tool}-save", "-c"], f"live-{tool}.rules"
        out = self.pod.run(argv).stdout
        path = os.path.join(self.workdir, name)
        with open(path, "w") as f:
            f.write(out)
        return path

    # -- where things are --
    def owner(self, ip: str, phase: str = "", routes: Sequence[Tuple[str, str]] = ()) -> Netns:
        """The namespace that holds `ip`: the pod, the side of the device routing sends it to, else the peer."""
        a = ipaddress.ip_address(ip)
        if a.is_loopback or ip == POD_IP:
            return self.pod
        best = None
        for net, dev in list(self.routes) + list(routes):
            n = ipaddress.ip_network(net)
            if dev in self.sides and a in n and (best is None or n.prefixlen > best[0]):
                best = (n.prefixlen, dev)
        if best:
            return self.sides[best[1]]
        return self.peer

    def _extra(self, routes: Sequence[Tuple[str, str]]) -> List[Tuple[str, str]]:
        return [(n, d) for n, d in routes if (n, d) not in self.routes and d != "eth0" and not n.endswith("/0")]

    def _route(self, routes: Sequence[Tuple[str, str]]) -> List[Tuple[str, str]]:
        """Routes a probe names that the lab does not have yet (a host route to a device): added, to be undone."""
        added = []
        for net, dev in routes:
            if (net, dev) in self.routes or dev == "eth0" or net.endswith("/0"):
                continue
            assert dev in self.sides, f"the lab has no device {dev}; give it in the corpus entry's devices"
            self.pod.run(["ip", "route", "replace", net, "dev", dev])
            self.peer.run(["ip", "route", "replace", net, "via", POD_IP])
            added.append((net, dev))
        return added

    def own(self, ns: Netns, ip: str) -> None:
        if ip in (POD_IP, PEER_IP) or ipaddress.ip_address(ip).is_loopback or ip in self.owned[ns.name]:
            return
        ns.run(["ip", "addr", "add", f"{ip}/32", "dev", "lo"])
        self.owned[ns.name].add(ip)
        if ns.name in self.side_dev:
            self.pod.run(["ip", "neigh", "replace", ip, "lladdr", _mac(ns, "eth0"), "dev", self.side_dev[ns.name],
                          "nud", "permanent"])

    def disown(self, ns: Netns, ip: str) -> None:
        if ip in self.owned[ns.name]:
            ns.run(["ip", "addr", "del", f"{ip}/32", "dev", "lo"])
            self.owned[ns.name].discard(ip)

    # -- asking the kernel --
    def check(self, probes: Iterable) -> List[str]:
        """Every probe's packets, sent for real; the list of disagreements (empty: the kernel agrees)."""
        probes = list({id(p): p for p in probes}.values())
        self._serve(probes)
        for mark in sorted({o.mark for p in probes for o in p.result.outcomes if o.verdict == "TPROXY" and o.mark}):
            self.pod.run(["ip", "rule", "add", "fwmark", str(mark), "lookup", "133"])
            self.pod.run(["ip", "route", "replace", "local", "0.0.0.0/0", "dev", "lo", "table", "133"])
        problems: List[str] = []
        for phase in ("outbound", "inbound"):
            batch = [p for p in probes if ("inbound" if p.query.inbound else "outbound") == phase]
            if batch:
                problems += self._phase(phase, batch)
        return problems

    def _serve(self, probes) -> None:
        ports: Dict[Tuple[str, str], set] = collections.defaultdict(set)
        for p in probes:
            q = p.query
            for ns in [self.pod, self.peer, *self.sides.values()]:
                ports[(ns.name, q.proto)].add(q.dport)
            for o in p.result.outcomes:
                port = _port(o.destination)
                if port:
                    for ns in [self.pod, self.peer, *self.sides.values()]:
                        ports[(ns.name, q.proto)].add(port)
        for ns in [self.pod, self.peer, *self.sides.values()]:
            tcp, udp = sorted(ports[(ns.name, "tcp")]), sorted(ports[(ns.name, "udp")])
            argv = [sys.executable, AGENT, "serve", ns.name.rsplit("-", 1)[-1]]
            argv += (["--tcp", ",".join(map(str, tcp))] if tcp else []) + \
                (["--udp", ",".join(map(str, udp))] if udp else [])
            if ns is self.pod:
                argv.append("--transparent")
            proc = ns.popen(argv, stdout=subprocess.PIPE, text=True)
            line = proc.stdout.readline()
            assert line.strip() == "ready", f"lab server in {ns.name} did not start: {line!r}"

    def _phase(self, phase: str, probes) -> List[str]:
        inbound = phase == "inbound"
        own_routes = [p for p in probes if self._extra(routes_of(p.query))]
        for p in probes:  # the addresses each probe's packets go to, from and end at
            q = p.query
            if p in own_routes:
                continue
            if not inbound:
                self.own(self.owner(q.dst, phase, routes_of(q)), q.dst)
            else:
                sender = self._sender(q)
                self.own(sender, q.src)
                where = self.owner(q.dst, phase, routes_of(q))
                if where is self.peer and q.dst not in (POD_IP,):
                    self.disown(self.peer, q.dst)  # owned for the outbound phase: now routed into the pod
                    self.peer.run(["ip", "route", "replace", f"{q.dst}/32", "via", POD_IP])
                elif where is not self.pod:
                    self.disown(self.peer, q.dst)
                    self.own(where, q.dst)
            for o in p.result.outcomes:
                ip = _address(o.destination)
                where = self.owner(ip, phase, routes_of(q)) if ip else None
                if ip and o.verdict in ("DNAT", "REDIRECT") and where is not self.pod:
                    if not (inbound and where is self.peer):
                        self.own(where, ip)
        for ns in [self.pod, self.peer, *self.sides.values()]:
            ns.run(["conntrack", "-F"], check=False)
        groups: Dict[tuple, list] = collections.defaultdict(list)
        problems: List[str] = []
        alone = []
        for p in probes:
            q = p.query
            if q.ctstate == "INVALID":
                problems += self._invalid(p)
                continue
            if q.in_sets or any(o.untracked for o in p.result.outcomes) or p in own_routes:
                alone.append(p)
                continue
            sender = self._sender(q) if inbound else self.pod
            groups[(sender.name, q.uid, q.gid, bool(q.mark))].append(p)
        for (name, uid, gid, marked), batch in groups.items():
            sender = self.lab.namespaces[name.rsplit("-", 1)[-1]]
            results = self._send(sender, uid, gid, marked, batch)
            for p, got in zip(batch, results):
                if os.environ.get("KW_LAB_DEBUG"):
                    print(trace_said(p), got, file=sys.stderr)
                problems += _compare(p, got)
        for p in alone:  # after the batches: they move addresses between namespaces for a while
            problems += self._one(p, phase)
        if inbound:  # the inbound phase routed remote destinations into the pod: undo for a later outbound phase
            for p in probes:
                self.peer.run(["ip", "route", "del", f"{p.query.dst}/32"], check=False)
        return problems

    def _sender(self, q) -> Netns:
        if q.iface and q.iface in self.sides:
            return self.sides[q.iface]
        return self.peer

    def _send(self, sender: Netns, uid, gid, marked: bool, batch) -> List[list]:
        items = [{"proto": p.query.proto, "ip": p.query.dst, "port": p.query.dport,
                  "src": p.query.src if p.query.inbound or p.query.src else None, "sport": p.query.sport,
                  "mark": p.query.mark, "count": RANDOM_TRIES if len(p.result.outcomes) > 1 else 1,
                  "timeout": TIMEOUT} for p in batch]
        argv = [sys.executable, AGENT, "probes"]
        if uid is not None:
            caps = ["--inh-caps", "+net_admin", "--ambient-caps", "+net_admin"] if marked else []
            argv = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *caps, *argv]
        out = sender.run(argv, input=json.dumps(items), timeout=60 + len(items) * RANDOM_TRIES * TIMEOUT).stdout
        return json.loads(out)

    def _one(self, p, phase: str) -> List[str]:
        """A probe that needs the namespaces set up for it alone: host routes of its own (two probes may send one
        address through different devices), ipset members, a conntrack check."""
        q = p.query
        added = self._route(routes_of(q))
        where = self.owner(q.dst, phase, routes_of(q))
        lent = q.dst in self.owned[self.peer.name] and where is not self.peer
        if where is not self.pod and not (q.inbound and where is self.peer):
            self.disown(self.peer, q.dst)
            self.own(where, q.dst)
        if q.inbound:
            self.own(self._sender(q), q.src)
        for entry in q.in_sets:
            name, _, side = entry.rpartition(":") if entry.endswith((":src", ":dst")) else (entry, "", "")
            for ip in [q.src or POD_IP] * (side != "dst") + [q.dst] * (side != "src"):
                self.pod.run(["ipset", "add", name, ip, "-exist"])
        self.pod.run(["conntrack", "-F"], check=False)
        sender = self._sender(q) if q.inbound else self.pod
        [got] = self._send(sender, q.uid, q.gid, bool(q.mark), [p])
        problems = _compare(p, got)
        entries = self.pod.run(["conntrack", "-L", "-p", q.proto, "--orig-port-dst", str(q.dport)],
                               check=False).stdout.strip()
        untracked = all(o.untracked for o in p.result.outcomes)
        if untracked and entries:
            problems.append(f"{_said(p)}: trace says conntrack keeps no entry, the kernel has {entries!r}")
        if not untracked and not entries and any(o.sender_sees == "delivered" for o in p.result.outcomes):
            problems.append(f"{_said(p)}: trace says the connection is tracked, conntrack has no entry")
        for entry in q.in_sets:
            self.pod.run(["ipset", "flush", entry.rsplit(":", 1)[0] if entry.endswith((":src", ":dst")) else entry])
        for net, dev in added:
            self.pod.run(["ip", "route", "del", net, "dev", dev], check=False)
            self.peer.run(["ip", "route", "del", net], check=False)
        if where is not self.pod and where is not self.peer and added:
            self.disown(where, q.dst)
        if lent:
            self.own(self.peer, q.dst)
        return problems

    def _invalid(self, p) -> List[str]:
        q = p.query
        sender = self._sender(q)
        # with nf_conntrack_tcp_loose at its default (1) conntrack picks a lone ACK up as ESTABLISHED; at 0 it is
        # INVALID, which is the packet the probe stands for
        self.pod.run(["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_tcp_loose=0"])
        try:
            out = sender.run([sys.executable, AGENT, "invalid", q.src, q.dst, str(q.dport), str(TIMEOUT)]).stdout
        finally:
            self.pod.run(["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_tcp_loose=1"])
        got = json.loads(out)["result"]
        [o] = p.result.outcomes
        expected = "rst" if o.sender_sees == "delivered" else "timeout"
        return [] if got == expected else [f"{_said(p)}: trace says {o.verdict}/{o.sender_sees}, a lone ACK got "
                                           f"{got}"]


def _mac(ns: Netns, dev: str) -> str:
    return json.loads(ns.run(["ip", "-j", "link", "show", dev]).stdout)[0]["address"]


def trace_said(p) -> str:
    return _said(p)


def _said(p) -> str:
    from kubectl_whose.analysis.netfilter.words.claims import trace_command

    return f"`trace {trace_command(p.query)}`"


def _kernel_end(r: dict) -> Tuple[str, Optional[str], Optional[str]]:
    if r["result"] == "ok":
        reply = r["reply"]
        return "delivered", f"{_address(reply['local'])}:{reply['listen_port']}", _address(reply["peer"])
    return r["result"], None, None


def _compare(p, results: list) -> List[str]:
    """The kernel's ends for one probe against the trace's outcomes."""
    predicted = {}
    for o in p.result.outcomes:
        key = (o.sender_sees, o.destination if o.sender_sees == "delivered" else None)
        predicted[key] = o
    seen = collections.Counter()
    problems = []
    for r in results:
        kind, where, peer = _kernel_end(r)
        key = (kind, where)
        seen[key] += 1
        o = predicted.get(key)
        if o is None:
            problems.append(f"{_said(p)}: the kernel says {kind} {where or ''} (peer {peer}), trace says "
                            + ", ".join(f"{x.verdict}/{x.sender_sees} {x.destination}" for x in p.result.outcomes))
            break
        nat_source = any(s.startswith(("SNAT", "MASQUERADE")) for s in o.nat)
        if kind == "delivered" and nat_source and peer != _address(o.source):
            problems.append(f"{_said(p)}: the receiver saw the connection from {peer}, trace says {o.source}")
            break
    if not problems and len(results) > 1:
        missing = [k for k in predicted if k not in seen]
        if missing:
            problems.append(f"{_said(p)}: {len(results)} connections never reached {missing}")
    return problems
