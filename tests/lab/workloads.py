"""The topology's workloads as the controllers would have left them: a Deployment owns a ReplicaSet, which owns
its pods (with the pod-template-hash label it selects); a StatefulSet, DaemonSet or Job owns its pods directly.
Nothing reconciles here: the objects only say who owns what and which labels select it, which is all a
`deploy/NAME` or `svc/NAME` target resolves through. EndpointSlices carry each Service's ready endpoints with
their pods as targetRefs, as the EndpointSlice controller writes them."""
from __future__ import annotations

import hashlib
import uuid
from typing import Dict, List

API = {"Deployment": "apps/v1", "ReplicaSet": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1",
       "Job": "batch/v1"}
RESOURCE = {"Deployment": "deployments", "ReplicaSet": "replicasets", "StatefulSet": "statefulsets",
            "DaemonSet": "daemonsets", "Job": "jobs"}


def _matches(selector: Dict[str, str], labels: Dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def plan(workloads: List[dict], pods: List[dict]) -> List[dict]:
    """Label the pod objects and set their ownerReferences (before they are stored); return the workload objects
    to store, owners first."""
    objects = []
    for w in workloads:
        ns, kind, name, sel = w.get("namespace", "default"), w["kind"], w["name"], dict(w["selector"])
        uid = str(uuid.uuid4())
        meta = {"name": name, "namespace": ns, "uid": uid, "labels": dict(sel)}
        owned = [p for p in pods if p["metadata"]["namespace"] == ns and _matches(sel, p["metadata"]["labels"])]
        spec = {"selector": {"matchLabels": sel}, "replicas": len(owned),
                "template": {"metadata": {"labels": dict(sel)}, "spec": {}}}
        owner = {"apiVersion": API[kind], "kind": kind, "name": name, "uid": uid, "controller": True,
                 "blockOwnerDeletion": True}
        objects.append({"kind": kind, "apiVersion": API[kind], "metadata": meta, "spec": spec,
                        "status": {"replicas": len(owned), "readyReplicas": len(owned)}})
        if kind == "Deployment":
            template_hash = hashlib.sha256(f"{ns}/{name}".encode()).hexdigest()[:10]
            rs_uid = str(uuid.uuid4())
            rs_sel = {**sel, "pod-template-hash": template_hash}
            objects.append({"kind": "ReplicaSet", "apiVersion": "apps/v1",
                            "metadata": {"name": f"{name}-{template_hash}", "namespace": ns, "uid": rs_uid,
                                         "labels": rs_sel, "ownerReferences": [owner]},
                            "spec": {"selector": {"matchLabels": rs_sel}, "replicas": len(owned),
                                     "template": {"metadata": {"labels": rs_sel}, "spec": {}}},
                            "status": {"replicas": len(owned), "readyReplicas": len(owned)}})
            owner = {**owner, "kind": "ReplicaSet", "name": f"{name}-{template_hash}", "uid": rs_uid}
            for p in owned:
                p["metadata"]["labels"]["pod-template-hash"] = template_hash
        for p in owned:
            p["metadata"]["ownerReferences"] = [owner]
    return objects


def endpoint_slice(service: dict, pods: List[dict], node: str) -> dict:
    """The Service's EndpointSlice (one per Service here): its ready endpoints, their pods and node."""
    ns, name = service["metadata"]["namespace"], service["metadata"]["name"]
    return {"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
            "metadata": {"name": f"{name}-{hashlib.sha256(name.encode()).hexdigest()[:5]}", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": name,
                                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": name,
                                              "uid": service["metadata"].get("uid", ""), "controller": True}]},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [p["status"]["podIP"]], "conditions": {"ready": True, "serving": True,
                                                                            "terminating": False},
                           "nodeName": p["spec"].get("nodeName", node),
                           "targetRef": {"kind": "Pod", "namespace": ns, "name": p["metadata"]["name"],
                                         "uid": p["metadata"]["uid"]}} for p in pods],
            "ports": [{"name": port.get("name", ""), "port": port["targetPort"], "protocol": port.get("protocol", "TCP")}
                      for port in service["spec"]["ports"]]}
