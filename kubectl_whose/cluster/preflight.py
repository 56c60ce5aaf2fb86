"""Preflight for `doctor`: can kubectl-whose debug this pod? Each check is data (`Check`), nothing is changed.

Checks, in the order a capture needs them: the kubeconfig, the API server and its `pods/ephemeralcontainers`
subresource (discovery), its release and the rules that follow from it (`server_version`), RBAC for every verb
the plugin uses (SelfSubjectAccessReview) with the exec transport that release and those verbs lead to
(`exec_transport`: what a capture will really use, so doctor fails exactly where a capture would), the pod
(exists, Running), the namespace's PodSecurity level against NET_ADMIN/NET_RAW where that release enforces it,
and a server-side dry run of the very patch `capture` would send (`dryRun=All`), the one check that also covers
admission webhooks.
"""
from __future__ import annotations

from typing import List, Optional

from kubectl_whose.cluster.check import Check, Report

from kubectl_whose.errors import ExitCode, WhoseError


def run_checks(kube, pod: str, container: Optional[str], image: Optional[str], node=None,
               ptrace: bool = False) -> Report:
    """`node`: `cluster.debug_choice.NodeFlags` (--node checks the node path only; without it, the node path is checked
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

    checks.append(_check_version(cluster.rules))
    on_node = bool(node and node.node)
    node_ns = (node.namespace if node else None) or config_value("node_namespace") or cluster.namespace
    pod_check, pod_obj = _check_pod(cluster, pod)
    if on_node:
        checks.append(pod_check)
        node_checks = node_path_checks(cluster, pod_obj, image, node_ns, chosen=True, enter=node.enter)
        return Report(pod, cfg.namespace, cfg.context, checks + node_checks,
                      path_check([], node_checks, True, node_ns))
    from kubectl_whose.cluster.debug_container import CAPABILITIES, PTRACE

    caps = CAPABILITIES + ((PTRACE,) if ptrace else ())
    ephemeral = _check_rbac(cluster, pod) + [_check_exec(cluster, pod), pod_check,
                                             _check_pod_security(cluster, cluster.rules),
                                             _check_dry_run(cluster, pod, pod_obj, container, image, caps)]
    checks += ephemeral + [_check_reuse(pod_obj, container, image, caps),
                           _check_image_on_node(cluster, pod_obj, image)]
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
    stage = cluster.rules.ephemeral_stage
    if "pods/ephemeralcontainers" in names:
        return Check("ephemeral containers", "pass", f"the server serves pods/ephemeralcontainers ({stage})")
    return Check("ephemeral containers", "fail", f"the server does not serve pods/ephemeralcontainers (disabled, or "
                 f"Kubernetes older than 1.23; here: {stage})", "use a cluster with ephemeral containers (GA since "
                 "1.25)", ExitCode.UNSUPPORTED_SERVER)


def _check_version(rules) -> Check:
    if not rules.known:
        return Check("server version", "warn", "/version could not be read; the newest rules are assumed (a "
                     "WebSocket exec needs get and create on pods/exec)")
    ws = f"WebSocket exec {rules.websocket_protocol}, authorized as {' and '.join(rules.websocket_verbs)}"
    return Check("server version", "pass", f"{rules.name}: ephemeral containers {rules.ephemeral_stage}, "
                 f"PodSecurity {rules.pod_security_stage}; {ws}; SPDY/3.1 exec authorized as create")


# (verb, subresource, why)
_VERBS = (
    ("get", None, "read the pod"),
    ("patch", "ephemeralcontainers", "add the debug container"),
)


def _check_rbac(cluster, pod: str) -> List[Check]:
    from kubectl_whose.cluster.access import review
    from kubectl_whose.cluster.client import role_command

    out = []
    ns = cluster.namespace
    for verb, sub, why in _VERBS:
        resource = f"pods/{sub}" if sub else "pods"
        name = f"RBAC {verb} {resource}"
        try:
            status = review(cluster, verb, "pods", sub, pod)
        except Exception as e:  # noqa: BLE001
            why = f"HTTP {e.status}" if getattr(e, "status", None) else (str(e) or "no answer")
            out.append(Check(name, "warn", f"could not ask the API server ({why}); the dry run below decides"))
            continue
        if status.get("allowed"):
            out.append(Check(name, "pass", f"allowed ({why})"))
            continue
        verbs = "get,patch" if sub else verb
        note = " (the built-in edit/admin roles lack it)" if sub == "ephemeralcontainers" else ""
        reason = f": {status['reason']}" if status.get("reason") else ""
        out.append(Check(name, "fail", f"denied{reason}; needed to {why}{note}",
                         role_command(ns, verbs, resource, None), ExitCode.FORBIDDEN))
    return out


def _check_exec(cluster, pod: str) -> Check:
    """The transport a capture will use, from the release's rules and both pods/exec verbs."""
    from kubectl_whose.cluster.client import role_command
    from kubectl_whose.cluster.exec_transport import plan_exec

    plan = plan_exec(cluster, pod, thorough=True)
    if plan.refused:
        return Check("exec transport", "fail", plan.describe(),
                     role_command(cluster.namespace, "get,create", "pods/exec", None), ExitCode.FORBIDDEN)
    if plan.allowed(plan.transport) is None:
        return Check("exec transport", "warn", plan.describe())
    return Check("exec transport", "pass", plan.describe())


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


