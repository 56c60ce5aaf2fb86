"""`kubectl whose trace POD --to IP:PORT`: walk a packet through the pod's netfilter rules.

The rules come from the pod (the `rules` recipes) or from `--from-file` dumps; the walk and the
`-o json` contract are in `kubectl_whose.analysis.netfilter.trace`.
"""
from __future__ import annotations

import click

from kubectl_whose.analysis.netfilter.trace.packet import CTSTATES
from kubectl_whose.cli.options import (EndpointType, debug_flags, kube_flags, node_flags, output_option,
                                       pod_argument, split_target)
from kubectl_whose.cli.rules import require_pod_or_files


@click.command("trace", epilog="""\b
Examples:
  # Where does the app's outbound call go? (Istio: REDIRECT to 127.0.0.1:15001 unless uid 1337)
  kubectl whose trace my-pod --to 10.96.0.10:80 --uid 1000
  # A DNS query to the cluster DNS Service (kube-proxy: DNAT to one endpoint, with probabilities)
  kubectl whose trace my-pod --to 10.96.0.10:53 --proto udp
  # An inbound connection from another pod to port 8080
  kubectl whose trace my-pod --inbound --from 10.244.1.7 --to 10.244.2.9:8080
  # Offline, on a dump, machine-readable
  kubectl whose trace --from-file rules.txt --pod-ip 10.244.2.9 --to 10.96.0.1:443 -o json
  # Through a node, as the kernel routes: PREROUTING -> DNAT -> FORWARD -> POSTROUTING
  kubectl whose trace node/worker-2 --inbound --iface cali12ab --from 10.244.1.5 --to 10.96.0.10:80
  kubectl whose trace --from-file node.rules --from-file addr.json --from-file routes.json --inbound \\
      --iface eth0 --from 10.0.1.2 --to 10.96.0.10:80
""")
@pod_argument(required=False)
@click.option("--to", "to", required=True, type=EndpointType(port_required=True), metavar="IP:PORT",
              help="Destination of the packet.")
@click.option("--proto", type=click.Choice(["tcp", "udp"]), default="tcp", show_default=True)
@click.option("--from", "src", type=EndpointType(), metavar="IP[:PORT]",
              help="Source of the packet (default: the pod's address, or 127.0.0.1 for loopback).")
@click.option("--uid", type=click.IntRange(0), help="uid of the sending process (owner match; outbound only).")
@click.option("--gid", type=click.IntRange(0), help="gid of the sending process (owner match; outbound only).")
@click.option("--inbound", is_flag=True, help="The packet arrives at the pod (PREROUTING/INPUT), "
                                               "instead of leaving it (OUTPUT/POSTROUTING).")
@click.option("--iface", metavar="IF", help="Input interface (--inbound) or output interface (default: eth0, "
                                            "or lo for local destinations).")
@click.option("--local-ip", "--pod-ip", "pod_ips", multiple=True, type=EndpointType(), metavar="IP",
              help="The addresses of this host (the pod's, or the node's): what addrtype LOCAL, REDIRECT and the "
                   "INPUT-or-FORWARD decision use (repeatable; live: read from the pod or node).")
@click.option("--route", "routes", multiple=True, metavar="'DST [via GW] dev IF'",
              help="A route, in `ip route` words (repeatable, e.g. '10.244.1.0/24 via 10.0.0.2 dev eth1'); with "
                   "--local-ip it decides INPUT or FORWARD offline, as an `ip -j route` dump given to --from-file "
                   "does.")
@click.option("--ctstate", type=click.Choice(CTSTATES, case_sensitive=False),
              help="Conntrack state of the packet (default NEW, a new connection; NAT rules see only NEW).")
@click.option("--mark", default="0", show_default=True, help="Packet mark before the first hook (e.g. 0x4000).")
@click.option("--in-set", "in_sets", multiple=True, metavar="IPSET[:src|:dst]",
              help="The packet's source or destination (both without a suffix) is in this ipset (repeatable): "
                   "-m set matches it (a dump has no ipset members).")
@click.option("--from-file", "from_files", multiple=True, metavar="DUMP",
              help="Read rules from a dump instead of the pod (repeatable, e.g. legacy and nft dumps); `ip -j addr`, "
                   "`ip -j route show table all` and `ip -j rule` dumps given here are the routing.")
@output_option()
@debug_flags()
@node_flags
@kube_flags
def trace(kube, debug, node, pod, to, proto, src, uid, gid, inbound, iface, pod_ips, routes, ctstate, mark, in_sets,
          from_files, output):
    """Trace a packet through a pod's netfilter rules, rule by rule, to its verdict.

    Prints every possible end (ACCEPT, DROP, REJECT, REDIRECT to a port, DNAT to each endpoint with
    its probability, SNAT/MASQUERADE), the path through the chains, and the assumptions made.
    """
    from dataclasses import replace

    from kubectl_whose.analysis.netfilter.trace import trace as run_trace
    from kubectl_whose.analysis.netfilter.trace.packet import TraceQuery
    from kubectl_whose.analysis.netfilter.trace.routing import Routing
    from kubectl_whose.collect.netfilter import load_trace_inputs
    from kubectl_whose.render.output import emit
    from kubectl_whose.render.trace_view import render_trace

    try:
        query = TraceQuery.from_flags(to, src, mark, ctstate, proto=proto, uid=uid, gid=gid, inbound=inbound,
                                      iface=iface, in_sets=tuple(in_sets))
    except ValueError as e:
        raise click.UsageError(str(e))
    require_pod_or_files(pod, from_files)
    pod, node_name = split_target(pod)
    rulesets, live_ips, routing = load_trace_inputs(kube, pod, from_files, debug, node, node_name)
    ips = tuple(e.ip for e in pod_ips) or tuple(live_ips)
    routing = Routing.from_flags(ips, routes) if routes else routing
    result = run_trace(rulesets, replace(query, pod_ips=ips, routing=routing))
    emit(result, output, lambda r, wide: render_trace(r, wide))
