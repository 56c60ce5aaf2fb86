"""Authentication (bearer tokens) and RBAC-style authorization from a policy file, plus
SelfSubjectAccessReview in JSON and in the protobuf envelope `kubectl auth can-i` sends.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from .status import rbac_forbidden


@dataclass(frozen=True)
class Attributes:
    """What a request wants (authorizer.Attributes)."""
    verb: str
    resource: str = ""      # "pods"
    subresource: str = ""   # "exec"
    namespace: str = ""
    name: str = ""
    group: str = ""
    non_resource: bool = False

    @property
    def full_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


class Authorizer:
    def __init__(self, secret: bytes, policy: dict):
        self.secret = secret
        self.set_policy(policy)

    def set_policy(self, policy: dict) -> None:
        self.policy = policy
        self.users: Dict[str, dict] = {u["name"]: u for u in policy.get("users") or []}

    def token_for(self, user: str) -> str:
        mac = hmac.new(self.secret, user.encode(), hashlib.sha256).hexdigest()[:32]
        return f"{user}.{mac}"

    def authenticate(self, header: Optional[str]) -> Optional[str]:
        if not header or not header.lower().startswith("bearer "):
            return None
        token = header[7:].strip()
        user, _, mac = token.rpartition(".")
        if user and hmac.compare_digest(token, self.token_for(user)):
            return user
        return None

    def allowed(self, user: str, a: Attributes) -> bool:
        if a.non_resource:
            return True  # system:discovery / system:public-info-viewer
        if a.group == "authorization.k8s.io" and a.resource in ("selfsubjectaccessreviews", "selfsubjectrulesreviews"):
            return True  # system:basic-user
        u = self.users.get(user)
        if u is None:
            return False
        if "system:masters" in (u.get("groups") or []):
            return True
        for rule in u.get("rules") or []:
            nss = rule.get("namespaces") or ["*"]
            if a.namespace and "*" not in nss and a.namespace not in nss:
                continue
            if not a.namespace and "*" not in nss:
                continue
            if "*" not in rule.get("resources", []) and a.full_resource not in rule.get("resources", []):
                continue
            if "*" in rule.get("verbs", []) or a.verb in rule.get("verbs", []):
                names = rule.get("resourceNames")
                if names and a.name not in names:
                    continue
                return True
        return False

    def check(self, user: str, a: Attributes) -> None:
        if not self.allowed(user, a):
            raise rbac_forbidden(user, a.verb, a.full_resource, a.group, a.namespace, a.name)


def ssar_attributes(spec: dict) -> Attributes:
    ra = spec.get("resourceAttributes")
    if ra is not None:
        return Attributes(verb=ra.get("verb", ""), resource=ra.get("resource", ""),
                          subresource=ra.get("subresource", ""), namespace=ra.get("namespace", ""),
                          name=ra.get("name", ""), group=ra.get("group", ""))
    nra = spec.get("nonResourceAttributes") or {}
    return Attributes(verb=nra.get("verb", ""), non_resource=True)


# -- protobuf (kubectl auth can-i) -------------------------------------------------------------------------------
PROTO_MAGIC = b"k8s\x00"


def _fields(buf: bytes) -> List[Tuple[int, int, object]]:
    out, i = [], 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, i = _varint(buf, i)
        elif wt == 2:
            ln, i = _varint(buf, i)
            val, i = buf[i:i + ln], i + ln
        elif wt == 5:
            val, i = buf[i:i + 4], i + 4
        elif wt == 1:
            val, i = buf[i:i + 8], i + 8
        else:
            raise ValueError("unsupported wire type")
        out.append((num, wt, val))
    return out


def _varint(buf: bytes, i: int) -> Tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def decode_ssar_protobuf(body: bytes) -> dict:
    """`k8s\\0` + runtime.Unknown{raw: SelfSubjectAccessReview} → the JSON-shaped spec (generated.proto numbers)."""
    if not body.startswith(PROTO_MAGIC):
        raise ValueError("not a Kubernetes protobuf envelope")
    raw = next(v for n, _, v in _fields(body[4:]) if n == 2)
    spec_bytes = next((v for n, _, v in _fields(raw) if n == 2), b"")
    spec: dict = {}
    names = {1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource", 6: "subresource", 7: "name"}
    for n, _, v in _fields(spec_bytes):
        if n == 1:
            spec["resourceAttributes"] = {names[k]: val.decode() for k, _, val in _fields(v) if k in names}
        elif n == 2:
            spec["nonResourceAttributes"] = {{1: "path", 2: "verb"}[k]: val.decode() for k, _, val in _fields(v)
                                             if k in (1, 2)}
    return spec
