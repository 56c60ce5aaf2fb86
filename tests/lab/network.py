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
from typing import Dict, List, Optional

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


class Network:
    """The node namespace and the pods' network plumbing."""

    def __init__(self, pod_cidr: str, cluster_cidr: str, service_cidr: str, node_ip: str = "192.168.50.10/24",
                 routed_cidr: str = "10.244.1.0/26"):
        self.netlab = NetLab(TAG)
        self.pod_net = ipaddress.ip_network(pod_cidr)
        # Routed pods (a Calico-like CNI) take addresses from a block of their own: a bridged pod reaches them
        # through its gateway, and the node routes each with a /32 to its cali* veth.
        self.routed_net = ipaddress.ip_network(routed_cidr)
        self.cluster_cidr = cluster_cidr
        self.service_cidr = service_cidr
        self.gateway = str(next(self.pod_net.hosts()))
        self.dns_ip = str(ipaddress.ip_network(service_cidr)[53])  # kube-dns's ClusterIP (10.96.0.53)
        self.node_cidr = node_ip
        self.node_ip = node_ip.split("/")[0]
        self.node: Optional[Netns] = None
        self._lock = threading.Lock()
        self._veth = 0
        self._used: Dict[str, str] = {}  # ip -> netns

    @property
    def prefix(self) -> str:
        return self.netlab.prefix

    def up(self) -> None:
        sweep_stale()
        node = self.netlab.ns("node")
        self.node = node
        node.run(["ip", "link", "add", BRIDGE, "type", "bridge"])
        node.run(["ip", "addr", "add", f"{self.gateway}/{self.pod_net.prefixlen}", "dev", BRIDGE])
        node.run(["ip", "link", "set", BRIDGE, "up"])
        # The node's own address on an "eth0" with the default route: Service traffic the node itself sends comes
        # from outside the cluster CIDR (so kube-proxy masquerades it). eth0's veth peer stays in the namespace
        # with nothing behind it (no dummy driver here), so nothing can leave.
        node.run(["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "uplink0"])
        node.run(["ip", "link", "set", "uplink0", "up"])
        node.run(["ip", "addr", "add", self.node_cidr, "dev", "eth0"])
        node.run(["ip", "link", "set", "eth0", "up"])
        node.run(["ip", "route", "add", "default", "dev", "eth0"])
        # Routed Service traffic must be un-DNATed on the way back even when the endpoint replies straight
        # over the bridge: real bridge CNIs rely on br_netfilter for exactly this.
        node.run(["sysctl", "-qw", "net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1"])
        # kube-proxy's REJECT for Services without endpoints (the lab's cluster DNS) answers with ICMP; the
        # per-peer ICMP rate limit would turn a burst of lookups into 5 s resolver timeouts.
        node.run(["sysctl", "-qw", "net.ipv4.icmp_ratelimit=0"])

    def allocate_ip(self, wanted: Optional[str] = None, cni: str = "bridge") -> str:
        net = self.routed_net if cni == "routed" else self.pod_net
        with self._lock:
            if wanted and wanted not in self._used:
                self._used[wanted] = ""
                return wanted
            for host in net.hosts():
                ip = str(host)
                if ip != self.gateway and ip not in self._used and (cni == "routed" or int(host.packed[-1]) >= 100):
                    self._used[ip] = ""
                    return ip
        raise RuntimeError(f"pod CIDR {net} exhausted")

    def add_pod(self, short: str, ip: str, cni: str = "bridge") -> Netns:
        """A pod namespace: eth0 on a veth with `ip`, lo up, a default route. `cni` is the style of the talk
        "Packet-level Debugging of Bridged and Non-bridged CNI Plugins": `bridge` puts the host side
        (veth*) on cbr0 and routes via the bridge's address; `routed` (Calico-like) leaves the host side
        (cali*) alone with a /32 route to the pod and proxy ARP for the pod's 169.254.1.1 gateway."""
        assert self.node is not None and cni in CNI_STYLES
        with self._lock:
            self._veth += 1
            n = self._veth
        ns = self.netlab.ns(short)
        if cni == "bridge":
            host_if = f"veth{n:04x}"
            self.netlab.link(ns, "eth0", f"{ip}/{self.pod_net.prefixlen}", self.node, host_if, None)
            self.node.run(["ip", "link", "set", host_if, "master", BRIDGE])
            ns.run(["ip", "route", "add", "default", "via", self.gateway])
        else:
            host_if = f"cali{n:011x}"  # Calico: "cali" + 11 hex characters of a hash of the workload
            self.netlab.link(ns, "eth0", f"{ip}/32", self.node, host_if, None)
            self.node.run(["sysctl", "-qw", f"net.ipv4.conf.{host_if}.proxy_arp=1"])
            self.node.run(["ip", "route", "add", f"{ip}/32", "dev", host_if, "scope", "link"])
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


def rules_file(name: str) -> str:
    return (Path(__file__).parent / "rules" / f"{name}.rules").read_text()
