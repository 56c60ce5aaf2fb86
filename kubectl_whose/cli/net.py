"""`kubectl whose net POD`: interfaces, routes, rules, neighbours and sockets of a pod, with socket owners.

Live: runs the `collect.netinfo` recipes (`ip -j ...`, `ss -H -tuanpe`) in the debug container, which
shares the pod's network namespace. Offline: `--from-file DIR` reads the same outputs saved as files,
through the same parser. `--save DIR` writes a live run's raw outputs in that layout.
"""
from __future__ import annotations

import click

from kubectl_whose.cli.options import debug_flags, kube_flags, node_flags, output_option, pod_argument, split_target
from kubectl_whose.collect.netinfo import RECIPES

_FILES = "\n".join(f"  {r.file:<11} {' '.join(r.argv)}" for r in RECIPES.values())


@click.command("net", epilog=f"""\b
Files read by --from-file DIR (and written by --save DIR), each the stdout of:
{_FILES}
Missing files are reported and skipped; at least one must be there.
\b
Examples:
  kubectl whose net my-pod                 # as the debug container sees the pod's network namespace
  kubectl whose net my-pod -c app -o wide  # -c: that container's processes own the sockets they show
  kubectl whose net --from-file ./saved -o json
  kubectl whose net my-pod --node          # the node's view, and which of its interfaces is the pod's
  kubectl whose net node/worker-2
""")
@pod_argument(required=False)
@click.option("--from-file", "from_dir", metavar="DIR", help="Read saved outputs from DIR (offline; file names below).")
@click.option("--save", "save_dir", metavar="DIR", help="Also write the raw outputs to DIR (for --from-file later).")
@output_option()
@debug_flags(lifetime=False, ptrace=True)
@node_flags
@kube_flags
def net(kube, debug, node, pod, from_dir, save_dir, output):
    """Interfaces, routes, rules, neighbours and sockets of POD (or of its node, or node/NAME), and who owns
    each socket.

    The veth peer index of eth0@ifNN is the node-side interface index; socket owners are named by
    process (with -c) or by uid: 1337 is Istio's proxy, 2102 Linkerd's.
    """
    from kubectl_whose.analysis.pod.netinfo import build_netinfo
    from kubectl_whose.collect import netinfo
    from kubectl_whose.render.net_view import render_net
    from kubectl_whose.render.output import emit

    if bool(pod) == bool(from_dir):
        raise click.UsageError("give a POD or --from-file DIR, not both" if pod else
                               "give a POD, or --from-file DIR with saved outputs (see --help)")
    if save_dir and from_dir:
        raise click.UsageError("--save writes a live run's outputs; it cannot be combined with --from-file")
    pod, node_name = split_target(pod)
    seen_from = None
    if from_dir:
        collected = netinfo.read_saved(from_dir)
    else:
        collected, seen_from = netinfo.collect_live(kube, pod, debug, save_dir, node, node_name)
    info = build_netinfo(collected.outputs, container=debug.container, missing=collected.missing,
                         sources=collected.sources, view=collected.view)
    info.seen_from = seen_from
    emit(info, output, lambda data, wide: render_net(data, wide))
