"""Flags shared by several subcommands, and click types that convert at the edge.

kubectl passes no flags to plugins, so the plugin parses kubectl's own connection flags
(-n/--namespace, --context, --kubeconfig) itself; `cluster.kubeconfig` resolves them the way
kubectl does.
"""
from __future__ import annotations

import functools
import re
from typing import Optional

import click

from kubectl_whose.cluster.debug_choice import NODE_ENTER_HELP, NODE_HELP, DebugFlags, NodeFlags
from kubectl_whose.cluster.image import DEFAULT_IMAGE, IMAGE_ENV
from kubectl_whose.cluster.kubeconfig import DEFAULT_REQUEST_TIMEOUT, KubeFlags  # noqa: F401 - callers import them here

OUTPUT_FORMATS = ("table", "wide", "json", "yaml")


class RequestTimeoutType(click.ParamType):
    """kubectl's --request-timeout forms (`cluster.kubeconfig.parse_request_timeout`)."""

    name = "duration"

    def convert(self, value, param, ctx):
        from kubectl_whose.cluster.kubeconfig import parse_request_timeout

        try:
            return float(value) if isinstance(value, (int, float)) else parse_request_timeout(str(value))
        except ValueError as e:
            self.fail(str(e), param, ctx)


class VerbosityType(click.ParamType):
    """kubectl's -v/--v: `-v 6`, `-v=6`, `-v6`, `--v=6` (click hands `-v=6` over as "=6")."""

    name = "level"

    def convert(self, value, param, ctx):
        text = str(value)[1:] if str(value).startswith("=") else str(value)
        if not text.isdigit():
            self.fail(f"{value!r} is not a verbosity level; use a number such as -v=1 or -v=6", param, ctx)
        return int(text)


GLOBAL_FLAGS = KubeFlags.FLAGS


def _kube_options(f):
    f = click.option("-v", "--v", "verbosity", type=VerbosityType(), default=None, metavar="N",
                     help="Verbosity as kubectl's: 1 names the debug container and the exec transport, 6 every "
                          "API request with its status.")(f)
    f = click.option("--request-timeout", type=RequestTimeoutType(), default=None, metavar="DURATION",
                     help=f"How long to wait for each API answer: seconds or 30s, 1m, 1m30s; 0 waits forever "
                          f"[default: {DEFAULT_REQUEST_TIMEOUT:g}s].")(f)
    f = click.option("--kubeconfig", envvar=None, metavar="PATH",
                     help="Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).")(f)
    f = click.option("--context", metavar="NAME", shell_complete=complete_contexts,
                     help="The kubeconfig context to use.")(f)
    f = click.option("-n", "--namespace", metavar="NS", shell_complete=complete_namespaces,
                     help="Namespace of the pod (default: the context's namespace, else 'default').")(f)
    return f


global_options = _kube_options  # the group's copy of kubectl's global flags (`kubectl whose -n NS capture POD`)


def kube_from_context(ctx: Optional[click.Context], **given) -> KubeFlags:
    """The connection flags: those given to the subcommand win over those given before it; `ctx` is the
    subcommand's click context."""
    layers, c = [given], (ctx.parent if ctx is not None else None)
    while c is not None:
        layers.append(c.params)
        c = c.parent
    return KubeFlags.from_layers(layers)


def kube_flags(f):
    """Add kubectl's connection flags; the command receives them as one `kube: KubeFlags`."""
    f = _kube_options(f)

    @functools.wraps(f)  # carries click's collected params along
    def wrapper(*args, namespace, context, kubeconfig, request_timeout, verbosity, **kwargs):
        kwargs["kube"] = kube_from_context(click.get_current_context(silent=True), namespace=namespace,
                                           context=context, kubeconfig=kubeconfig, request_timeout=request_timeout,
                                           verbosity=verbosity)
        return f(*args, **kwargs)

    return wrapper


_CONTAINER_HELP = "Share this container's process namespace (targetContainerName), so its sockets show processes."
_IMAGE_HELP = (f"Debug image (default: ${IMAGE_ENV}, then image: in ~/.config/kubectl-whose/config.yaml, "
               f"then {DEFAULT_IMAGE}).")


