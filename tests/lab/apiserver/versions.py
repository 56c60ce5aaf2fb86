"""The Kubernetes releases the lab can present itself as, and the rules that changed between them.

Each rule is a feature gate's default in a release; the lab enforces exactly the rules of the release that
`/version` names (`PUT /lab/v1/config {"version": "1.29"}`, `lab.server_version("1.29")` in the fixture):

| rule | from | source |
| --- | --- | --- |
| `pods/ephemeralcontainers` served (EphemeralContainers alpha/off 1.16-1.22, beta/on 1.23, GA 1.25) | 1.23 | kubernetes/website feature-gates/ephemeral-containers.md |
| PodSecurity admission enforces the namespace labels (alpha/off 1.22, beta/on 1.23, GA 1.25) | 1.23 | kubernetes.io "Enforce Pod Security Standards by Configuring the Built-in Admission Controller"; enhancements#2579 |
| WebSocket `v5.channel.k8s.io` served by the API server's stream translator (TranslateStreamCloseWebsocketRequests alpha/off 1.29, beta/on 1.30) | 1.30 | kubernetes/kubernetes pkg/features/kube_features.go |
| `authentication.k8s.io/v1` SelfSubjectReview (`kubectl auth whoami`; APISelfSubjectReview alpha 1.26, beta 1.27, GA 1.28) | 1.28 | kubernetes/website feature-gates/APISelfSubjectReview.md |
| a WebSocket exec/attach (HTTP GET, verb `get`) is also authorized for `create` (AuthorizePodWebsocketUpgradeCreatePermission beta/on 1.35) | 1.35 | pkg/features/kube_features.go, pkg/registry/core/pod/rest/subresources.go (`ensureAuthorizedForVerb`) |

SPDY/3.1 exec (HTTP POST, verb `create`) is served by every release here.
"""
from __future__ import annotations

from dataclasses import dataclass

OLDEST, NEWEST = 22, 37
DEFAULT = "1.35"


@dataclass(frozen=True)
class ServerVersion:
    minor: int

    @property
    def name(self) -> str:
        return f"1.{self.minor}"

    @property
    def git_version(self) -> str:
        return f"v1.{self.minor}.0+lab"

    @property
    def ephemeral_containers(self) -> bool:
        return self.minor >= 23

    @property
    def pod_security(self) -> bool:
        return self.minor >= 23

    @property
    def self_subject_review(self) -> bool:
        return self.minor >= 28

    @property
    def websocket_v5(self) -> bool:
        return self.minor >= 30

    @property
    def websocket_needs_create(self) -> bool:
        return self.minor >= 35


def parse(text: str) -> ServerVersion:
    """ "1.29" -> ServerVersion(29); ValueError for anything the lab does not present."""
    major, _, minor = str(text).partition(".")
    if major != "1" or not minor.isdigit() or not OLDEST <= int(minor) <= NEWEST:
        raise ValueError(f"the lab presents Kubernetes 1.{OLDEST} to 1.{NEWEST}, not {text!r}")
    return ServerVersion(int(minor))
