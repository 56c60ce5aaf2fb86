"""A debug session: the one entry point commands use to run things in a pod's network namespace.

```python
with open_debug_session(kube, pod, container=None, image=None, ttl=None) as session:
    r = session.run(["iptables-save"], timeout=30)             # ExecResult(stdout, stderr, exit_code, error)
    r = session.stream(argv, on_stdout=cb, on_stderr=cb, stop=threading.Event())
```
Opening resolves the kubeconfig like kubectl, reads the pod, reuses or adds our ephemeral debug container
(NET_ADMIN/NET_RAW only) and waits until it runs. A binary missing in the image comes back as `exit_code` 127
with the runtime's words in `error` (`collect.recipe.binary_missing` tells).
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, List, Optional, Sequence

from kubectl_whose.chatter import say as stderr_say
from kubectl_whose.cluster.exec_stream import ExecResult, run_exec

__all__ = ["open_debug_session", "DebugSession", "ExecResult"]


class DebugSession:
    def __init__(self, cluster, pod: str, container, image: str):
        self.cluster = cluster
        self.pod = pod
        self.container = container  # ephemeral.DebugContainer
        self.image = image

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
        result = run_exec(self.cluster, self.namespace, self.pod, self.container.name, list(argv), chunks.append,
                          timeout=timeout)
        result.stdout = b"".join(chunks)
        return result

    def stream(self, argv: Sequence[str], on_stdout: Callable[[bytes], None],
               on_stderr: Optional[Callable[[bytes], None]] = None, stop: Optional[threading.Event] = None,
               timeout: Optional[float] = None, label: Optional[str] = None) -> ExecResult:
        """Binary-safe streaming: stdout chunks go to `on_stdout` as they arrive and are not kept here. Setting
        `stop` abandons the stream (the remote process keeps running: stop it yourself first)."""
        return run_exec(self.cluster, self.namespace, self.pod, self.container.name, list(argv), on_stdout,
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
    from kubectl_whose.cluster.client import connect
    from kubectl_whose.cluster.debug_container import CAPABILITIES, DEFAULT_TTL, PTRACE, DebugSpec
    from kubectl_whose.cluster.ephemeral import ensure_debug_container
    from kubectl_whose.cluster.image import resolve_image

    cluster = connect(kube)
    img = resolve_image(image)
    ttl_s = int(ttl) if ttl else DEFAULT_TTL
    spec = DebugSpec(image=img, target=container, ttl_seconds=max(ttl_s, int(min_remaining) + 1),
                     capabilities=CAPABILITIES + ((PTRACE,) if ptrace else ()))
    debug = ensure_debug_container(cluster, pod, spec, min_remaining=min_remaining, timeout=start_timeout, say=say)
    yield DebugSession(cluster, pod, debug, img)
