"""`kubectl whose net POD`: interfaces, routes, rules, neighbours and sockets of a pod, with socket owners.

Live: runs the `collect.netinfo` recipes (`ip -j ...`, `ss -H -tuanpe`) in the debug container, which
shares the pod's network namespace. Offline: `--from-file DIR` reads the same outputs saved as files,
through the same parser. `--save DIR` writes a live run's raw outputs in that layout.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import click

from kubectl_whose.cli.options import (DebugFlags, NodeFlags, debug_flags, kube_flags, node_flags, output_option,
                                       pod_argument, split_target)
from kubectl_whose.collect.netinfo import RECIPES

_FILES = "\n".join(f"  {r.file:<11} {' '.join(r.argv)}" for r in RECIPES.values())


@dataclass
class NetOptions:
    pod: Optional[str]
    from_dir: Optional[str]
    save_dir: Optional[str]
    output: str
    debug: DebugFlags
    node: NodeFlags

    def validate(self) -> None:
        if self.pod and self.from_dir:
            raise click.UsageError("give a POD or --from-file DIR, not both")
        if not self.pod and not self.from_dir:
            raise click.UsageError("give a POD, or --from-file DIR with saved outputs (see --help)")
        if self.save_dir and self.from_dir:
            raise click.UsageError("--save writes a live run's outputs; it cannot be combined with --from-file")


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
@debug_flags(lifetime=False)
@node_flags
@kube_flags
def net(kube, **flags):
    """Interfaces, routes, rules, neighbours and sockets of POD (or of its node, or node/NAME), and who owns
    each socket.

    The veth peer index of eth0@ifNN is the node-side interface index; socket owners are named by
    process (with -c) or by uid: 1337 is Istio's proxy, 2102 Linkerd's.
    """
    from kubectl_whose.analysis.pod.netinfo import build_netinfo
    from kubectl_whose.collect import netinfo
    from kubectl_whose.render.net_view import render_net
    from kubectl_whose.render.output import emit

    opts = NetOptions(**flags)
    opts.validate()
    pod, node_name = split_target(opts.pod)
    seen_from = None
    if opts.from_dir:
        collected = netinfo.read_saved(opts.from_dir)
    else:
        collected, seen_from = netinfo.collect_live(kube, pod, opts.debug, opts.save_dir, opts.node, node_name)
    info = build_netinfo(collected.outputs, container=opts.debug.container, missing=collected.missing,
                         sources=collected.sources)
    info.seen_from = seen_from
    emit(info, opts.output, lambda data, wide: render_net(data, wide))
