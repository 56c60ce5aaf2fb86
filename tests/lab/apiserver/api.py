"""The API server's state (store, kubelet, authorizer, switches) and its route table."""
from __future__ import annotations

import logging
import threading
from typing import Optional

from . import discovery, groups, routes_core as core, routes_debug as debug, versions
from .http import Request, compile_routes
from .kubelet import Kubelet
from .rbac import Authorizer
from .store import Store, now

log = logging.getLogger("lab.apiserver")


class LabAPI:
    def __init__(self, store: Store, kubelet: Kubelet, authorizer: Authorizer, host: str = ""):
        self.store, self.kubelet, self.authorizer = store, kubelet, authorizer
        self.host = host
        # `version`: the release the lab presents itself as and whose rules it enforces (versions.py)
        self.config = {"version": versions.DEFAULT, "dropExecAfterBytes": 0}
        self.routes = compile_routes(_route_table())
        self._pod_extras: dict = {}
        self.streams = 0  # exec/attach streams in flight: a graceful shutdown lets them finish
        self.streams_changed = threading.Condition()

    def stream_started(self) -> None:
        with self.streams_changed:
            self.streams += 1

    def stream_ended(self) -> None:
        with self.streams_changed:
            self.streams -= 1
            self.streams_changed.notify_all()

    def wait_for_streams(self, timeout: float) -> bool:
        """Until no exec/attach stream is in flight, or `timeout`; True when none is."""
        with self.streams_changed:
            return self.streams_changed.wait_for(lambda: self.streams == 0, timeout)

    @property
    def server_version(self) -> versions.ServerVersion:
        return versions.parse(self.config["version"])

    # -- namespaces --------------------------------------------------------------------------------------------
    def create_namespace(self, name: str, labels: Optional[dict] = None) -> dict:
        labels = dict(labels or {})
        labels["kubernetes.io/metadata.name"] = name
        return self.store.create("namespaces", {
            "kind": "Namespace", "apiVersion": "v1", "metadata": {"name": name, "labels": labels},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})

    def delete_namespace(self, name: str) -> dict:
        obj = self.store.get("namespaces", "", name)
        pods, _ = self.store.list("pods", name)

        def finish():
            for p in pods:
                self._delete_pod_now(name, p["metadata"]["name"])
            try:
                self.store.delete("namespaces", "", name)
            except Exception:
                pass
        self.store.update("namespaces", "", name, lambda o: o.setdefault("status", {}).update(phase="Terminating"))
        threading.Thread(target=finish, daemon=True).start()
        obj["status"] = {"phase": "Terminating"}
        return obj

    # -- pods --------------------------------------------------------------------------------------------------
    def add_pod(self, pod: dict, ip: Optional[str] = None, iptables: Optional[dict] = None) -> dict:
        """Store a pod and run it now (topology pods, fixed IPs and rules)."""
        created = self.store.create("pods", pod)
        self.kubelet.run_pod(created, ip=ip, iptables=iptables)
        return self.store.get("pods", created["metadata"]["namespace"], created["metadata"]["name"])

    def run_pod(self, pod: dict) -> None:
        try:
            self.kubelet.run_pod(pod)
        except Exception:
            log.exception("could not run pod %s/%s", pod["metadata"]["namespace"], pod["metadata"]["name"])

    def delete_pod(self, namespace: str, name: str) -> dict:
        def mark(o):
            o["metadata"]["deletionTimestamp"] = now()
            o["metadata"]["deletionGracePeriodSeconds"] = 0
        obj = self.store.update("pods", namespace, name, mark)
        threading.Thread(target=self._delete_pod_now, args=(namespace, name), daemon=True).start()
        return obj

    def _delete_pod_now(self, namespace: str, name: str) -> None:
        self.kubelet.delete_pod(namespace, name)
        try:
            self.store.delete("pods", namespace, name)
        except Exception:
            pass


def _static(fn):
    def route(req: Request):
        return 200, fn(req)
    return route


def _route_table():
    return [
        ("/version", {"GET": _static(lambda r: discovery.version(r.api.server_version))}),
        ("/api", {"GET": _static(lambda r: discovery.api_versions(r.api.host))}),
        ("/apis", {"GET": _static(lambda r: discovery.api_groups(r.api.server_version))}),
        ("/api/v1", {"GET": _static(lambda r: discovery.core_v1(r.api.server_version))}),
        ("/apis/authorization.k8s.io", {"GET": _static(lambda r: discovery.api_group("authorization.k8s.io"))}),
        ("/apis/authorization.k8s.io/v1", {"GET": _static(lambda r: discovery.authorization_v1())}),
        ("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {"POST": debug.ssar}),
        ("/apis/authentication.k8s.io", {"GET": debug.served_from_1_28(
            lambda r: (200, discovery.api_group("authentication.k8s.io")))}),
        ("/apis/authentication.k8s.io/v1", {"GET": debug.served_from_1_28(
            lambda r: (200, discovery.authentication_v1()))}),
        ("/apis/authentication.k8s.io/v1/selfsubjectreviews", {"POST": debug.served_from_1_28(debug.self_review)}),
        ("/api/v1/namespaces", {"GET": core.namespaces, "POST": core.namespaces}),
        ("/api/v1/namespaces/{name}", {m: core.namespace for m in ("GET", "PATCH", "PUT", "DELETE")}),
        ("/api/v1/pods", {"GET": core.pods_all}),
        ("/api/v1/namespaces/{ns}/pods", {"GET": core.pods, "POST": core.pods}),
        ("/api/v1/namespaces/{ns}/pods/{name}", {m: core.pod for m in ("GET", "PATCH", "PUT", "DELETE")}),
        ("/api/v1/namespaces/{ns}/pods/{name}/status", {"GET": core.pod_status}),
        ("/api/v1/namespaces/{ns}/pods/{name}/log", {"GET": core.pod_log}),
        ("/api/v1/namespaces/{ns}/pods/{name}/ephemeralcontainers",
         {m: debug.ephemeral_containers for m in ("GET", "PATCH", "PUT", "POST", "DELETE")}),
        ("/api/v1/namespaces/{ns}/pods/{name}/exec", {"GET": debug.pod_exec, "POST": debug.pod_exec}),
        ("/api/v1/namespaces/{ns}/pods/{name}/attach", {"GET": debug.pod_attach, "POST": debug.pod_attach}),
        ("/api/v1/nodes", {"GET": core.nodes}),
        ("/api/v1/nodes/{name}", {"GET": core.node}),
        ("/api/v1/services", {"GET": core.namespaced_list("services")}),
        ("/api/v1/namespaces/{ns}/services", {"GET": core.namespaced_list("services")}),
        ("/api/v1/namespaces/{ns}/services/{name}", {"GET": core.namespaced_get("services")}),
        ("/api/v1/endpoints", {"GET": core.namespaced_list("endpoints")}),
        ("/api/v1/namespaces/{ns}/endpoints", {"GET": core.namespaced_list("endpoints")}),
        ("/api/v1/namespaces/{ns}/endpoints/{name}", {"GET": core.namespaced_get("endpoints")}),
        *groups.routes(),
        ("/lab/v1/config", {"GET": debug.lab_config, "PUT": debug.lab_config}),
        ("/lab/v1/rbac", {"GET": debug.lab_rbac, "PUT": debug.lab_rbac}),
        ("/lab/v1/tokens/{user}", {"GET": debug.lab_token}),
        ("/lab/v1/pods", {"GET": debug.lab_pods}),
        ("/lab/v1/compact", {"POST": debug.lab_compact}),
    ]
