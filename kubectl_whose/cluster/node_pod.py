"""The node debug pod of `--node`: where a namespace's PodSecurity forbids NET_RAW, capture from the node.

Shape (kubectl's `generateNodeDebugPod` with the netadmin profile, narrowed):
- `hostNetwork: true` and NET_ADMIN + NET_RAW, run as root; never `privileged`, no hostPID, no host
  filesystem, no service-account token (the pod does not talk to the API);
- `nodeName` pins it to the target pod's node, and a toleration of everything lets it land on a tainted one;
- `activeDeadlineSeconds` = its idle time, so a laptop that dies mid-capture still leaves no capability
  running (the kubelet kills it); unlike an ephemeral container it is deleted when the run ends;
- labels name who made it and for which pod, so `ps` can list it while it lives.
The pure builder is separate from the API steps, as for the ephemeral container.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional
from urllib.parse import quote

from kubectl_whose.cluster.debug_container import (CAPABILITIES, DebugSpec, add_capability, container_state,
                                                  run_as_root)
from kubectl_whose.errors import ExitCode, WhoseError

NODE_POD_PREFIX = "whose-node-"
CONTAINER = "debug"
MANAGED_BY = "app.kubernetes.io/managed-by"
TARGET_NAMESPACE = "kubectl-whose.io/target-namespace"
TARGET_POD = "kubectl-whose.io/target-pod"


def build_node_pod(node: str, spec: DebugSpec, target_namespace: str, target_pod: str, suffix: str,
                   enter: bool = False) -> dict:
    """`enter` (--node-nsenter): also hostPID and SYS_ADMIN+SYS_PTRACE, what `nsenter -t PID -n` needs to enter the
    pod's network namespace from the node."""
    from kubectl_whose.cluster.debug_choice import ENTER_CAPABILITIES

    container = {"name": CONTAINER, "image": spec.image, "command": ["sleep", str(int(spec.ttl_seconds))],
                 "terminationMessagePolicy": "File", "resources": {}}
    for cap in CAPABILITIES + (ENTER_CAPABILITIES if enter else ()):
        add_capability(container, cap)
    run_as_root(container)
    labels = {MANAGED_BY: "kubectl-whose", TARGET_NAMESPACE: target_namespace[:63]}
    if len(target_pod) <= 63:  # a label value's limit; the annotation always holds the whole name
        labels[TARGET_POD] = target_pod
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": NODE_POD_PREFIX + suffix, "labels": labels,
                     "annotations": {"kubectl-whose.io/target": f"{target_namespace}/{target_pod}"}},
        "spec": {
            "nodeName": node, "hostNetwork": True, "restartPolicy": "Never",
            "activeDeadlineSeconds": int(spec.ttl_seconds), "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": False, "enableServiceLinks": False,
            "tolerations": [{"operator": "Exists"}],
            "containers": [container],
            **({"hostPID": True} if enter else {}),
        },
    }


def node_of(pod: dict) -> str:
    return (pod.get("spec") or {}).get("nodeName") or ""


def pod_ip(pod: dict) -> str:
    status = pod.get("status") or {}
    ips = [p.get("ip") for p in status.get("podIPs") or [] if p.get("ip")] or [status.get("podIP")]
    ip = next((i for i in ips if i and ":" not in i), None) or next((i for i in ips if i), None)
    if not ip:
        name = (pod.get("metadata") or {}).get("name", "?")
        raise WhoseError(f'pod "{name}" has no IP address yet; wait until it runs', ExitCode.POD_NOT_RUNNING)
    return ip


def check_node_ready(node: dict) -> None:
    name = (node.get("metadata") or {}).get("name", "?")
    ready = next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is not None and ready.get("status") != "True":
        why = ready.get("message") or ready.get("reason") or f"Ready={ready.get('status')}"
        raise WhoseError(f"node {name} is not Ready ({why}); a node debug pod cannot start there",
                         ExitCode.POD_NOT_RUNNING)


@dataclass(frozen=True)
class NodePodView:
    """One of our node debug pods, for `ps`."""

    name: str
    namespace: str
    node: str
    target: str
    image: str
    state: str
    reason: str
    started_at: Optional[float]
    deadline_seconds: Optional[int]

    def remaining(self, now: float) -> Optional[float]:
        if self.state != "running" or not self.started_at or not self.deadline_seconds:
            return None
        return self.started_at + self.deadline_seconds - now


