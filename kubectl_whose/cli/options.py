"""Flags shared by several subcommands, and click types that convert at the edge.

kubectl passes no flags to plugins, so the plugin parses kubectl's own connection flags
(-n/--namespace, --context, --kubeconfig) itself; `cluster.kubeconfig` resolves them the way
kubectl does.
"""
from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from typing import Optional

import click

from kubectl_whose.cluster.image import DEFAULT_IMAGE, IMAGE_ENV

OUTPUT_FORMATS = ("table", "wide", "json", "yaml")


@dataclass(frozen=True)
class KubeFlags:
    namespace: Optional[str]
    context: Optional[str]
    kubeconfig: Optional[str]
    request_timeout: float


def kube_flags(f):
    """Add kubectl's connection flags; the command receives them as one `kube: KubeFlags`."""
    f = click.option("--request-timeout", default=30.0, type=float, show_default=True,
                     help="Seconds to wait for each API answer.")(f)
    f = click.option("--kubeconfig", envvar=None, metavar="PATH",
                     help="Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).")(f)
    f = click.option("--context", metavar="NAME", help="The kubeconfig context to use.")(f)
    f = click.option("-n", "--namespace", metavar="NS",
                     help="Namespace of the pod (default: the context's namespace, else 'default').")(f)

    @functools.wraps(f)  # carries click's collected params along
    def wrapper(*args, namespace, context, kubeconfig, request_timeout, **kwargs):
        kwargs["kube"] = KubeFlags(namespace, context, kubeconfig, request_timeout)
        return f(*args, **kwargs)

    return wrapper


@dataclass(frozen=True)
class DebugFlags:
    """How the debug container is chosen or added: `-c`, `--image`, `--ttl`, `--start-timeout`."""

    container: Optional[str] = None  # share this container's process namespace (targetContainerName)
    image: Optional[str] = None  # None: $KUBECTL_WHOSE_IMAGE, the config file, DEFAULT_IMAGE
    ttl: Optional[float] = None  # seconds the idle process lives; None: the default (10 minutes)
    start_timeout: float = 120.0


_CONTAINER_HELP = "Share this container's process namespace (targetContainerName), so its sockets show processes."
_IMAGE_HELP = (f"Debug image (default: ${IMAGE_ENV}, then image: in ~/.config/kubectl-whose/config.yaml, "
               f"then {DEFAULT_IMAGE}).")


def debug_flags(container: bool = True, lifetime: bool = True, container_help: str = _CONTAINER_HELP):
    """kubectl-whose's debug-container flags, declared once: the command receives `debug: DebugFlags`.
    `lifetime` adds --ttl and --start-timeout (commands that may add a container)."""

    def decorate(f):
        if lifetime:
            f = click.option("--start-timeout", type=DurationType(), default="2m", show_default=True,
                             help="How long to wait for a new debug container to run (image pulls can be slow).")(f)
            f = click.option("--ttl", type=DurationType(), default="10m", show_default=True,
                             help="How long the debug container idles before it exits (it is reused meanwhile).")(f)
        f = click.option("--image", metavar="IMAGE", help=_IMAGE_HELP)(f)
        if container:
            f = click.option("-c", "--container", metavar="NAME", help=container_help)(f)

        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            kwargs["debug"] = DebugFlags(kwargs.pop("container", None), kwargs.pop("image", None),
                                         kwargs.pop("ttl", None), kwargs.pop("start_timeout", 120.0))
            return f(*args, **kwargs)

        return wrapper

    return decorate


@dataclass(frozen=True)
class NodeFlags:
    """`--node` (work from a node debug pod on the pod's node) and `--node-namespace` (where that pod goes)."""

    node: bool = False
    namespace: Optional[str] = None  # None: node_namespace: in the config file, else the command's namespace


NODE_HELP = ("Work from the pod's node instead of inside the pod, for namespaces whose PodSecurity forbids NET_RAW: "
             "creates a short-lived node debug pod (hostNetwork, NET_ADMIN+NET_RAW, never privileged, pinned to the "
             "pod's node, deleted when done) and finds the pod's host-side interface. The node cannot see the "
             "pod's lo (app <-> sidecar).")


