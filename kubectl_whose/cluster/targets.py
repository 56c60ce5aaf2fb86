"""Which pods a capture targets, in kubectl's own words: `POD...`, `-l/--selector`, `TYPE/NAME` for the
workloads (`deploy`, `sts`, `ds`, `rs`, `job`), `svc/NAME` (the pods behind its endpoints), and
`--all-namespaces` with a selector.

As kubectl does (`logs deploy/NAME`, `polymorphichelpers.AttachablePodForObject`), a workload's pods are the
pods its `spec.selector` selects in its namespace; a Service's are the `targetRef`s of its EndpointSlices
(`kubernetes.io/service-name=NAME`), else of its Endpoints. A target that names nothing is an error; a pod
that cannot be captured (not running) is reported and the others go on.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple
from urllib.parse import quote

from kubectl_whose.errors import ExitCode, WhoseError

# kubectl's resource names and short names -> (API path prefix, plural)
WORKLOADS: Dict[str, Tuple[str, str]] = {}
for _names, _where in ((("deploy", "deployment", "deployments"), ("/apis/apps/v1", "deployments")),
                       (("sts", "statefulset", "statefulsets"), ("/apis/apps/v1", "statefulsets")),
                       (("ds", "daemonset", "daemonsets"), ("/apis/apps/v1", "daemonsets")),
                       (("rs", "replicaset", "replicasets"), ("/apis/apps/v1", "replicasets")),
                       (("job", "jobs"), ("/apis/batch/v1", "jobs"))):
    for _n in _names:
        WORKLOADS[_n] = _where
SERVICE_KINDS = ("svc", "service", "services")
POD_KINDS = ("po", "pod", "pods")
TARGET_FORMS = "POD, pod/NAME, deploy/NAME, sts/NAME, ds/NAME, rs/NAME, job/NAME, svc/NAME or -l SELECTOR"


@dataclass(frozen=True)
class PodTarget:
    namespace: str
    name: str
    node: str
    ip: Optional[str]
    phase: str
    via: str  # how it was named: "pod/x", "deploy/web", "-l app=web"

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.name}"


def selector_text(selector: dict) -> str:
    """A LabelSelector (matchLabels, matchExpressions) in the `-l` form the API takes."""
    terms = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for e in selector.get("matchExpressions") or []:
        op, key, values = e.get("operator"), e.get("key"), ",".join(e.get("values") or [])
        terms.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key,
                      "DoesNotExist": f"!{key}"}.get(op, key))
    return ",".join(terms)


def _pod_target(obj: dict, via: str) -> PodTarget:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    return PodTarget(meta.get("namespace", ""), meta.get("name", ""), spec.get("nodeName") or "",
                     status.get("podIP"), status.get("phase") or "Unknown", via)


def _get(cluster, path: str, what: str, query: Optional[dict] = None) -> dict:
    from kubectl_whose.cluster.client import translate_api_error
    from kubectl_whose.cluster.rest import ApiError

    try:
        return cluster.rest.get(path, query)
    except ApiError as e:
        if e.status == 404:
            raise WhoseError(f'{what} not found in namespace "{cluster.namespace}"; `kubectl get` lists what there '
                             f"is", ExitCode.NOT_FOUND) from None
        raise translate_api_error(e, action=f"read {what}", namespace=cluster.namespace, pod=what) from None


def resolve(cluster, targets: Sequence[str], selector: Optional[str] = None,
            all_namespaces: bool = False) -> List[PodTarget]:
    """Every pod the targets name, each once, in the order named."""
    if all_namespaces and targets:
        raise WhoseError("--all-namespaces takes a selector, not names: use -l SELECTOR", ExitCode.USAGE)
    if not targets and not selector:
        raise WhoseError(f"name what to capture: {TARGET_FORMS}", ExitCode.USAGE)
    ns = cluster.namespace
    found: List[PodTarget] = []
    if selector:
        path = "/api/v1/pods" if all_namespaces else f"/api/v1/namespaces/{quote(ns)}/pods"
        items = _get(cluster, path, "pods", {"labelSelector": selector}).get("items") or []
        if not items:
            where = "any namespace" if all_namespaces else f'namespace "{ns}"'
            raise WhoseError(f"no pods match -l {selector} in {where}", ExitCode.NOT_FOUND)
        found += [_pod_target(p, f"-l {selector}") for p in items]
    for target in targets:
        kind, _, name = target.partition("/") if "/" in target else ("pod", "", target)
        kind = kind.lower()
        if kind in POD_KINDS:
            found.append(_pod_target(_get(cluster, f"/api/v1/namespaces/{quote(ns)}/pods/{quote(name)}",
                                          f'pod "{name}"'), f"pod/{name}"))
        elif kind in WORKLOADS:
            prefix, plural = WORKLOADS[kind]
            obj = _get(cluster, f"{prefix}/namespaces/{quote(ns)}/{plural}/{quote(name)}", f"{kind}/{name}")
            sel = selector_text((obj.get("spec") or {}).get("selector") or {})
            if not sel:
                raise WhoseError(f"{kind}/{name} has no selector, so no pods", ExitCode.NOT_FOUND)
            items = _get(cluster, f"/api/v1/namespaces/{quote(ns)}/pods", "pods", {"labelSelector": sel})["items"]
            if not items:
                raise WhoseError(f"{kind}/{name} has no pods (selector {sel})", ExitCode.NOT_FOUND)
            found += [_pod_target(p, f"{kind}/{name}") for p in items]
        elif kind in SERVICE_KINDS:
            found += [_pod_target(p, f"svc/{name}") for p in _service_pods(cluster, name)]
        else:
            raise WhoseError(f"{target!r}: unknown kind {kind!r}; give {TARGET_FORMS}", ExitCode.USAGE)
    unique: Dict[str, PodTarget] = {}
    for t in found:
        unique.setdefault(t.label, t)
    return list(unique.values())


def _service_pods(cluster, name: str) -> List[dict]:
    ns = cluster.namespace
    _get(cluster, f"/api/v1/namespaces/{quote(ns)}/services/{quote(name)}", f"svc/{name}")
    refs = []
    try:
        slices = _get(cluster, f"/apis/discovery.k8s.io/v1/namespaces/{quote(ns)}/endpointslices", "endpointslices",
                      {"labelSelector": f"kubernetes.io/service-name={name}"}).get("items") or []
        refs = [e.get("targetRef") for s in slices for e in s.get("endpoints") or []]
    except WhoseError:
        slices = []
    if not slices:  # servers without EndpointSlices (before 1.21) keep Endpoints only
        eps = _get(cluster, f"/api/v1/namespaces/{quote(ns)}/endpoints/{quote(name)}", f"endpoints of svc/{name}")
        refs = [a.get("targetRef") for sub in eps.get("subsets") or [] for a in sub.get("addresses") or []]
    names = [r["name"] for r in refs if r and r.get("kind") == "Pod" and r.get("name")]
    if not names:
        raise WhoseError(f"svc/{name} has no endpoints behind it (no ready pods selected)", ExitCode.NOT_FOUND)
    return [_get(cluster, f"/api/v1/namespaces/{quote(ns)}/pods/{quote(n)}", f'pod "{n}"')
            for n in dict.fromkeys(names)]


def single_pod(targets, selector, all_namespaces) -> Optional[str]:
    """The pod of a one-pod capture (`POD` or `pod/NAME`), or None for several targets."""
    if selector or all_namespaces or len(targets) != 1:
        return None
    kind, _, name = targets[0].partition("/") if "/" in targets[0] else ("pod", "", targets[0])
    return name if kind in ("po", "pod", "pods") else None