_PTRACE_HELP = ("Also give the debug container SYS_PTRACE, so ss can name the processes that own other users' "
                "sockets (e.g. the proxy's, uid 1337) by reading their /proc/PID/fd. It also lets the debug "
                "container read the memory of, and trace, the processes it can see; never privileged. A container "
                "with it and one without are never reused for each other.")


def debug_flags(container: bool = True, lifetime: bool = True, container_help: str = _CONTAINER_HELP,
                ptrace: bool = False):
    """kubectl-whose's debug-container flags, declared once: the command receives `debug: DebugFlags`.
    `lifetime` adds --ttl and --start-timeout (commands that may add a container); `ptrace` adds --ptrace
    (commands that name socket owners)."""

    def decorate(f):
        if ptrace:
            f = click.option("--ptrace", is_flag=True, help=_PTRACE_HELP)(f)
        if lifetime:
            f = click.option("--start-timeout", type=DurationType(), default="2m", show_default=True,
                             help="How long to wait for a new debug container to run (image pulls can be slow).")(f)
            f = click.option("--ttl", type=DurationType(), default="10m", show_default=True,
                             help="How long the debug container idles before it exits (it is reused meanwhile).")(f)
        f = click.option("--image", metavar="IMAGE", help=_IMAGE_HELP)(f)
        if container:
            f = click.option("-c", "--container", metavar="NAME", help=container_help,
                             shell_complete=complete_containers)(f)

        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            kwargs["debug"] = DebugFlags(kwargs.pop("container", None), kwargs.pop("image", None),
                                         kwargs.pop("ttl", None), kwargs.pop("start_timeout", 120.0),
                                         kwargs.pop("ptrace", False))
            return f(*args, **kwargs)

        return wrapper

    return decorate


def node_flags(f):
    """Add --node, --node-namespace and --node-nsenter; the command receives them as one `node: NodeFlags`."""
    f = click.option("--node-nsenter", "node_enter", is_flag=True, help=NODE_ENTER_HELP)(f)
    f = click.option("--node-namespace", metavar="NS",
                     help="Namespace for the node debug pod of --node; it must allow hostNetwork and "
                          "NET_ADMIN/NET_RAW (default: node_namespace: in ~/.config/kubectl-whose/config.yaml, "
                          "else the namespace of the command).")(f)
    f = click.option("--node", "on_node", is_flag=True, help=NODE_HELP)(f)

    @functools.wraps(f)
    def wrapper(*args, on_node, node_namespace, node_enter, **kwargs):
        if node_enter and not on_node:
            raise click.UsageError("--node-nsenter enters the pod's network namespace from its node: add --node")
        kwargs["node"] = NodeFlags(on_node, node_namespace, node_enter)
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


class EndpointType(click.ParamType):
    """`IP:PORT`, `[IPv6]:PORT` or `IP` (port optional unless the command needs it)."""

    name = "ip[:port]"

    def __init__(self, port_required: bool = False):
        self.port_required = port_required

    def convert(self, value, param, ctx):
        from kubectl_whose.analysis.ip_port import Endpoint, parse_ip_port

        if isinstance(value, Endpoint):
            return value
        try:
            return parse_ip_port(str(value), self.port_required)
        except ValueError as e:
            self.fail(str(e), param, ctx)


def _names(what: str):
    """A completion callback from `cluster.names`: the names that start with what is typed, read with the
    -n/--context/--kubeconfig already on the line (before or after the subcommand)."""

    def callback(ctx: click.Context, param, incomplete: str):
        from click.shell_completion import CompletionItem

        from kubectl_whose.cluster import names

        kube = kube_from_context(ctx, **{k: ctx.params.get(k) for k in GLOBAL_FLAGS})
        # with `-c` still waiting for its value, click leaves the POD already typed unparsed in ctx.args
        pod = ctx.params.get("pod") or next((a for a in ctx.args if not a.startswith("-")), None)
        found = getattr(names, what)(kube, pod) if what == "containers" else getattr(names, what)(kube)
        return [CompletionItem(n) for n in sorted(set(found)) if n.startswith(incomplete)]

    return callback


complete_pods, complete_namespaces = _names("running_pods"), _names("namespaces")
complete_contexts, complete_containers = _names("contexts"), _names("containers")


def pod_argument(required: bool = True):
    """The POD argument, with pod-name completion from the cluster."""
    return click.argument("pod", required=required, shell_complete=complete_pods)
