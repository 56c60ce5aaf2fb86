"""Discovery documents: enough for kubectl's RESTMapper and the Python client (research §11).

Answered as plain JSON; kubectl asks for aggregated discovery first (`as=APIGroupDiscoveryList`) and falls back
to these legacy documents when the Content-Type says plain `application/json`.
"""
from __future__ import annotations

import platform


def version(old_server: bool) -> dict:
    minor, git = ("22", "v1.22.17") if old_server else ("32", "v1.32.4")
    return {"major": "1", "minor": minor, "gitVersion": f"{git}+lab", "gitCommit": "0" * 40,
            "gitTreeState": "clean", "buildDate": "2025-04-22T16:00:00Z", "goVersion": "go1.23.8", "compiler": "gc",
            "platform": f"linux/{_arch()}"}


def _arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def api_versions(host: str) -> dict:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]}


def api_groups() -> dict:
    from .groups import group_versions

    gv = {"groupVersion": "authorization.k8s.io/v1", "version": "v1"}
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [*group_versions(), {"name": "authorization.k8s.io", "versions": [gv], "preferredVersion": gv}]}


def api_group_authorization() -> dict:
    gv = {"groupVersion": "authorization.k8s.io/v1", "version": "v1"}
    return {"kind": "APIGroup", "apiVersion": "v1", "name": "authorization.k8s.io", "versions": [gv],
            "preferredVersion": gv}


def _res(name, kind, verbs, namespaced=True, short=None, singular=""):
    r = {"name": name, "singularName": singular, "namespaced": namespaced, "kind": kind, "verbs": verbs}
    if short:
        r["shortNames"] = short
    return r


def core_v1(old_server: bool) -> dict:
    crud = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    resources = [
        _res("namespaces", "Namespace", ["create", "delete", "get", "list", "patch", "update", "watch"],
             namespaced=False, short=["ns"], singular="namespace"),
        _res("nodes", "Node", ["get", "list", "watch"], namespaced=False, short=["no"], singular="node"),
        _res("pods", "Pod", crud, short=["po"], singular="pod"),
        _res("pods/attach", "PodAttachOptions", ["create", "get"]),
        _res("pods/exec", "PodExecOptions", ["create", "get"]),
        _res("pods/log", "Pod", ["get"]),
        _res("pods/status", "Pod", ["get", "patch", "update"]),
        _res("services", "Service", ["get", "list", "watch"], short=["svc"], singular="service"),
        _res("endpoints", "Endpoints", ["get", "list", "watch"], short=["ep"], singular="endpoints"),
    ]
    if not old_server:
        resources.insert(4, _res("pods/ephemeralcontainers", "Pod", ["get", "patch", "update"]))
    return {"kind": "APIResourceList", "groupVersion": "v1", "resources": resources}


def authorization_v1() -> dict:
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "authorization.k8s.io/v1",
            "resources": [_res("selfsubjectaccessreviews", "SelfSubjectAccessReview", ["create"], namespaced=False),
                          _res("selfsubjectrulesreviews", "SelfSubjectRulesReview", ["create"], namespaced=True)]}
