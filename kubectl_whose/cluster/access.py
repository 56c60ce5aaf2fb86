"""SelfSubjectAccessReview: may the current user do VERB on a resource? Asked before anything is changed."""
from __future__ import annotations

from typing import Optional

SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


def review(cluster, verb: str, resource: str, subresource: Optional[str] = None, name: Optional[str] = None) -> dict:
    """The review's `status` (`allowed`, `denied`, `reason`) in the connection's namespace; raises on API errors."""
    attrs = {"namespace": cluster.namespace, "verb": verb, "resource": resource}
    if subresource:
        attrs["subresource"] = subresource
    if name:  # a Role with resourceNames allows some pods only
        attrs["name"] = name
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attrs}}
    return cluster.rest.post(SSAR_PATH, body).get("status") or {}


def can_i(cluster, verb: str, resource: str, subresource: Optional[str] = None,
          name: Optional[str] = None) -> Optional[bool]:
    """True / False, or None when the review itself failed (the real request will tell)."""
    try:
        return bool(review(cluster, verb, resource, subresource, name).get("allowed"))
    except Exception:  # noqa: BLE001 - an authorizer that cannot answer reviews must not block the run
        return None


def whoami(cluster) -> Optional[str]:
    """The user name the server sees (SelfSubjectReview, authentication.k8s.io/v1, GA in 1.28:
    kubernetes/website feature-gates/APISelfSubjectReview.md), for a RoleBinding in a message; None before 1.28."""
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    try:
        review_ = cluster.rest.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", body)
    except Exception:  # noqa: BLE001 - only the message gets poorer
        return None
    return ((review_.get("status") or {}).get("userInfo") or {}).get("username") or None