def _check_pod_security(cluster, rules) -> Check:
    ns = cluster.namespace
    try:
        obj = cluster.rest.get(f"/api/v1/namespaces/{ns}")
    except Exception as e:  # noqa: BLE001
        return Check("PodSecurity", "warn", f"cannot read namespace {ns} (HTTP {getattr(e, 'status', '?')}); "
                     "the dry run below decides")
    level = (((obj.get("metadata") or {}).get("labels") or {}).get(_PSA_LABEL) or "privileged")
    strict = level in ("baseline", "restricted")
    if strict and not rules.pod_security_enforced:
        return Check("PodSecurity", "warn", f'namespace {ns} is labelled "{level}", but PodSecurity admission is '
                     f"{rules.pod_security_stage} in {rules.short}, so the label is enforced only where an admin "
                     f"turned it on; the dry run below decides")
    if strict:
        return Check("PodSecurity", "fail", f'namespace {ns} enforces "{level}", which forbids adding NET_ADMIN and '
                     f"NET_RAW", f"add --node (a node debug pod on the pod's node), or label the namespace "
                     f"{_PSA_LABEL}=privileged for the session (kubectl label namespace {ns} "
                     f"{_PSA_LABEL}=privileged --overwrite)", ExitCode.ADMISSION_REJECTED)
    return Check("PodSecurity", "pass", f'namespace {ns} enforces "{level}" (NET_ADMIN/NET_RAW allowed)')


def _check_dry_run(cluster, pod: str, pod_obj, container, image, caps: tuple) -> Check:
    from kubectl_whose.cluster.debug_container import DebugSpec, build_debug_container, random_suffix
    from kubectl_whose.cluster.ephemeral import patch_debug_container
    from kubectl_whose.cluster.image import resolve_image

    if pod_obj is None:
        return Check("dry run", "skip", "no running pod to test against")
    img = resolve_image(image)
    try:
        debug = build_debug_container(pod_obj, DebugSpec(image=img, target=container, capabilities=caps),
                                      random_suffix())
        patch_debug_container(cluster, pod, debug, dry_run=True)
    except WhoseError as e:
        return Check("dry run", "fail", e.message, "see the checks above", e.code)
    return Check("dry run", "pass", f"the API server would accept the debug container ({img}, {'+'.join(caps)}; "
                 "admission and webhooks included)")


def _check_image_on_node(cluster, pod_obj, image) -> Check:
    """Whether the pod's node already holds the debug image (`node.status.images`): a pull that fails leaves a
    container in the pod that never starts and can never be removed, and no dry run can tell in advance."""
    from kubectl_whose.cluster.image import normalize_image, resolve_image

    img = resolve_image(image)
    node = ((pod_obj or {}).get("spec") or {}).get("nodeName")
    if not node:
        return Check("debug image", "skip", "no running pod")
    try:
        held = [n for i in (cluster.rest.get(f"/api/v1/nodes/{node}").get("status") or {}).get("images") or []
                for n in i.get("names") or []]
    except Exception as e:  # noqa: BLE001 - nodes are cluster-scoped; many users may not read them
        return Check("debug image", "warn", f"cannot read node {node} (HTTP {getattr(e, 'status', '?')}) to see "
                     f"whether it holds {img}")
    if normalize_image(img) in held or img in held:
        return Check("debug image", "pass", f"node {node} already holds {img}: nothing to pull")
    return Check("debug image", "warn", f"node {node} does not hold {img} yet: the kubelet pulls it when the debug "
                 f"container is added, and if that pull fails the container stays in the pod, never started "
                 f"(ephemeral containers cannot be removed)", "make sure the node can pull it, or pass --image with "
                 "one it holds (kubectl get node -o jsonpath='{.status.images[*].names}')")


def _check_reuse(pod_obj, container, image, caps: tuple) -> Check:
    """Informational: will the next run reuse a container (fast, nothing added) or add one (forever)?"""
    import time

    from kubectl_whose.cluster.debug_container import DebugSpec, debug_containers, find_reusable
    from kubectl_whose.cluster.image import resolve_image

    if pod_obj is None:
        return Check("debug container", "skip", "no running pod")
    ours = debug_containers(pod_obj)
    found = find_reusable(pod_obj, DebugSpec(image=resolve_image(image), target=container, capabilities=caps),
                          time.time(), 60)
    if found is not None:
        left = int(found.remaining(time.time()) or 0)
        return Check("debug container", "pass", f"{found.name} runs and will be reused ({left // 60}m{left % 60:02d}s "
                     f"left); {len(ours)} of ours in the pod")
    return Check("debug container", "pass", f"none reusable ({len(ours)} of ours in the pod): the next run adds one, "
                 f"which stays in the pod spec (ephemeral containers cannot be removed)")
