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
    enter: bool = False  # --node-nsenter: hostPID + SYS_ADMIN + SYS_PTRACE, to enter the pod's network namespace


NODE_HELP = ("Work from the pod's node instead of inside the pod, for namespaces whose PodSecurity forbids NET_RAW: "
             "creates a short-lived node debug pod (hostNetwork, NET_ADMIN+NET_RAW, never privileged, pinned to the "
             "pod's node, deleted when done) and finds the pod's host-side interface. The node cannot see the "
             "pod's lo (app <-> sidecar); --node-nsenter can.")
NODE_ENTER_HELP = ("With --node: also give the node debug pod hostPID and SYS_ADMIN+SYS_PTRACE, so it enters the pod's "
                   "own network namespace (nsenter -n) and captures there, lo included, as inside the pod. It grants "
                   "more: the node debug pod sees every process on the node and may enter the namespaces of any of "
                   "them; still never privileged, and still deleted when done.")
ENTER_CAPABILITIES = ("SYS_ADMIN", "SYS_PTRACE")  # setns() into another network namespace; reading /proc/PID/ns
