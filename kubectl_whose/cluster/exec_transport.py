"""Which exec transport to use, and the one seam every exec goes through (`ExecChannel.run`).

kubectl tries a WebSocket first and falls back to SPDY/3.1 when the upgrade is refused (client-go
`remotecommand.NewFallbackExecutor` with `httpstream.IsUpgradeFailure`). We do the same, but decide up front with
the server's release (`server_version`) and SelfSubjectAccessReviews for the verbs each transport is authorized as:
- WebSocket (GET): `get` on pods/exec, and `create` too from 1.35; `v5.channel.k8s.io` from 1.30, else v4;
- SPDY/3.1 (POST): `create` on pods/exec.
So a Role with only `create` works everywhere over SPDY, one with only `get` works over a WebSocket before 1.35,
and when neither transport is allowed the run is refused before anything is added to the pod. A refused upgrade
still falls back to the other transport (a review can be wrong: webhook authorizers, proxies that block one
protocol), and the transport that worked is used first from then on.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

from kubectl_whose.cluster.exec_api import SPDY, WEBSOCKET, ExecResult, UpgradeRefused
from kubectl_whose.errors import ExitCode, WhoseError


def _allowed(perms: dict, verbs: Sequence[str]) -> Optional[bool]:
    """True if every verb is allowed, False if one is denied, None when a review could not tell."""
    answers = [perms.get(v) for v in verbs]
    if any(a is False for a in answers):
        return False
    return True if all(a is True for a in answers) else None


@dataclass(frozen=True)
class ExecPlan:
    rules: object  # server_version.ServerRules
    may_get: Optional[bool]
    may_create: Optional[bool]

    @property
    def _perms(self) -> dict:
        return {"get": self.may_get, "create": self.may_create}

    def verbs(self, transport: str) -> Tuple[str, ...]:
        return self.rules.websocket_verbs if transport == WEBSOCKET else self.rules.spdy_verbs

    def allowed(self, transport: str) -> Optional[bool]:
        return _allowed(self._perms, self.verbs(transport))

    @property
    def order(self) -> Tuple[str, ...]:
        """WebSocket first (kubectl's preference) unless the reviews say only SPDY is allowed."""
        if self.allowed(WEBSOCKET) is False and self.allowed(SPDY) is not False:
            return SPDY, WEBSOCKET
        return WEBSOCKET, SPDY

    @property
    def refused(self) -> bool:
        return self.allowed(WEBSOCKET) is False and self.allowed(SPDY) is False

    @property
    def transport(self) -> str:
        return self.order[0]

    def protocol(self, transport: str) -> str:
        return self.rules.websocket_protocol if transport == WEBSOCKET else "v4.channel.k8s.io"

    def _verb_rule(self) -> str:
        rel = self.rules.short
        if self.rules.websocket_needs_create:
            return f'{rel} authorizes every exec as "create" on pods/exec (a WebSocket exec also as "get")'
        return f'{rel} authorizes a WebSocket exec as "get" and a SPDY exec as "create" on pods/exec'

    def _answers(self) -> str:
        words = {True: "allowed", False: "denied", None: "unknown"}
        return f"get {words[self.may_get]}, create {words[self.may_create]}"

    def describe(self) -> str:
        """For doctor: which transport, and why, in the words of this release's rules."""
        if self.refused:
            return f"denied: {self._verb_rule()}; {self._answers()}"
        first = self.transport
        name = f"{first} ({self.protocol(first)}"
        if first == WEBSOCKET and not self.rules.websocket_v5:
            name += f", {self.rules.short} serves no v5"
        name += ")"
        if self.allowed(first) is None:
            return f"{name} first, then {self.order[1]}: the access reviews could not tell ({self._answers()})"
        if first == WEBSOCKET:
            verbs = " and ".join(self.verbs(WEBSOCKET))
            return f"{name}: {self.rules.short} authorizes it as {verbs} on pods/exec, allowed"
        return f"{name}: {self._verb_rule()}; {self._answers()}"

    def refusal(self, namespace: str, user: Optional[str] = None) -> WhoseError:
        """`user`: who to bind the Role to (SelfSubjectReview), else the message says to bind it."""
        from kubectl_whose.cluster.client import role_command

        grant = role_command(namespace, "get,create", "pods/exec", user)
        bind = "" if user else " (and bind it to your user)"
        return WhoseError(f'RBAC forbids exec in namespace "{namespace}": {self._verb_rule()}, and {self._answers()}; '
                          f"nothing was added to the pod; grant it with: {grant}{bind}", ExitCode.FORBIDDEN)


def plan_exec(cluster, pod: Optional[str], thorough: bool = False) -> ExecPlan:
    """The release's rules plus as few reviews as decide the transport (`thorough`: both verbs, for doctor)."""
    from kubectl_whose.cluster.access import can_i

    rules = cluster.rules
    may_get = can_i(cluster, "get", "pods", "exec", pod)
    may_create = None
    if thorough or rules.websocket_needs_create or may_get is not True:
        may_create = can_i(cluster, "create", "pods", "exec", pod)
    return ExecPlan(rules, may_get, may_create)


def _runner(transport: str):
    if transport == SPDY:
        from kubectl_whose.cluster import exec_spdy

        return exec_spdy.run_exec
    from kubectl_whose.cluster import exec_websocket

    return exec_websocket.run_exec


def _worst(errors: List[WhoseError]) -> WhoseError:
    """A 403 says only that one transport's verb is missing; any other refusal is the same on both."""
    return next((e for e in errors if e.code != ExitCode.FORBIDDEN), errors[-1])


class ExecChannel:
    """Runs commands in a pod's container over the planned transports; sticks to the one that worked."""

    def __init__(self, cluster, plan: ExecPlan):
        self.cluster, self.plan = cluster, plan
        self.order: List[str] = list(plan.order)

    @property
    def transport(self) -> str:
        return self.order[0]

    def run(self, namespace: str, pod: str, container: str, argv: Sequence[str],
            on_stdout: Callable[[bytes], None], on_stderr: Optional[Callable[[bytes], None]] = None,
            stop=None, timeout: Optional[float] = None, label: Optional[str] = None) -> ExecResult:
        errors: List[WhoseError] = []
        for transport in list(self.order):
            try:
                result = _runner(transport)(self.cluster, namespace, pod, container, argv, on_stdout, on_stderr,
                                            stop, timeout, label)
            except UpgradeRefused as refused:
                errors.append(refused.error)
                continue
            self.order.remove(transport)
            self.order.insert(0, transport)
            return result
        raise _worst(errors)
