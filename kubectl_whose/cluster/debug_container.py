"""The ephemeral debug container: a pure builder (pod dict in, container/patch out) and the API steps around it.

Shape (kubectl's `generateDebugContainer` + `netadmin` profile, minus its non-root trap):
- name `whose-<5 chars>`; containers cannot carry labels or annotations, so ours are recognised by that name
  prefix *and* the env var `KUBECTL_WHOSE_DEBUG` (a user's own `whose-x` container is never taken over);
- `securityContext: {capabilities: {add: [NET_ADMIN, NET_RAW]}, runAsUser: 0, runAsNonRoot: false}` -- nothing
  broader, never `privileged`. Root is explicit because a pod-level `runAsNonRoot: true` is inherited and makes
  the kubelet refuse a root image (CreateContainerConfigError, kubernetes#113006), and capabilities in
  `capabilities.add` are only effective for uid 0 in practice;
- `targetContainerName` from `-c`, to share that container's process namespace (socket owners get names);
- command `["sleep", "<ttl seconds>"]`. Why a plain `sleep` and not "TTL since last use": ephemeral containers can
  never be removed, so what matters is that the idle process -- and with it the capabilities -- goes away by
  itself. `sleep` exists in every image we would pick, needs no shell, clock or writable filesystem, and cannot
  be kept alive by accident. A container is reused only while enough of its lifetime is left
  (`find_reusable(..., min_remaining)`); otherwise a fresh one is added. Every command we exec is itself wrapped in
  `timeout`, so nothing outlives its run either.
"""
from __future__ import annotations

import calendar
import random
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

from kubectl_whose.errors import ExitCode, WhoseError

NAME_PREFIX = "whose-"
MARKER_ENV = "KUBECTL_WHOSE_DEBUG"
TTL_ENV = "KUBECTL_WHOSE_TTL"
CAPABILITIES = ("NET_ADMIN", "NET_RAW")
# --ptrace: ss names a socket's process by reading its /proc/PID/fd, which for another uid (Istio's proxy, 1337)
# takes CAP_SYS_PTRACE (ptrace access mode PTRACE_MODE_READ_FSCREDS, proc(5)); it also lets the container read
# and trace those processes, so it is only added when asked for.
PTRACE = "SYS_PTRACE"
DEFAULT_TTL = 600  # seconds
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s utilrand: no vowels, no look-alikes

IMAGE_PULL_REASONS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
START_FAILURE_REASONS = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}


def random_suffix(rng: Optional[random.Random] = None) -> str:
    pick = (rng or random.SystemRandom()).choice
    return "".join(pick(_SUFFIX_ALPHABET) for _ in range(5))


@dataclass(frozen=True)
class DebugSpec:
    """What the user asked for; two containers with the same spec are interchangeable."""

    image: str
    target: Optional[str] = None
    ttl_seconds: int = DEFAULT_TTL
    capabilities: Tuple[str, ...] = CAPABILITIES  # never `privileged`; + PTRACE with --ptrace


# --- pure builders ----------------------------------------------------------------------------------------------

def add_capability(container: dict, cap: str) -> None:
    caps = container.setdefault("securityContext", {}).setdefault("capabilities", {}).setdefault("add", [])
    if cap not in caps:
        caps.append(cap)


def run_as_root(container: dict) -> None:
    sc = container.setdefault("securityContext", {})
    sc["runAsUser"] = 0
    sc["runAsNonRoot"] = False


def build_debug_container(pod: dict, spec: DebugSpec, suffix: str) -> dict:
    """The ephemeral container to add to `pod` (which is not modified)."""
    validate_target(pod, spec.target)
    name = NAME_PREFIX + suffix
    if name in container_names(pod):
        raise ValueError(f"name {name} is taken; pick another suffix")
    container = {
        "name": name,
        "image": spec.image,
        "command": ["sleep", str(int(spec.ttl_seconds))],
        "env": [{"name": MARKER_ENV, "value": "1"}, {"name": TTL_ENV, "value": str(int(spec.ttl_seconds))}],
        "terminationMessagePolicy": "File",
        "resources": {},
    }
    for cap in spec.capabilities:
        add_capability(container, cap)
    run_as_root(container)
    if spec.target:
        container["targetContainerName"] = spec.target
    return container


