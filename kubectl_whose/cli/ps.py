"""`kubectl whose ps POD`: the debug containers kubectl-whose added to a pod, and which one the next run reuses.

Each one's image, target, state, start time, lifetime left, and whether `capture`/`rules`/`net` would reuse it
(running, ours, same shape); the listing is `cluster.containers`.
"""
from __future__ import annotations

import time

import click

from kubectl_whose.cli.options import debug_flags, kube_flags, node_flags, output_option, pod_argument


@click.command("ps")
@pod_argument()
@debug_flags(container=False, lifetime=False)
@node_flags
@output_option()
@kube_flags
def ps(kube, debug, node, pod, output):
    """List the debug containers kubectl-whose added to POD, and the node debug pods of --node runs for it.

    \b
    Examples:
      kubectl whose ps my-pod
      kubectl whose ps my-pod -o json
    """
    from kubectl_whose.chatter import say
    from kubectl_whose.cluster.client import connect
    from kubectl_whose.cluster.containers import build_listing, list_node_pods
    from kubectl_whose.cluster.ephemeral import read_pod
    from kubectl_whose.render.output import emit
    from kubectl_whose.render.ps_view import render_ps

    cluster = connect(kube)
    listing = build_listing(read_pod(cluster, pod), cluster.namespace, debug.image, time.time())
    listing.node_pods = list_node_pods(cluster, pod, node.namespace)
    if not listing.containers and not listing.node_pods and output in ("table", "wide"):
        say(f"no kubectl-whose debug containers in pod {pod} (namespace {cluster.namespace})")
        return
    emit(listing, output, render_ps)

