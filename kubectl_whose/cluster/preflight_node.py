"""doctor's checks for the node path (`--node`): can a node debug pod be made on the pod's node?

The same questions a `capture --node` will meet, in its order: the verbs it uses in the node debug pod's
namespace, that namespace's PodSecurity level, the node being Ready, and a server-side dry run of the very pod
(`dryRun=All`, which runs admission and webhooks). Nothing is created.
"""
from __future__ import annotations

from typing import List, Optional

from kubectl_whose.cluster.check import Check
from kubectl_whose.errors import ExitCode, WhoseError

PSA_LABEL = "pod-security.kubernetes.io/enforce"
# (verb, resource, subresource, why) in the node debug pod's namespace
NODE_VERBS = (
    ("create", "pods", None, "create the node debug pod"),
    ("delete", "pods", None, "remove it when done"),
    ("get", "pods", None, "watch it start"),
)  # and pods/exec, by the release's rules for the transport the capture will use (`exec_transport`)


def access_allowed(cluster, namespace: str, verb: str, resource: str, sub: Optional[str]):
    """(allowed, reason) from a SelfSubjectAccessReview; (None, why) when the review itself failed."""
    attrs = {"namespace": namespace, "verb": verb, "resource": resource, **({"subresource": sub} if sub else {})}
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attrs}}
    try:
        status = cluster.rest.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body).get("status") or {}
    except Exception as e:  # noqa: BLE001 - an old server or no permission to ask: the dry run decides
        return None, f"SelfSubjectAccessReview failed ({getattr(e, 'status', None) or type(e).__name__})"
    return bool(status.get("allowed")), status.get("reason") or ""


def _exec_check(where, bad: str) -> Check:
    """Running tcpdump in the node debug pod: the transport that release and the pods/exec verbs lead to."""
    from kubectl_whose.cluster.client import role_command
    from kubectl_whose.cluster.exec_transport import plan_exec

    plan = plan_exec(where, None, thorough=True)
    if plan.refused:
        return Check("node: exec transport", bad, f"in namespace {where.namespace}: {plan.describe()}",
                     role_command(where.namespace, "get,create", "pods/exec", None), ExitCode.FORBIDDEN)
    result = "warn" if plan.allowed(plan.transport) is None else "pass"
    return Check("node: exec transport", result, f"in namespace {where.namespace}: {plan.describe()}")


def node_path_checks(cluster, pod_obj: Optional[dict], image: Optional[str], node_namespace: Optional[str],
                     chosen: bool, enter: bool = False) -> List[Check]:
    """Checks of the node path; their failures are `fail` when --node was asked for, else `warn` (another way).
    `enter`: --node-nsenter, whose extra grants are listed and included in the dry run."""
    from kubectl_whose.cluster.client import role_command
    from kubectl_whose.cluster.config_file import config_value
    from kubectl_whose.cluster.debug_container import DebugSpec, random_suffix
    from kubectl_whose.cluster.image import resolve_image
    from kubectl_whose.cluster.node_pod import build_node_pod, check_node_ready, create_node_pod, node_of

    bad = "fail" if chosen else "warn"
    ns = node_namespace or config_value("node_namespace") or cluster.namespace
    where = cluster.in_namespace(ns)
    out = []
    for verb, resource, sub, why in NODE_VERBS:
        full = f"{resource}/{sub}" if sub else resource
        allowed, reason = access_allowed(cluster, ns, verb, resource, sub)
        name = f"node: RBAC {verb} {full}"
        if allowed is None:
            out.append(Check(name, "warn", reason))
        elif allowed:
            out.append(Check(name, "pass", f"allowed in namespace {ns} ({why})"))
        else:
            out.append(Check(name, bad, f"denied in namespace {ns}{': ' + reason if reason else ''}; needed to {why}",
                             role_command(ns, verb, full, None), ExitCode.FORBIDDEN))
    out.append(_exec_check(where, bad))
    if enter:
        out.append(Check("node: --node-nsenter grants", "pass", "the node debug pod also gets hostPID and "
                         "SYS_ADMIN+SYS_PTRACE: it sees every process on the node and may enter the namespaces of any "
                         "of them, to capture in the pod's own network namespace (lo included); never privileged"))
    try:
        labels = (where.rest.get(f"/api/v1/namespaces/{ns}").get("metadata") or {}).get("labels") or {}
        level = labels.get(PSA_LABEL) or "privileged"
        if level == "privileged":
            out.append(Check("node: PodSecurity", "pass", f'namespace {ns} enforces "privileged": hostNetwork and '
                             f"NET_ADMIN/NET_RAW are allowed"))
        else:
            out.append(Check("node: PodSecurity", bad, f'namespace {ns} enforces "{level}", which forbids the node '
                             f"debug pod (hostNetwork, NET_ADMIN/NET_RAW)",
                             "pass --node-namespace with a namespace labelled "
                             f"{PSA_LABEL}=privileged", ExitCode.ADMISSION_REJECTED))
    except Exception as e:  # noqa: BLE001 - reading namespaces may be denied: the dry run decides
        out.append(Check("node: PodSecurity", "warn", f"cannot read namespace {ns} "
                         f"(HTTP {getattr(e, 'status', '?')}); the dry run below decides"))
    if pod_obj is None:
        return out + [Check("node: dry run", "skip", "no running pod to test against")]
    node = node_of(pod_obj)
    try:
        check_node_ready(cluster.rest.get(f"/api/v1/nodes/{node}"))
        out.append(Check("node: node Ready", "pass", f"node {node} is Ready"))
    except WhoseError as e:
        out.append(Check("node: node Ready", bad, e.message, "wait for the node, or pick a pod on another one",
                         e.code))
    except Exception as e:  # noqa: BLE001 - nodes are cluster-scoped; many users may not read them
        out.append(Check("node: node Ready", "warn", f"cannot read node {node} (HTTP {getattr(e, 'status', '?')})"))
    meta = pod_obj.get("metadata") or {}
    body = build_node_pod(node, DebugSpec(image=resolve_image(image)), meta.get("namespace", cluster.namespace),
                          meta.get("name", "?"), random_suffix(), enter=enter)
    try:
        create_node_pod(where, body, dry_run=True)
    except WhoseError as e:
        out.append(Check("node: dry run", bad, e.message, "see the node checks above", e.code))
    else:
        out.append(Check("node: dry run", "pass", f"the API server would accept the node debug pod in namespace "
                         f"{ns} on node {node} (admission and webhooks included)"))
    return out


def path_check(ephemeral: List[Check], node: List[Check], chosen_node: bool, node_namespace: str) -> Check:
    """Which way `capture` will work for this pod, and why."""
    pod_path_ok = not any(c.result == "fail" for c in ephemeral)
    node_path_ok = bool(node) and not any(c.result in ("fail", "warn") and c.code for c in node)
    if chosen_node:
        if node_path_ok:
            return Check("path", "pass", "--node: from a node debug pod on the pod's node (it cannot see the pod's lo)")
        return Check("path", "fail", "--node cannot work here", "see the failing node checks")
    if pod_path_ok:
        return Check("path", "pass", "an ephemeral debug container in the pod (sees lo, eth0 and the pod's rules)")
    if node_path_ok:
        return Check("path", "warn", "the ephemeral debug container is refused; --node works (the node cannot see "
                     "the pod's lo)", f"add --node --node-namespace {node_namespace}")
    return Check("path", "fail", "neither an ephemeral debug container nor a node debug pod can be made",
                 "see the failing checks")
