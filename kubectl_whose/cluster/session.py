"""A debug session: the one entry point commands use to run things in a pod's network namespace.

```python
with open_debug_session(kube, pod, container=None, image=None, ttl=None) as session:
    r = session.run(["iptables-save"], timeout=30)             # ExecResult(stdout, stderr, exit_code, error)
    r = session.stream(argv, on_stdout=cb, on_stderr=cb, stop=threading.Event())
```
Opening resolves the kubeconfig like kubectl, reads the server's release, picks the exec transport that release
and the user's RBAC allow (`exec_transport`: WebSocket or SPDY/3.1; refused, exit 6, before anything is added),
reads the pod, reuses or adds our ephemeral debug container (NET_ADMIN/NET_RAW only) and waits until it runs.
`session.transport` names the transport in use. A binary missing in the image comes back as `exit_code` 127
with the runtime's words in `error` (`collect.recipe.binary_missing` tells).
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, List, Optional, Sequence

from kubectl_whose.chatter import say as stderr_say
from kubectl_whose.cluster.exec_api import ExecResult

__all__ = ["open_debug_session", "DebugSession", "ExecResult"]


class DebugSession:
    def __init__(self, cluster, pod: str, container, image: str, channel):
        self.cluster = cluster
        self.pod = pod
        self.container = container  # ephemeral.DebugContainer
        self.image = image
        self.channel = channel  # exec_transport.ExecChannel

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
        result = self.channel.run(self.namespace, self.pod, self.container.name, list(argv), chunks.append,
                                  timeout=timeout)
        result.stdout = b"".join(chunks)
        return result

    def stream(self, argv: Sequence[str], on_stdout: Callable[[bytes], None],
               on_stderr: Optional[Callable[[bytes], None]] = None, stop: Optional[threading.Event] = None,
               timeout: Optional[float] = None, label: Optional[str] = None) -> ExecResult:
        """Binary-safe streaming: stdout chunks go to `on_stdout` as they arrive and are not kept here. Setting
        `stop` abandons the stream (the remote process keeps running: stop it yourself first)."""
        return self.channel.run(self.namespace, self.pod, self.container.name, list(argv), on_stdout, on_stderr,
                                stop, timeout, label)


@contextmanager
def open_debug_session(kube, pod: str, container: Optional[str] = None, image: Optional[str] = None,
                       ttl: Optional[float] = None, *, min_remaining: float = 60.0, start_timeout: float = 120.0,
                       say: Optional[Callable[[str], None]] = stderr_say) -> Iterator[DebugSession]:
    """`kube` is `cli.options.KubeFlags`; `container` is the pod's container to share a process namespace with
    (`-c`); `ttl` seconds the debug container idles before it exits; `min_remaining` the lifetime a reused
    container must still have."""
    from kubectl_whose.cluster.access import whoami
    from kubectl_whose.cluster.client import connect
    from kubectl_whose.cluster.debug_container import DEFAULT_TTL, DebugSpec
    from kubectl_whose.cluster.ephemeral import ensure_debug_container
    from kubectl_whose.cluster.exec_transport import ExecChannel, plan_exec
    from kubectl_whose.cluster.image import resolve_image

    cluster = connect(kube)
    plan = plan_exec(cluster, pod)
    if plan.refused:  # before the container is added: it could never be used, nor removed
        raise plan.refusal(cluster.namespace, whoami(cluster))
    img = resolve_image(image)
    ttl_s = int(ttl) if ttl else DEFAULT_TTL
    spec = DebugSpec(image=img, target=container, ttl_seconds=max(ttl_s, int(min_remaining) + 1))
    debug = ensure_debug_container(cluster, pod, spec, min_remaining=min_remaining, timeout=start_timeout, say=say)
    yield DebugSession(cluster, pod, debug, img, ExecChannel(cluster, plan))
