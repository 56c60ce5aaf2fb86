"""How a command reaches a pod's network: which debug container (`-c`, `--image`, `--ttl`, `--start-timeout`,
`--ptrace`), or a node debug pod instead (`--node`, `--node-namespace`). The cli builds these from flags; the
collectors and `cluster.session` read them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class DebugFlags:
    """How the debug container is chosen or added."""

    container: Optional[str] = None  # share this container's process namespace (targetContainerName)
    image: Optional[str] = None  # None: $KUBECTL_WHOSE_IMAGE, the config file, DEFAULT_IMAGE
    ttl: Optional[float] = None  # seconds the idle process lives; None: the default (10 minutes)
    start_timeout: float = 120.0
    ptrace: bool = False  # --ptrace: add SYS_PTRACE, so ss names the processes of other uids


@dataclass(frozen=True)
class NodeFlags:
    """Work from a node debug pod on the pod's node, and the namespace that pod goes in."""

    node: bool = False
    namespace: Optional[str] = None  # None: node_namespace: in the config file, else the command's namespace
