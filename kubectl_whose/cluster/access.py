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
