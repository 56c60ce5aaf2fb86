"""A debug session: the one entry point commands use to run things in a pod's network namespace.

```python
with open_debug_session(kube, pod, container=None, image=None, ttl=None) as session:
    r = session.run(["iptables-save"], timeout=30)             # ExecResult(stdout, stderr, exit_code, error)
    r = session.stream(argv, on_stdout=cb, on_stderr=cb, stop=threading.Event())
```
Opening resolves the kubeconfig like kubectl, reads the server's release, picks the exec transport that release
and the user's RBAC allow (`exec_transport`: WebSocket or SPDY/3.1; refused, exit 6, before anything is added),
reads the pod, reuses or adds our ephemeral debug container (NET_ADMIN/NET_RAW only) and waits until it runs.
`open_node_session` is the same on the pod's node instead (`--node`): a node debug pod with hostNetwork, deleted
when the block ends. `session.transport` names the exec transport in use. A binary missing in the image comes
back as `exit_code` 127 with the runtime's words in `error` (`collect.recipe.binary_missing` tells).
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

from kubectl_whose.chatter import say as stderr_say
from kubectl_whose.cluster.exec_api import ExecResult

__all__ = ["open_debug_session", "open_node_session", "DebugSession", "ExecResult", "NodeTarget"]


class DebugSession:
    def __init__(self, cluster, pod: str, container, image: str, channel, pod_ips: Sequence[str] = ()):
        self.cluster = cluster
        self.pod = pod
        self.container = container  # ephemeral.DebugContainer
        self.image = image
        self.channel = channel  # exec_transport.ExecChannel
        self.pod_ips = tuple(pod_ips)  # the pod's addresses (status.podIPs) when the session was opened
        self.netns_pid: Optional[int] = None  # --node-nsenter: every command runs in this process's network ns

    def entered(self, pid: int) -> "DebugSession":
        """The same node debug pod, with every command run in the network namespace of host process `pid` (the
        pod's): `nsenter -t PID -n -- argv` (hostPID and SYS_ADMIN+SYS_PTRACE, --node-nsenter)."""
        inner = DebugSession(self.cluster, self.pod, self.container, self.image, self.channel, self.pod_ips)
        inner.netns_pid = pid
        return inner

    def _argv(self, argv: Sequence[str]) -> List[str]:
        if self.netns_pid is None:
            return list(argv)
        return ["nsenter", "-t", str(self.netns_pid), "-n", "--", *argv]

    @property
    def transport(self) -> str:
        """The exec transport in use ("WebSocket" or "SPDY/3.1"); each ExecResult says which one carried it."""
        return self.channel.transport

    @property
    def namespace(self) -> str:
        return self.cluster.namespace

    @property
    def container_name(self) -> str:
        return self.container.name

    @property
    def reused(self) -> bool:
        return self.container.reused

    def remaining(self) -> Optional[float]:
        """Seconds until the idle process of the debug container ends (and it with it)."""
        if self.container.expires_at is None:
            return None
        return self.container.expires_at - time.time()

    def run(self, argv: Sequence[str], timeout: float = 30) -> ExecResult:
        """Run to completion and collect stdout (for small outputs: rule dumps, `ip -j`, `ss`)."""
        chunks: List[bytes] = []
        result = self.channel.run(self.namespace, self.pod, self.container.name, self._argv(argv), chunks.append,
                                  timeout=timeout)
        result.stdout = b"".join(chunks)
        return result

    def stream(self, argv: Sequence[str], on_stdout: Callable[[bytes], None],
               on_stderr: Optional[Callable[[bytes], None]] = None, stop: Optional[threading.Event] = None,
               timeout: Optional[float] = None, label: Optional[str] = None) -> ExecResult:
        """Binary-safe streaming: stdout chunks go to `on_stdout` as they arrive and are not kept here. Setting
        `stop` abandons the stream (the remote process keeps running: stop it yourself first)."""
        return self.channel.run(self.namespace, self.pod, self.container.name, self._argv(argv), on_stdout,
                                on_stderr, stop, timeout, label)


@contextmanager
def open_debug_session(kube, pod: str, container: Optional[str] = None, image: Optional[str] = None,
                       ttl: Optional[float] = None, *, min_remaining: float = 60.0, start_timeout: float = 120.0,
                       say: Optional[Callable[[str], None]] = stderr_say,
                       ptrace: bool = False) -> Iterator[DebugSession]:
    """`kube` is `cli.options.KubeFlags`; `container` is the pod's container to share a process namespace with
    (`-c`); `ttl` seconds the debug container idles before it exits; `min_remaining` the lifetime a reused
    container must still have; `ptrace` adds SYS_PTRACE (--ptrace; a container without it is never reused for it,
    nor one with it for a run without)."""
    from kubectl_whose.cluster.access import whoami
    from kubectl_whose.cluster.client import connect
    from kubectl_whose.cluster.debug_container import CAPABILITIES, DEFAULT_TTL, PTRACE, DebugSpec
    from kubectl_whose.cluster.ephemeral import ensure_debug_container, read_pod
    from kubectl_whose.cluster.exec_transport import ExecChannel, plan_exec
    from kubectl_whose.cluster.image import resolve_image

    cluster = connect(kube)
    plan = plan_exec(cluster, pod)
    if plan.refused:  # before the container is added: it could never be used, nor removed
        raise plan.refusal(cluster.namespace, whoami(cluster))
    img = resolve_image(image)
    ttl_s = int(ttl) if ttl else DEFAULT_TTL
    spec = DebugSpec(image=img, target=container, ttl_seconds=max(ttl_s, int(min_remaining) + 1),
                     capabilities=CAPABILITIES + ((PTRACE,) if ptrace else ()))
    obj = read_pod(cluster, pod)
    debug = ensure_debug_container(cluster, pod, spec, min_remaining=min_remaining, timeout=start_timeout, say=say,
                                   pod_obj=obj)
    yield DebugSession(cluster, pod, debug, img, ExecChannel(cluster, plan), pod_addresses(obj))


@dataclass(frozen=True)
class NodeTarget:
    """The pod a node session serves, as the node sees it."""

    namespace: str
    pod: Optional[str]
    node: str
    ip: Optional[str]
    pod_object: Optional[dict]


@contextmanager
def open_node_session(kube, pod: Optional[str], image: Optional[str] = None, ttl: Optional[float] = None,
                      node_namespace: Optional[str] = None, *, node: Optional[str] = None,
                      start_timeout: float = 120.0, enter: bool = False,
                      say: Optional[Callable[[str], None]] = stderr_say) -> Iterator[Tuple[DebugSession, NodeTarget]]:
    """A short-lived node debug pod on POD's node, or on `node` (`rules node/NAME`) (`cluster.node_pod`),
    deleted when the block ends, also on Ctrl-C and on errors. Yields the session (commands run in the node's
    network namespace) and the target (`pod`, `ip` and `pod_object` are None for a node target)."""
    from kubectl_whose.cluster.access import whoami
    from kubectl_whose.cluster.client import connect
    from kubectl_whose.cluster.config_file import config_value
    from kubectl_whose.cluster.debug_container import DEFAULT_TTL, DebugSpec, check_pod_running, random_suffix
    from kubectl_whose.cluster.ephemeral import DebugContainer, read_pod
    from kubectl_whose.cluster.exec_transport import ExecChannel, plan_exec
    from kubectl_whose.cluster.image import resolve_image
    from kubectl_whose.cluster.node_pod import (build_node_pod, check_node_ready, create_node_pod, delete_node_pod,
                                                node_of, pod_ip, wait_node_pod)

    cluster = connect(kube)
    target = None
    if pod is not None:
        target = read_pod(cluster, pod)
        check_pod_running(target)
        node = node_of(target)
    _check_node(cluster, node, check_node_ready)
    where = cluster.in_namespace(node_namespace or config_value("node_namespace") or cluster.namespace)
    img = resolve_image(image)
    spec = DebugSpec(image=img, ttl_seconds=int(ttl) if ttl else DEFAULT_TTL)
    body = build_node_pod(node, spec, cluster.namespace if pod else "node", pod or node, random_suffix(), enter=enter)
    name = body["metadata"]["name"]
    plan = plan_exec(where, name)
    if plan.refused:  # before the node debug pod is made: nothing could run in it
        raise plan.refusal(where.namespace, whoami(where))
    if say:
        grants = "hostNetwork, hostPID, NET_ADMIN+NET_RAW+SYS_ADMIN+SYS_PTRACE" if enter else \
            "hostNetwork, NET_ADMIN+NET_RAW"
        say(f"creating node debug pod {where.namespace}/{name} on node {node} ({grants}, image {img}, at most "
            f"{spec.ttl_seconds}s; removed when done)")
    created = False
    try:
        create_node_pod(where, body)
        created = True
        started = wait_node_pod(where, body, img, start_timeout, say)
        session = DebugSession(where, name, DebugContainer("debug", img, False, started + spec.ttl_seconds), img,
                               ExecChannel(where, plan), pod_addresses(target) if target else ())
        yield session, NodeTarget(cluster.namespace, pod, node, pod_ip(target) if target else None, target)
    finally:
        if created:
            why = delete_node_pod(where, name)
            if why and say:
                say(f"could not remove node debug pod {where.namespace}/{name} ({why}); it ends by itself after "
                    f"{spec.ttl_seconds}s, or: kubectl delete pod -n {where.namespace} {name}")


def _check_node(cluster, node: str, check) -> None:
    """The node must be Ready; a user who may not read nodes (a cluster-scoped resource) skips the check."""
    from kubectl_whose.cluster.rest import ApiError

    try:
        obj = cluster.rest.get(f"/api/v1/nodes/{node}")
    except ApiError:
        return
    check(obj)


def pod_addresses(pod: dict) -> Tuple[str, ...]:
    status = pod.get("status") or {}
    ips = [p.get("ip") for p in status.get("podIPs") or [] if p.get("ip")] or [status.get("podIP")]
    return tuple(ip for ip in ips if ip)
