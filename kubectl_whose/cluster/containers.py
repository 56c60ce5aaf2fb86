"""The debug containers kubectl-whose added to a pod, as a listing (`ps`): what each is and whether the next
run reuses it. Ephemeral containers can never be removed, so this is where a user sees what we left."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import List, Optional


@dataclass
class Row:
    name: str
    image: str
    target: Optional[str]
    state: str
    reason: str
    started: Optional[str]
    ttl_seconds: Optional[int]
    remaining_seconds: Optional[int]
    reusable: bool
    capabilities: List[str]

    def to_dict(self):
        return dict(self.__dict__)


@dataclass
class NodePodRow:
    """A node debug pod of `--node` made for this pod, while it lives (it is deleted when its run ends)."""

    name: str
    namespace: str
    node: str
    image: str
    state: str
    reason: str
    remaining_seconds: Optional[int]

    def to_dict(self):
        return dict(self.__dict__)


@dataclass
class Listing:
    pod: str
    namespace: str
    containers: List[Row]
    node_pods: List[NodePodRow] = field(default_factory=list)

    def to_dict(self):
        return {"pod": self.pod, "namespace": self.namespace, "containers": [r.to_dict() for r in self.containers],
                "node_pods": [r.to_dict() for r in self.node_pods]}


def build_listing(pod_obj: dict, namespace: str, image: Optional[str], now: float) -> Listing:
    from kubectl_whose.cluster.debug_container import DebugSpec, debug_containers
    from kubectl_whose.cluster.image import resolve_image

    spec = DebugSpec(image=resolve_image(image))
    rows = []
    for v in debug_containers(pod_obj):
        left = v.remaining(now)
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(v.started_at)) if v.started_at else None
        rows.append(Row(name=v.name, image=v.image, target=v.target, state=v.state, reason=v.reason,
                        started=started, ttl_seconds=v.ttl_seconds,
                        remaining_seconds=int(left) if left is not None and left > 0 else (0 if left else None),
                        reusable=bool(v.matches(spec) and left is not None and left > 60),
                        capabilities=list(v.capabilities)))
    return Listing((pod_obj.get("metadata") or {}).get("name", "?"), namespace, rows)


def node_pod_rows(pods: List[dict], namespace: str, pod: str, now: float) -> List[NodePodRow]:
    from kubectl_whose.cluster.node_pod import node_pods

    rows = []
    for v in node_pods(pods, namespace, pod):
        left = v.remaining(now)
        rows.append(NodePodRow(v.name, v.namespace, v.node, v.image, v.state, v.reason,
                               int(left) if left is not None and left > 0 else None))
    return rows


def list_node_pods(cluster, pod: str, node_namespace):
    """Our node debug pods for POD in the node namespace; none when that namespace may not be listed."""
    from kubectl_whose.cluster.config_file import config_value
    from kubectl_whose.cluster.node_pod import MANAGED_BY
    from kubectl_whose.cluster.rest import ApiError

    ns = node_namespace or config_value("node_namespace") or cluster.namespace
    try:
        pods = cluster.rest.get(f"/api/v1/namespaces/{ns}/pods", {"labelSelector": f"{MANAGED_BY}=kubectl-whose"})
    except ApiError:
        return []
    return node_pod_rows(pods.get("items") or [], cluster.namespace, pod, time.time())
