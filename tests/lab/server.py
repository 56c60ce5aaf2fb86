"""The lab process: network + kubelet + API server, from a topology file; `python -m tests.lab serve`.

It writes `<state>/state.json` (server URL, kubeconfig, pods, IPs, namespaces) once everything is up, and tears
everything down on SIGTERM/SIGINT. A lab killed with SIGKILL is swept by the next one (network.sweep_stale).
"""
from __future__ import annotations

import json
import logging
import os
import platform
import secrets
import signal
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import yaml

from . import certs, workloads
from .apiserver.api import LabAPI
from .apiserver.http import LabHTTPServer, serve_forever_in_thread
from .apiserver.kubelet import Delays, Kubelet
from .apiserver.rbac import Authorizer
from .apiserver.store import Store, now
from .kubeproxy import ServicePort, nat_rules
from .network import Network

LAB_DIR = Path(__file__).resolve().parent
DEFAULT_TOPOLOGY = LAB_DIR / "topology.yaml"
DEFAULT_POLICY = LAB_DIR / "rbac-default.yaml"
IMAGES_ROOT = Path("/run/kubectl-whose-lab/images")  # not under /tmp: every pod has a private /tmp

log = logging.getLogger("lab")


class Lab:
    def __init__(self, state_dir: Path, topology: Path = DEFAULT_TOPOLOGY, tls: bool = True,
                 policy: Path = DEFAULT_POLICY, port: int = 0):
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.topology = yaml.safe_load(Path(topology).read_text())
        self.tls = tls
        self.policy = yaml.safe_load(Path(policy).read_text())
        self.port = port
        self.server: Optional[LabHTTPServer] = None
        self.network: Optional[Network] = None
        self.kubelet: Optional[Kubelet] = None
        self.store = Store()
        self.timings: dict = {}

    def up(self) -> dict:
        t0 = time.monotonic()
        node = self.topology["node"]
        # `node:` is the first node and says the cluster's CIDRs; `nodes:` adds more, on one fabric
        self.network = Network(node["clusterCIDR"], node["serviceCIDR"], [node] + list(self.topology.get("nodes") or []))
        self.network.up()
        self.timings["network"] = time.monotonic() - t0
        self.kubelet = Kubelet(self.store, self.network, node["name"], self.state_dir, IMAGES_ROOT, Delays())
        authorizer = Authorizer(secrets.token_bytes(32), self.policy)
        api = LabAPI(self.store, self.kubelet, authorizer)
        self.api = api
        for ns in ("default", "kube-system", "kube-public"):
            api.create_namespace(ns)
        for lab_node in self.network.nodes.values():
            self.store.create("nodes", _node_object(lab_node.name, lab_node.ip, str(lab_node.pod_net),
                                                    api.server_version.git_version))
        t1 = time.monotonic()
        # Pods come up in parallel (each is a handful of `ip`/`iptables` calls and process starts).
        specs = self.topology.get("pods") or []
        pods = [_pod_object(spec) for spec in specs]
        owners = workloads.plan(self.topology.get("workloads") or [], pods)  # labels and ownerReferences first
        with ThreadPoolExecutor(max_workers=8) as pool:
            futures = [pool.submit(api.add_pod, pod, ip=spec.get("ip"), iptables=spec.get("iptables"))
                       for pod, spec in zip(pods, specs)]
            for f in futures:
                f.result()
        for obj in owners:
            self.store.create(workloads.RESOURCE[obj["kind"]], obj)
        self._wait_ready(t1)
        self.timings["pods"] = time.monotonic() - t1
        self._services(node)
        t2 = time.monotonic()
        tls_ctx, tls_files = None, None
        if self.tls:
            tls_files = certs.make_tls(self.state_dir / "pki")
            tls_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls_ctx.load_cert_chain(tls_files["cert"], tls_files["key"])
            tls_ctx.set_alpn_protocols(["http/1.1"])
        self.timings["tls"] = time.monotonic() - t2
        self.server = LabHTTPServer(("127.0.0.1", self.port), api, api.routes, tls_ctx)
        host, port = self.server.server_address[:2]
        api.host = f"{host}:{port}"
        url = f"{'https' if self.tls else 'http'}://{host}:{port}"
        serve_forever_in_thread(self.server)
        kubeconfig = self.state_dir / "kubeconfig"
        kubeconfig.write_text(certs.kubeconfig(url, tls_files["ca"] if tls_files else None, "admin",
                                               authorizer.token_for("admin")))
        self.timings["total"] = time.monotonic() - t0
        state = {
            "pid": os.getpid(), "server": url, "kubeconfig": str(kubeconfig),
            "ca": str(tls_files["ca"]) if tls_files else None, "namespace": "default",
            "prefix": self.network.prefix, "node": _node_state(self.network.first),
            "nodes": {n.name: _node_state(n) for n in self.network.nodes.values()},
            "services": [{"name": s["name"], "namespace": s.get("namespace", "default"), "clusterIP": s["clusterIP"],
                          "ports": s["ports"]}
                         for s in self.topology.get("services") or []],
            "pods": {rt.name: {"namespace": rt.namespace, "ip": rt.ip, "netns": rt.netns,
                               "init_pid": rt.sandbox.init_pid,
                               "containers": list(rt.containers)} for rt in self.kubelet.pods.values()},
            "bringup_seconds": {k: round(v, 3) for k, v in self.timings.items()},
        }
        tmp = self.state_dir / "state.json.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        tmp.rename(self.state_dir / "state.json")
        return state

    def _wait_ready(self, since: float, timeout: float = 60) -> None:
        """Until every topology pod is Ready (its declared ports listen), as a rollout would wait."""
        names = {p["name"] for p in self.topology.get("pods") or []}
        while time.monotonic() - since < timeout:
            ready = self.store.names("pods", "default", lambda p: any(
                c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions", [])))
            if names <= ready:
                return
            time.sleep(0.05)
        raise RuntimeError(f"pods not ready after {timeout} s: {sorted(names - ready)}")

    def _services(self, node: dict) -> None:
        sps = []
        for svc in self.topology.get("services") or []:
            svc_ns = svc.get("namespace", "default")
            pods, _ = self.store.list("pods", svc_ns)
            sel = svc.get("selector") or {}
            eps = [p for p in pods if all((p["metadata"].get("labels") or {}).get(k) == v for k, v in sel.items())]
            subsets = []
            for port in svc["ports"]:
                targets = [f'{p["status"]["podIP"]}:{port["targetPort"]}' for p in eps]
                sps.append(ServicePort(svc_ns, svc["name"], port.get("name", ""), svc["clusterIP"], port["port"],
                                       port.get("protocol", "TCP"), targets))
                subsets.append({"addresses": [{"ip": p["status"]["podIP"], "nodeName": p["spec"]["nodeName"],
                                               "targetRef": {"kind": "Pod", "namespace": svc_ns,
                                                             "name": p["metadata"]["name"],
                                                             "uid": p["metadata"]["uid"]}} for p in eps],
                                "ports": [{"name": port.get("name", ""), "port": port["targetPort"],
                                           "protocol": port.get("protocol", "TCP")}]})
            self.store.create("services", {
                "kind": "Service", "apiVersion": "v1",
                "metadata": {"name": svc["name"], "namespace": svc_ns},
                "spec": {"type": "ClusterIP", "clusterIP": svc["clusterIP"], "clusterIPs": [svc["clusterIP"]],
                         "selector": sel, "ports": svc["ports"], "sessionAffinity": "None"}, "status": {}})
            self.store.create("endpoints", {"kind": "Endpoints", "apiVersion": "v1",
                                            "metadata": {"name": svc["name"], "namespace": svc_ns},
                                            "subsets": subsets})
            service = self.store.get("services", svc_ns, svc["name"])
            self.store.create("endpointslices", workloads.endpoint_slice(service, eps, node["name"]))
        for lab_node in self.network.nodes.values():  # kube-proxy writes the same rules on every node
            self.network.load_rules(lab_node.ns, node.get("proxyBackend", "nft"), nat_rules(sps, node["clusterCIDR"]))

    def drain(self, timeout: float = 60.0) -> None:
        """The first half of a graceful shutdown, as kube-apiserver's: stop accepting, then let the exec streams
        in flight finish (up to `timeout`) before anything is torn down."""
        if self.server is None or self.api is None:
            return
        self.server.shutdown()
        self.server.server_close()
        if not self.api.wait_for_streams(timeout):
            log.info("graceful shutdown: %d exec streams still open after %g s", self.api.streams, timeout)

    def down(self) -> None:
        if self.server is not None:
            self.store.close()
            self.server.shutdown()
            self.server.server_close()
        if self.kubelet is not None:
            self.kubelet.shutdown()
        if self.network is not None:
            self.network.down()
        for name in ("state.json", "lab.pid"):
            try:
                (self.state_dir / name).unlink()
            except FileNotFoundError:
                pass


def _pod_object(spec: dict) -> dict:
    from .apiserver.ephemeral import default_container
    from .apiserver.kubelet import CNI_ANNOTATION
    import copy
    containers = [default_container(copy.deepcopy(c)) for c in spec["containers"]]
    return {"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": spec["name"], "namespace": spec.get("namespace", "default"),
                         "labels": dict(spec.get("labels") or {}),
                         "annotations": {**dict(spec.get("annotations") or {}),
                                         **({CNI_ANNOTATION: spec["cni"]} if spec.get("cni") else {})}},
            "spec": {"containers": containers, "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                     "dnsPolicy": "ClusterFirst", "serviceAccountName": "default", "serviceAccount": "default",
                     "securityContext": dict(spec.get("securityContext") or {}), "schedulerName": "default-scheduler",
                     "enableServiceLinks": True, "priority": 0,
                     **({"shareProcessNamespace": True} if spec.get("shareProcessNamespace") else {}),
                     **({"nodeName": spec["node"]} if spec.get("node") else {})},
            "status": {"phase": "Pending"}}


def _node_state(node) -> dict:
    return {"name": node.name, "netns": node.ns.name, "gateway": node.gateway, "ip": node.ip,
            "pod_cidr": str(node.pod_net)}


def _node_object(name: str, ip: str, pod_cidr: str, kubelet_version: str) -> dict:
    os_image = "Linux"
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                os_image = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {"kind": "Node", "apiVersion": "v1",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                                  "kubernetes.io/arch": arch}},
            "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                       "message": "kubelet is posting ready status", "lastHeartbeatTime": now(),
                                       "lastTransitionTime": now()}],
                       "nodeInfo": {"architecture": arch, "operatingSystem": "linux", "osImage": os_image,
                                    "kernelVersion": platform.release(),
                                    "containerRuntimeVersion": "containerd://1.7.24-lab",
                                    "kubeletVersion": kubelet_version, "kubeProxyVersion": kubelet_version}}}


def serve(state_dir: Path, topology: Path, tls: bool, port: int = 0, parent: int = 0) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=str(state_dir / "lab.log"), level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    lab = Lab(state_dir, topology, tls=tls, port=port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    (state_dir / "lab.pid").write_text(str(os.getpid()))
    if parent:
        # A test session that dies (even by SIGKILL) must not leave its lab running: follow the parent.
        def watch_parent():
            while not stop.wait(0.5):
                if os.getppid() != parent:
                    log.info("parent %d is gone: tearing down", parent)
                    stop.set()
        threading.Thread(target=watch_parent, daemon=True).start()
    try:
        state = lab.up()
        log.info("lab up: %s", json.dumps(state["bringup_seconds"]))
        stop.wait()
        lab.drain()
    finally:
        lab.down()
        log.info("lab down")
