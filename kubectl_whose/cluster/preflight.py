"""Preflight for `doctor`: can kubectl-whose debug this pod? Each check is data (`Check`), nothing is changed.

Checks, in the order a capture needs them: the kubeconfig, the API server and its `pods/ephemeralcontainers`
subresource (discovery), RBAC for every verb the plugin uses (SelfSubjectAccessReview), the pod (exists,
Running), the namespace's PodSecurity level against NET_ADMIN/NET_RAW, and a server-side dry run of the very
patch `capture` would send (`dryRun=All`), the one check that also covers admission webhooks.
"""
from __future__ import annotations

from typing import List, Optional

from kubectl_whose.cluster.check import Check, Report

from kubectl_whose.errors import ExitCode, WhoseError


def run_checks(kube, pod: str, container: Optional[str], image: Optional[str], node=None) -> Report:
    """`node`: `cli.options.NodeFlags` (--node checks the node path only; without it, the node path is checked
    too when PodSecurity or a webhook refuses the ephemeral container)."""
    from kubectl_whose.cluster.client import connect

    try:
        cluster = connect(kube)
    except WhoseError as e:
        return Report(pod, kube.namespace or "?", kube.context or "?",
                      [Check("kubeconfig", "fail", e.message, "fix the kubeconfig or pass --kubeconfig", e.code)])
    cfg = cluster.config
    checks = [Check("kubeconfig", "pass", f"context {cfg.context}, namespace {cfg.namespace} "
                    f"(from {cfg.namespace_from}), server {cfg.server}")]
    server = _check_server(cluster)
    checks.append(server)
    if server.result == "fail" and server.code == ExitCode.CONNECTION_LOST:
        return Report(pod, cfg.namespace, cfg.context, checks)
    from kubectl_whose.cluster.config_file import config_value
    from kubectl_whose.cluster.preflight_node import node_path_checks, path_check

    on_node = bool(node and node.node)
    node_ns = (node.namespace if node else None) or config_value("node_namespace") or cluster.namespace
    pod_check, pod_obj = _check_pod(cluster, pod)
    if on_node:
        checks.append(pod_check)
        node_checks = node_path_checks(cluster, pod_obj, image, node_ns, chosen=True)
        return Report(pod, cfg.namespace, cfg.context, checks + node_checks,
                      path_check([], node_checks, True, node_ns))
    ephemeral = _check_rbac(cluster) + [pod_check, _check_pod_security(cluster),
                                        _check_dry_run(cluster, pod, pod_obj, container, image, server)]
    checks += ephemeral + [_check_reuse(pod_obj, container, image)]
    refused = any(c.result == "fail" and c.code == ExitCode.ADMISSION_REJECTED for c in ephemeral)
    node_checks = node_path_checks(cluster, pod_obj, image, node_ns, chosen=False) if refused else []
    return Report(pod, cfg.namespace, cfg.context, checks + node_checks,
                  path_check(ephemeral, node_checks, False, node_ns))


def _check_server(cluster) -> Check:
    from kubectl_whose.cluster.client import connection_error

    try:
        resources = cluster.rest.get("/api/v1")
    except Exception as e:  # noqa: BLE001
        if getattr(e, "status", None) is None:
            err = connection_error(e)
            return Check("ephemeral containers", "fail", err.message, "check the server URL and network", err.code)
        return Check("ephemeral containers", "warn", f"discovery failed (HTTP {e.status}); the dry run below decides")
    names = {r.get("name") for r in resources.get("resources") or []}
    if "pods/ephemeralcontainers" in names:
        return Check("ephemeral containers", "pass", "the server serves pods/ephemeralcontainers")
    return Check("ephemeral containers", "fail", "the server does not serve pods/ephemeralcontainers (disabled, or "
                 "Kubernetes older than 1.23)", "use a cluster with ephemeral containers (GA since 1.25)",
                 ExitCode.UNSUPPORTED_SERVER)


# (verb, subresource, why)
_VERBS = (
    ("get", None, "read the pod"),
    ("patch", "ephemeralcontainers", "add the debug container"),
    ("get", "exec", "open the exec WebSocket"),
    ("create", "exec", "exec (SPDY; WebSocket on 1.35+)"),
)