def node_pods(pods: List[dict], target_namespace: str, target_pod: str) -> List[NodePodView]:
    """Our node debug pods (from a pod list) made for that target."""
    out = []
    for p in pods:
        meta, spec = p.get("metadata") or {}, p.get("spec") or {}
        if (meta.get("labels") or {}).get(MANAGED_BY) != "kubectl-whose" or \
                (meta.get("annotations") or {}).get("kubectl-whose.io/target") != f"{target_namespace}/{target_pod}":
            continue
        status = next((s for s in (p.get("status") or {}).get("containerStatuses") or []
                       if s.get("name") == CONTAINER), None)
        state, reason, _message, started = container_state(status)
        phase = (p.get("status") or {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            state, reason = "terminated", (p.get("status") or {}).get("reason") or phase
        image = next((c.get("image", "") for c in spec.get("containers") or [] if c.get("name") == CONTAINER), "")
        out.append(NodePodView(meta.get("name", ""), meta.get("namespace", ""), spec.get("nodeName", ""),
                               f"{target_namespace}/{target_pod}", image, state, reason, started,
                               spec.get("activeDeadlineSeconds")))
    return out


# --- API steps --------------------------------------------------------------------------------------------------

def create_node_pod(cluster, body: dict, dry_run: bool = False) -> dict:
    """POST the pod in `cluster.namespace`; the answers that will not get better become one line each."""
    from kubectl_whose.cluster.client import parse_status, rbac_error
    from kubectl_whose.cluster.rest import ApiError

    ns = cluster.namespace
    try:
        return cluster.rest.post(f"/api/v1/namespaces/{quote(ns)}/pods", body,
                                 query={"dryRun": "All"} if dry_run else None)
    except ApiError as e:
        status = parse_status(e.status, e.body)
        words = f"(server: {status.message or f'HTTP {e.status}'})"
        if e.status == 403 and "violates PodSecurity" in status.message:
            raise WhoseError(f'namespace "{ns}" does not allow the node debug pod: its PodSecurity level forbids '
                             f"hostNetwork and NET_ADMIN/NET_RAW; pass --node-namespace with a namespace labelled "
                             f"pod-security.kubernetes.io/enforce=privileged (or set node_namespace: in "
                             f"~/.config/kubectl-whose/config.yaml) {words}", ExitCode.ADMISSION_REJECTED) from None
        if e.status == 403:
            raise rbac_error(status, ns, None, "create", words) from None
        if e.status == 404:
            raise WhoseError(f'namespace "{ns}" not found for the node debug pod; pass --node-namespace with an '
                             f"existing namespace {words}", ExitCode.NOT_FOUND) from None
        raise WhoseError(f"the API server refused the node debug pod {words}", ExitCode.ADMISSION_REJECTED) from None
    except Exception as e:  # noqa: BLE001 - a connection failure, translated
        from kubectl_whose.cluster.client import translate_api_error

        raise translate_api_error(e, action="create the node debug pod", namespace=ns,
                                  pod=body["metadata"]["name"]) from None


def delete_node_pod(cluster, name: str) -> Optional[str]:
    """Delete it at once (grace period 0); the reason it could not be, or None."""
    from kubectl_whose.cluster.rest import ApiError

    try:
        cluster.rest.request("DELETE", f"/api/v1/namespaces/{quote(cluster.namespace)}/pods/{quote(name)}",
                             {"gracePeriodSeconds": "0"})
    except ApiError as e:
        if e.status == 404:
            return None
        return f"HTTP {e.status}"
    except Exception as e:  # noqa: BLE001 - the API went away: the pod's deadline ends it anyway
        return str(e) or type(e).__name__
    return None


def wait_node_pod(cluster, body: dict, image: str, timeout: float, say) -> float:
    """Until its container runs (epoch seconds when it started); fails fast as for the ephemeral container."""
    from kubectl_whose.cluster.ephemeral import wait_for_running

    return wait_for_running(cluster, body["metadata"]["name"], CONTAINER, image, timeout, say)
