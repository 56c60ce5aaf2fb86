"""The API server's release (`GET /version`, read once per connection) and the rules that release follows.

Each rule is the default of a feature gate in that release, checked in Kubernetes' own source and docs:
- ephemeral containers: EphemeralContainers alpha (off) 1.16-1.22, beta (on) 1.23-1.24, GA 1.25
  (kubernetes/website `feature-gates/ephemeral-containers.md`); discovery still decides, a gate can be off;
- PodSecurity admission: alpha (off) 1.22, beta (on) 1.23, GA 1.25 (kubernetes.io "Enforce Pod Security
  Standards by Configuring the Built-in Admission Controller"; kubernetes/enhancements#2579);
- WebSocket `v5.channel.k8s.io`: served by the API server's stream translator, TranslateStreamCloseWebsocketRequests
  alpha (off) 1.29, beta (on) 1.30 (kubernetes/kubernetes `pkg/features/kube_features.go`); before, a WebSocket
  upgrade goes to the kubelet, which speaks v4;
- verbs: a WebSocket exec is an HTTP GET, authorized as `get` on pods/exec; from 1.35 the registry also checks
  `create` (AuthorizePodWebsocketUpgradeCreatePermission beta, on, 1.35: `pkg/features/kube_features.go`,
  `pkg/registry/core/pod/rest/subresources.go` `ensureAuthorizedForVerb`, kubernetes#133515). A SPDY exec is an
  HTTP POST, authorized as `create`, in every release.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Tuple

V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"


@dataclass(frozen=True)
class ServerRules:
    git_version: str  # as /version says it ("v1.35.0", "v1.29.3-eks-..."); "" when unknown
    minor: Optional[int]  # None when /version could not be read or parsed: assume the newest rules

    @property
    def known(self) -> bool:
        return self.minor is not None

    def _at_least(self, minor: int) -> bool:
        return self.minor is None or self.minor >= minor

    @property
    def name(self) -> str:
        return f"Kubernetes {self.git_version}" if self.git_version else "a server of unknown version"

    @property
    def short(self) -> str:
        return f"1.{self.minor}" if self.minor is not None else "this server"

    @property
    def websocket_v5(self) -> bool:
        return self._at_least(30)

    @property
    def websocket_protocol(self) -> str:
        return V5 if self.websocket_v5 else V4

    @property
    def websocket_needs_create(self) -> bool:
        return self._at_least(35)

    @property
    def websocket_verbs(self) -> Tuple[str, ...]:
        """What RBAC must allow on pods/exec for a WebSocket exec (HTTP GET)."""
        return ("get", "create") if self.websocket_needs_create else ("get",)

    @property
    def spdy_verbs(self) -> Tuple[str, ...]:
        """A SPDY exec is an HTTP POST, authorized as `create`, in every release."""
        return ("create",)

    @property
    def ephemeral_stage(self) -> str:
        if self.minor is None or self.minor >= 25:
            return "GA"
        return "beta, on by default" if self.minor >= 23 else "alpha, off by default" if self.minor >= 16 else "absent"

    @property
    def pod_security_stage(self) -> str:
        if self.minor is None or self.minor >= 25:
            return "GA"
        return "beta, on by default" if self.minor >= 23 else "alpha, off by default" if self.minor == 22 else "absent"

    @property
    def pod_security_enforced(self) -> bool:
        """Whether the namespace's `pod-security.kubernetes.io/enforce` label is enforced by default."""
        return self._at_least(23)


def parse_version(info: dict) -> ServerRules:
    """`/version` -> rules. Managed clusters say `"minor": "29+"` (GKE) or a suffixed gitVersion (EKS, k3s)."""
    git = str(info.get("gitVersion") or "")
    minor = None
    if str(info.get("major") or "").rstrip("+") == "1":
        m = re.match(r"\d+", str(info.get("minor") or ""))
        minor = int(m.group()) if m else None
    if minor is None:
        m = re.match(r"v?1\.(\d+)", git)
        minor = int(m.group(1)) if m else None
    return ServerRules(git, minor)


def read_rules(rest) -> ServerRules:
    """`GET /version` (public to every client, system:public-info-viewer); unknown rules when it fails."""
    try:
        return parse_version(rest.get("/version"))
    except Exception:  # noqa: BLE001 - any failure leaves the version unknown; the calls that matter say more
        return ServerRules("", None)