def _check_rbac(cluster) -> List[Check]:
    from kubectl_whose.cluster.client import role_command

    out = []
    ns = cluster.namespace
    for verb, sub, why in _VERBS:
        resource = f"pods/{sub}" if sub else "pods"
        name = f"RBAC {verb} {resource}"
        attrs = {"namespace": ns, "verb": verb, "resource": "pods", **({"subresource": sub} if sub else {})}
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attrs}}
        try:
            review = cluster.rest.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body)
        except Exception as e:  # noqa: BLE001
            why = getattr(e, "status", None) or type(e).__name__
            out.append(Check(name, "warn", f"SelfSubjectAccessReview failed ({why})"))
            continue
        status = review.get("status") or {}
        if status.get("allowed"):
            out.append(Check(name, "pass", f"allowed ({why})"))
            continue
        verbs = "get,create" if sub == "exec" else ("get,patch" if sub else verb)
        note = " (the built-in edit/admin roles lack it)" if sub == "ephemeralcontainers" else ""
        reason = f": {status['reason']}" if status.get("reason") else ""
        out.append(Check(name, "fail", f"denied{reason}; needed to {why}{note}",
                         role_command(ns, verbs, resource, None), ExitCode.FORBIDDEN))
    return out


def _check_pod(cluster, pod: str):
    from kubectl_whose.cluster.debug_container import check_pod_running
    from kubectl_whose.cluster.ephemeral import read_pod

    try:
        obj = read_pod(cluster, pod)
        check_pod_running(obj)
    except WhoseError as e:
        return Check("pod running", "fail", e.message, "pick a running pod (kubectl get pods)", e.code), None
    node = (obj.get("spec") or {}).get("nodeName", "?")
    return Check("pod running", "pass", f"pod {pod} is Running on node {node}"), obj


_PSA_LABEL = "pod-security.kubernetes.io/enforce"


def _check_pod_security(cluster) -> Check:
    ns = cluster.namespace
    try:
        obj = cluster.rest.get(f"/api/v1/namespaces/{ns}")
    except Exception as e:  # noqa: BLE001
        return Check("PodSecurity", "warn", f"cannot read namespace {ns} (HTTP {getattr(e, 'status', '?')}); "
                     "the dry run below decides")
    level = (((obj.get("metadata") or {}).get("labels") or {}).get(_PSA_LABEL) or "privileged")
    if level in ("baseline", "restricted"):
        return Check("PodSecurity", "fail", f'namespace {ns} enforces "{level}", which forbids adding NET_ADMIN and '
                     f"NET_RAW", f"add --node (a node debug pod on the pod's node), or label the namespace "
                     f"{_PSA_LABEL}=privileged for the session", ExitCode.ADMISSION_REJECTED)
    return Check("PodSecurity", "pass", f'namespace {ns} enforces "{level}" (NET_ADMIN/NET_RAW allowed)')


def _check_dry_run(cluster, pod: str, pod_obj, container, image, server: Check) -> Check:
    from kubectl_whose.cluster.debug_container import DebugSpec, build_debug_container, random_suffix
    from kubectl_whose.cluster.ephemeral import patch_debug_container
    from kubectl_whose.cluster.image import resolve_image

    if pod_obj is None:
        return Check("dry run", "skip", "no running pod to test against")
    img = resolve_image(image)
    try:
        debug = build_debug_container(pod_obj, DebugSpec(image=img, target=container), random_suffix())
        patch_debug_container(cluster, pod, debug, dry_run=True)
    except WhoseError as e:
        return Check("dry run", "fail", e.message, "see the checks above", e.code)
    return Check("dry run", "pass", f"the API server would accept the debug container ({img}, NET_ADMIN+NET_RAW; "
                 "admission and webhooks included)")


def _check_reuse(pod_obj, container, image) -> Check:
    """Informational: will the next run reuse a container (fast, nothing added) or add one (forever)?"""
    import time

    from kubectl_whose.cluster.debug_container import DebugSpec, debug_containers, find_reusable
    from kubectl_whose.cluster.image import resolve_image

    if pod_obj is None:
        return Check("debug container", "skip", "no running pod")
    ours = debug_containers(pod_obj)
    found = find_reusable(pod_obj, DebugSpec(image=resolve_image(image), target=container), time.time(), 60)
    if found is not None:
        left = int(found.remaining(time.time()) or 0)
        return Check("debug container", "pass", f"{found.name} runs and will be reused ({left // 60}m{left % 60:02d}s "
                     f"left); {len(ours)} of ours in the pod")
    return Check("debug container", "pass", f"none reusable ({len(ours)} of ours in the pod): the next run adds one, "
                 f"which stays in the pod spec (ephemeral containers cannot be removed)")
