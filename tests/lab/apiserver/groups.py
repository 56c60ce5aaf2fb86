"""The API groups a workload target resolves through: apps/v1 (Deployments, ReplicaSets, StatefulSets,
DaemonSets), batch/v1 (Jobs) and discovery.k8s.io/v1 (EndpointSlices): read-only, list (with label and field
selectors), get, and their discovery documents. The objects are the topology's (`server.py`): a workload owns
its pods through ownerReferences, as the controllers that would have made them set them.
"""
from __future__ import annotations

from .routes_core import get_one, list_or_watch

# (group, version, resource) -> (kind, list kind, short names, singular)
RESOURCES = {
    ("apps", "v1", "deployments"): ("Deployment", "DeploymentList", ["deploy"], "deployment"),
    ("apps", "v1", "replicasets"): ("ReplicaSet", "ReplicaSetList", ["rs"], "replicaset"),
    ("apps", "v1", "statefulsets"): ("StatefulSet", "StatefulSetList", ["sts"], "statefulset"),
    ("apps", "v1", "daemonsets"): ("DaemonSet", "DaemonSetList", ["ds"], "daemonset"),
    ("batch", "v1", "jobs"): ("Job", "JobList", [], "job"),
    ("discovery.k8s.io", "v1", "endpointslices"): ("EndpointSlice", "EndpointSliceList", [], "endpointslice"),
}


def group_versions() -> list:
    groups = sorted({(g, v) for g, v, _ in RESOURCES})
    return [{"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
             "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}} for g, v in groups]


def resource_list(group: str, version: str) -> dict:
    res = [{"name": r, "singularName": singular, "namespaced": True, "kind": kind, "verbs": ["get", "list", "watch"],
            **({"shortNames": short} if short else {})}
           for (g, v, r), (kind, _, short, singular) in RESOURCES.items() if (g, v) == (group, version)]
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}", "resources": res}


def _lister(group, version, resource):
    kind, list_kind, _, _ = RESOURCES[(group, version, resource)]

    def fn(req):
        code, body = list_or_watch(req, resource, req.params.get("ns", ""), kinds=(kind, list_kind),
                                   api_version=f"{group}/{version}")
        return code, body
    return fn


def _getter(resource):
    def fn(req):
        return get_one(req, resource, req.params["ns"], req.params["name"])
    return fn


def routes() -> list:
    out = []
    for (g, v) in sorted({(g, v) for g, v, _ in RESOURCES}):
        out.append((f"/apis/{g}", {"GET": lambda req, g=g, v=v: (200, {"kind": "APIGroup", "apiVersion": "v1",
                                                                          **group_versions_of(g, v)})}))
        out.append((f"/apis/{g}/{v}", {"GET": lambda req, g=g, v=v: (200, resource_list(g, v))}))
    for (g, v, r) in RESOURCES:
        out.append((f"/apis/{g}/{v}/{r}", {"GET": _lister(g, v, r)}))
        out.append((f"/apis/{g}/{v}/namespaces/{{ns}}/{r}", {"GET": _lister(g, v, r)}))
        out.append((f"/apis/{g}/{v}/namespaces/{{ns}}/{r}/{{name}}", {"GET": _getter(r)}))
    return out


def group_versions_of(group: str, version: str) -> dict:
    gv = {"groupVersion": f"{group}/{version}", "version": version}
    return {"name": group, "versions": [gv], "preferredVersion": gv}