def build_patch(container: dict, resource_version: Optional[str] = None) -> dict:
    """Strategic merge patch: the list merges by name, so only the new container is sent (a JSON merge patch would
    replace the list and the server would answer 'existing ephemeral containers may not be removed').
    `resource_version`, the pod's as read, makes the write conditional: a run that added a container since then
    turns ours into a 409, so concurrent runs add one container, not one each."""
    patch: dict = {"spec": {"ephemeralContainers": [container]}}
    if resource_version:
        patch["metadata"] = {"resourceVersion": resource_version}
    return patch


def container_names(pod: dict) -> List[str]:
    spec = pod.get("spec") or {}
    return [c.get("name", "") for key in ("initContainers", "containers", "ephemeralContainers")
            for c in spec.get(key) or []]


def validate_target(pod: dict, target: Optional[str]) -> None:
    if not target:
        return
    names = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
    names += [c.get("name", "") for c in (pod.get("spec") or {}).get("initContainers") or []]
    if target not in names:
        pod_name = (pod.get("metadata") or {}).get("name", "?")
        raise WhoseError(f'container "{target}" not found in pod "{pod_name}"; -c must name one of: '
                         f"{', '.join(names) or 'none'}", ExitCode.NOT_FOUND)


def check_pod_running(pod: dict) -> None:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    name, phase = meta.get("name", "?"), status.get("phase") or "Unknown"
    if meta.get("deletionTimestamp"):
        raise WhoseError(f'pod "{name}" is being deleted; pick a running pod', ExitCode.POD_NOT_RUNNING)
    if phase in ("Succeeded", "Failed"):
        raise WhoseError(f'pod "{name}" has finished (phase {phase}); the kubelet starts no containers in a '
                         f"finished pod, pick a running one", ExitCode.POD_NOT_RUNNING)
    if not spec.get("nodeName"):
        raise WhoseError(f'pod "{name}" is not scheduled on a node yet (phase {phase}); wait until it runs',
                         ExitCode.POD_NOT_RUNNING)
    if phase != "Running":
        raise WhoseError(f'pod "{name}" is not running (phase {phase}); wait until it runs', ExitCode.POD_NOT_RUNNING)


@dataclass(frozen=True)
class DebugContainerView:
    """One of our debug containers as the pod shows it (spec + status), for reuse and `ps`."""

    name: str
    image: str
    target: Optional[str]
    capabilities: tuple
    privileged: bool
    ttl_seconds: Optional[int]
    state: str  # running | waiting | terminated | unknown
    reason: str
    message: str
    started_at: Optional[float]

    def remaining(self, now: float) -> Optional[float]:
        if self.state != "running" or self.ttl_seconds is None or self.started_at is None:
            return None
        return self.started_at + self.ttl_seconds - now

    def matches(self, spec: DebugSpec) -> bool:
        same_target = spec.target is None or self.target == spec.target
        return (self.image == spec.image and same_target and not self.privileged
                and sorted(self.capabilities) == sorted(spec.capabilities))


def debug_containers(pod: dict) -> List[DebugContainerView]:
    """Our debug containers in the pod, oldest first."""
    statuses = {s.get("name"): s for s in (pod.get("status") or {}).get("ephemeralContainerStatuses") or []}
    views = []
    for c in (pod.get("spec") or {}).get("ephemeralContainers") or []:
        env = {e.get("name"): e.get("value") for e in c.get("env") or []}
        if not c.get("name", "").startswith(NAME_PREFIX) or MARKER_ENV not in env:
            continue
        sc = c.get("securityContext") or {}
        ttl = env.get(TTL_ENV)
        state, reason, message, started = container_state(statuses.get(c["name"]))
        views.append(DebugContainerView(
            name=c["name"], image=c.get("image", ""), target=c.get("targetContainerName") or None,
            capabilities=tuple((sc.get("capabilities") or {}).get("add") or ()), privileged=bool(sc.get("privileged")),
            ttl_seconds=int(ttl) if ttl and ttl.isdigit() else None, state=state, reason=reason, message=message,
            started_at=started))
    return views