def node_flags(f):
    """Add --node and --node-namespace; the command receives them as one `node: NodeFlags`."""
    f = click.option("--node-namespace", metavar="NS",
                     help="Namespace for the node debug pod of --node; it must allow hostNetwork and "
                          "NET_ADMIN/NET_RAW (default: node_namespace: in ~/.config/kubectl-whose/config.yaml, "
                          "else the namespace of the command).")(f)
    f = click.option("--node", "on_node", is_flag=True, help=NODE_HELP)(f)

    @functools.wraps(f)
    def wrapper(*args, on_node, node_namespace, **kwargs):
        kwargs["node"] = NodeFlags(on_node, node_namespace)
        return f(*args, **kwargs)

    return wrapper


def split_target(arg: Optional[str], allowed=("pod", "node")):
    """kubectl's TYPE/NAME: `POD`, `pod/POD` or `node/NODE` -> (pod, node name); one of them is None."""
    if not arg or "/" not in arg:
        return arg, None
    kind, name = arg.split("/", 1)
    kind = {"po": "pod", "pods": "pod", "no": "node", "nodes": "node"}.get(kind, kind)
    if kind not in allowed or not name:
        raise click.UsageError(f"{arg!r}: give POD, " + " or ".join(f"{k}/NAME" for k in allowed))
    return (name, None) if kind == "pod" else (None, name)


def output_option(default: str = "table"):
    return click.option("-o", "--output", type=click.Choice(OUTPUT_FORMATS), default=default,
                        show_default=True, help="Output format.")


class DurationType(click.ParamType):
    """`30s`, `2m`, `1h`, `500ms` or plain seconds -> float seconds."""

    name = "duration"
    _UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "": 1.0}
    _RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|)\s*$")

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        m = self._RE.match(str(value))
        if not m:
            self.fail(f"{value!r} is not a duration; use e.g. 30s, 2m, 1h or 500ms", param, ctx)
        seconds = float(m.group(1)) * self._UNITS[m.group(2)]
        if seconds <= 0:
            self.fail(f"{value!r} must be greater than zero", param, ctx)
        return seconds


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: Optional[int]

    def __str__(self) -> str:
        if self.port is None:
            return self.ip
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"


class EndpointType(click.ParamType):
    """`IP:PORT`, `[IPv6]:PORT` or `IP` (port optional unless the command needs it)."""

    name = "ip[:port]"

    def __init__(self, port_required: bool = False):
        self.port_required = port_required

    def convert(self, value, param, ctx):
        if isinstance(value, Endpoint):
            return value
        text = str(value).strip()
        ip, port = text, None
        m = re.match(r"^\[([0-9a-fA-F:.]+)\](?::(\d+))?$", text)
        if m:
            ip, port = m.group(1), m.group(2)
        elif text.count(":") == 1:
            ip, port = text.split(":")
        try:
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            self.fail(f"{text!r} is not IP[:PORT] (examples: 10.96.0.10:53, [fd00::1]:80)", param, ctx)
        if port is not None:
            if not port.isdigit() or not 0 < int(port) < 65536:
                self.fail(f"{text!r}: port must be 1-65535", param, ctx)
            port = int(port)
        elif self.port_required:
            self.fail(f"{text!r} has no port; use IP:PORT (example: 10.96.0.10:53)", param, ctx)
        return Endpoint(ip, port)


def complete_pods(ctx: click.Context, param, incomplete: str):
    """Shell completion for POD: the running pods of the namespace the command line names.

    Reads -n/--context/--kubeconfig already typed, asks the API with a short timeout, and
    stays silent on any failure: completion must never print an error into the shell.
    """
    from click.shell_completion import CompletionItem

    try:
        from kubectl_whose.cluster.client import connect

        p = ctx.params
        kube = KubeFlags(p.get("namespace"), p.get("context"), p.get("kubeconfig"), 3.0)
        cluster = connect(kube)
        pods = cluster.rest.get(f"/api/v1/namespaces/{cluster.namespace}/pods",
                                {"fieldSelector": "status.phase=Running"})
    except Exception:  # noqa: BLE001 - no cluster, no completion
        return []
    names = sorted(item["metadata"]["name"] for item in pods.get("items", []))
    return [CompletionItem(n) for n in names if n.startswith(incomplete)]


def pod_argument(required: bool = True):
    """The POD argument, with pod-name completion from the cluster."""
    return click.argument("pod", required=required, shell_complete=complete_pods)
