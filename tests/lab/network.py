"""The lab's network: a node namespace with a bridge and kube-proxy rules, one namespace per pod.

Names follow `tests/helpers/netns.py` (`kwL<pid>-<short>`), so a run never touches another run's state and
`sweep_stale()` can remove what a killed run left (it also ends the processes still living in those
namespaces: they can only be that run's pods).
"""
from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import threading
from pathlib import Path
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from tests.helpers.netns import NetLab, Netns

TAG = "L"
BRIDGE = "cbr0"
# Calico's link-local gateway: a routed pod's default route points at it and the host side answers its ARP
# (proxy_arp), so no address of the node's is needed in the pod (projectcalico docs, "Why 169.254.1.1").
ROUTED_GATEWAY = "169.254.1.1"
CNI_STYLES = ("bridge", "routed")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def sweep_stale(tag: str = TAG) -> List[str]:
    """Delete `kw<tag><pid>-*` namespaces whose lab process is gone, ending the processes inside them first."""
    removed = []
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith("kw" + tag):
            continue
        pid = name[len("kw" + tag):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() % 100000 or _lab_alive(int(pid)):
            continue
        kill_namespace_processes(name)
        _ip("netns", "del", name, check=False)
        removed.append(name)
    return removed


def _lab_alive(pid: int) -> bool:
    # The prefix holds pid % 100000; a live process with that pid is assumed to own it (never sweep a live run).
    return os.path.exists(f"/proc/{pid}")


def kill_namespace_processes(netns: str) -> None:
    """SIGKILL every process in one of OUR namespaces (pause processes, containers, execs left by a killed run)."""
    pids = _ip("netns", "pids", netns, check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


@dataclass
class LabNode:
    """One node: its namespace (bridge cbr0 with the pods' gateway, eth0 with the node IP on the fabric), and
    the address blocks of its bridged and routed pods."""

    name: str
    ns: Netns
    pod_net: ipaddress.IPv4Network
    routed_net: ipaddress.IPv4Network
    cidr: str  # the node IP with its prefix, on eth0

    @property
    def ip(self) -> str:
        return self.cidr.split("/")[0]

    @property
    def gateway(self) -> str:
        return str(next(self.pod_net.hosts()))


class Network:
    """The nodes' namespaces, the fabric joining them, and the pods' network plumbing.

    Nodes are joined as flannel's host-gw backend joins them: every node's eth0 sits on one layer-2 segment
    (the `fabric` namespace's bridge), and each node routes the other nodes' pod blocks via their node IPs.
    Nothing else is on that segment, so nothing leaves the lab."""

    def __init__(self, cluster_cidr: str, service_cidr: str, nodes: Sequence[dict]):
        self.netlab = NetLab(TAG)
        self.cluster_cidr = cluster_cidr
        self.service_cidr = service_cidr
        self.dns_ip = str(ipaddress.ip_network(service_cidr)[53])  # kube-dns's ClusterIP (10.96.0.53)
        self.node_specs = list(nodes)
        self.nodes: Dict[str, LabNode] = {}
        self._lock = threading.Lock()
        self._veth = 0
        self._used: Dict[str, str] = {}  # ip -> netns

    @property
    def prefix(self) -> str:
        return self.netlab.prefix

    @property
    def first(self) -> LabNode:
        return next(iter(self.nodes.values()))

    def node_named(self, name: Optional[str]) -> Optional[LabNode]:
        return self.first if name is None else self.nodes.get(name)

    def up(self) -> None:
        sweep_stale()
        fabric = self.netlab.ns("fabric")
        fabric.run(["ip", "link", "add", "br0", "type", "bridge"])
        fabric.run(["ip", "link", "set", "br0", "up"])
        for i, spec in enumerate(self.node_specs):
            # the first node keeps the short name "node" (kwL<pid>-node), as tests and scripts know it
            ns = self.netlab.ns("node" if i == 0 else f"node{i + 1}")
            node = LabNode(spec["name"], ns, ipaddress.ip_network(spec["podCIDR"]),
                           ipaddress.ip_network(spec.get("routedCIDR") or _routed_default(spec["podCIDR"])),
                           spec.get("nodeIP") or f"192.168.50.{10 + i}/24")
            self.nodes[node.name] = node
            ns.run(["ip", "link", "add", BRIDGE, "type", "bridge"])
            ns.run(["ip", "addr", "add", f"{node.gateway}/{node.pod_net.prefixlen}", "dev", BRIDGE])
            ns.run(["ip", "link", "set", BRIDGE, "up"])
            # The node's own address on eth0 with the default route: Service traffic the node itself sends comes
            # from outside the cluster CIDR (so kube-proxy masquerades it).
            self.netlab.link(ns, "eth0", node.cidr, fabric, f"up{i}", None)
            fabric.run(["ip", "link", "set", f"up{i}", "master", "br0"])
            ns.run(["ip", "route", "add", "default", "dev", "eth0"])
            # Routed Service traffic must be un-DNATed on the way back even when the endpoint replies straight
            # over the bridge: real bridge CNIs rely on br_netfilter for exactly this.
            ns.run(["sysctl", "-qw", "net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1"])
            # kube-proxy's REJECT for Services without endpoints (the lab's cluster DNS) answers with ICMP; the
            # per-peer ICMP rate limit would turn a burst of lookups into 5 s resolver timeouts.
            ns.run(["sysctl", "-qw", "net.ipv4.icmp_ratelimit=0"])
        for node in self.nodes.values():
            for other in self.nodes.values():
                if other is not node:
                    for block in (other.pod_net, other.routed_net):
                        node.ns.run(["ip", "route", "add", str(block), "via", other.ip, "dev", "eth0"])

    def allocate_ip(self, wanted: Optional[str] = None, cni: str = "bridge", node: Optional[str] = None) -> str:
        lab_node = self.node_named(node)
        net = lab_node.routed_net if cni == "routed" else lab_node.pod_net
        with self._lock:
            if wanted and wanted not in self._used:
                self._used[wanted] = ""
                return wanted
            for host in net.hosts():
                ip = str(host)
                if ip != lab_node.gateway and ip not in self._used and (cni == "routed" or int(host.packed[-1]) >= 100):
                    self._used[ip] = ""
                    return ip
        raise RuntimeError(f"pod CIDR {net} exhausted")

    def add_pod(self, short: str, ip: str, cni: str = "bridge", node: Optional[str] = None) -> Netns:
        """A pod namespace on `node`: eth0 on a veth with `ip`, lo up, a default route. `cni` is the style of
        the talk "Packet-level Debugging of Bridged and Non-bridged CNI Plugins": `bridge` puts the host side
        (veth*) on cbr0 and routes via the bridge's address; `routed` (Calico-like) leaves the host side
        (cali*) alone with a /32 route to the pod and proxy ARP for the pod's 169.254.1.1 gateway."""
        lab_node = self.node_named(node)
        assert lab_node is not None and cni in CNI_STYLES
        host = lab_node.ns
        with self._lock:
            self._veth += 1
            n = self._veth
        ns = self.netlab.ns(short)
        if cni == "bridge":
            host_if = f"veth{n:04x}"
            self.netlab.link(ns, "eth0", f"{ip}/{lab_node.pod_net.prefixlen}", host, host_if, None)
            host.run(["ip", "link", "set", host_if, "master", BRIDGE])
            ns.run(["ip", "route", "add", "default", "via", lab_node.gateway])
        else:
            host_if = f"cali{n:011x}"  # Calico: "cali" + 11 hex characters of a hash of the workload
            self.netlab.link(ns, "eth0", f"{ip}/32", host, host_if, None)
            host.run(["sysctl", "-qw", f"net.ipv4.conf.{host_if}.proxy_arp=1"])
            host.run(["ip", "route", "add", f"{ip}/32", "dev", host_if, "scope", "link"])
            ns.run(["ip", "route", "add", ROUTED_GATEWAY, "dev", "eth0", "scope", "link"])
            ns.run(["ip", "route", "add", "default", "via", ROUTED_GATEWAY, "dev", "eth0"])
        with self._lock:
            self._used[ip] = ns.name
        return ns

    def remove_pod(self, short: str) -> None:
        ns = self.netlab.namespaces.pop(short, None)
        if ns is None:
            return
        kill_namespace_processes(ns.name)
        _ip("netns", "del", ns.name, check=False)
        with self._lock:
            for ip, name in list(self._used.items()):
                if name == ns.name:
                    del self._used[ip]

    def load_rules(self, ns: Netns, backend: str, rules: str) -> None:
        """iptables-restore (`legacy` or `nft` backend) into a namespace."""
        ns.run([f"iptables-{backend}-restore"], input=rules)

    def down(self) -> None:
        for ns in list(self.netlab.namespaces.values()):
            kill_namespace_processes(ns.name)
        self.netlab.close()


def _routed_default(pod_cidr: str) -> str:
    """The first node's routed block was 10.244.1.0/26 next to its 10.244.0.0/24: the /26 after the /24."""
    net = ipaddress.ip_network(pod_cidr)
    return str(ipaddress.ip_network(f"{net.broadcast_address + 1}/26"))


def rules_file(name: str) -> str:
    return (Path(__file__).parent / "rules" / f"{name}.rules").read_text()