def find_reusable(pod: dict, spec: DebugSpec, now: float, min_remaining: float) -> Optional[DebugContainerView]:
    """The running container of ours with the same image/capabilities (and target) and enough lifetime left;
    the one with the most lifetime left wins."""
    best = None
    for view in debug_containers(pod):
        left = view.remaining(now)
        if view.matches(spec) and left is not None and left >= min_remaining:
            if best is None or left > best.remaining(now):
                best = view
    return best


def find_starting(pod: dict, spec: DebugSpec, min_remaining: float) -> Optional[DebugContainerView]:
    """A container of ours with this spec that another run has just added and that has not started yet (no
    status, or waiting for its image): waiting for it beats adding a second one, which could never be removed."""
    for view in reversed(debug_containers(pod)):
        if (view.matches(spec) and view.state in ("waiting", "unknown") and view.started_at is None
                and (view.ttl_seconds or 0) >= min_remaining):
            return view
    return None


def container_status(pod: dict, name: str) -> Optional[dict]:
    status = pod.get("status") or {}
    for key in ("ephemeralContainerStatuses", "containerStatuses", "initContainerStatuses"):
        for s in status.get(key) or []:
            if s.get("name") == name:
                return s
    return None


def check_container_start(pod: dict, name: str, image: str) -> bool:
    """True once `name` runs; raises on states that will not get better; False while it may still start."""
    pod_name = (pod.get("metadata") or {}).get("name", "?")
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise WhoseError(f'pod "{pod_name}" finished (phase {phase}) before the debug container started',
                         ExitCode.POD_NOT_RUNNING)
    state, reason, message, _ = container_state(container_status(pod, name))
    words = f" ({message})" if message else ""
    if state == "running":
        return True
    if state == "terminated" and "executable file not found" in message:
        # the runtime could not start the idle `sleep`: an image without it (distroless, scratch)
        raise WhoseError(f"the debug image {image} has no sleep, so the debug container cannot idle; pass --image "
                         f"with an image that carries sh, sleep and tcpdump (default nicolaka/netshoot:v0.13)",
                         ExitCode.TOOL_MISSING)
    if state == "terminated":
        raise WhoseError(f'debug container {name} in pod "{pod_name}" exited ({reason or "terminated"}){words}; '
                         f"run again to add a fresh one", ExitCode.POD_NOT_RUNNING)
    if reason in IMAGE_PULL_REASONS:
        raise WhoseError(f"the debug image {image} cannot be pulled: {reason}{words}; the debug container {name} stays "
                         f"in pod {pod_name}, never started (ephemeral containers cannot be removed); pass --image "
                         f"with an image the nodes can pull (or set KUBECTL_WHOSE_IMAGE)", ExitCode.IMAGE_PULL)
    if reason in START_FAILURE_REASONS:
        raise WhoseError(f"the debug container {name} cannot start: {reason}{words}; `kubectl describe pod {pod_name}` "
                         f"shows the kubelet's events", ExitCode.POD_NOT_RUNNING)
    return False


def container_state(status: Optional[dict]):
    """(state, reason, message, started_at epoch or None) of a container status."""
    if not status:
        return "unknown", "", "", None
    st = status.get("state") or {}
    if st.get("running") is not None:
        return "running", "", "", _epoch((st["running"] or {}).get("startedAt"))
    if st.get("terminated") is not None:
        t = st["terminated"] or {}
        detail = t.get("message") or (f"exit code {t['exitCode']}" if "exitCode" in t else "")
        return "terminated", t.get("reason", ""), detail, _epoch(t.get("startedAt"))
    if st.get("waiting") is not None:
        w = st["waiting"] or {}
        return "waiting", w.get("reason", ""), w.get("message", ""), None
    return "unknown", "", "", None


def _epoch(ts: Optional[str]) -> Optional[float]:
    if not ts:
        return None
    try:
        return float(calendar.timegm(time.strptime(ts[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return None


SuffixFn = Callable[[], str]
