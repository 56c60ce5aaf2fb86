"""`kubectl whose capture POD`: tcpdump in an ephemeral debug container, streamed, saved and summarised.

The flags become one `collect.capture_options.CaptureOptions` (by name), completed and checked here;
`collect.capture.run_capture` does the work and `render.capture_summary.print_summary` prints what
`analyze FILE` prints for the saved file.
"""
from __future__ import annotations

from typing import Optional

import click

from kubectl_whose.analysis.streams.summary import PROTOS
from kubectl_whose.cli.options import DurationType, complete_pods, debug_flags, kube_flags, node_flags, output_option
from kubectl_whose.collect.capture_options import CaptureOptions


@click.command("capture")
@click.argument("targets", nargs=-1, metavar="POD... | TYPE/NAME...", shell_complete=complete_pods)
@click.option("-l", "--selector", metavar="SELECTOR", help="Capture every pod this label selector selects (app=web).")
@click.option("-A", "--all-namespaces", is_flag=True, help="With -l: select pods in every namespace.")
@click.option("-i", "--interface", metavar="IF",
              help="Interface in the pod: any (the default), lo, eth0, ...; with --node, an interface on the node "
                   "(default: the pod's host-side interface, found from the node's routes and bridges).")
@click.option("-f", "--filter", "bpf", metavar="BPF", help='tcpdump filter, e.g. "tcp port 80".')
@click.option("--duration", type=DurationType(), help="Stop after this long (30s, 2m). Default: until Ctrl-C.")
@click.option("--count", type=click.IntRange(min=1), help="Stop after N packets.")
@click.option("--snaplen", type=click.IntRange(min=0, max=262144), help="Bytes kept per packet (tcpdump -s).")
@click.option("-w", "--write", metavar="FILE|-", help="Save the raw pcap, byte-identical; '-' writes it to stdout.")
@click.option("--stream", type=click.IntRange(min=0),
              help="Show this TCP stream's packet-by-packet flag table (as analyze --stream).")
@click.option("--proto", type=click.Choice(PROTOS), default="all", show_default=True,
              help="Which streams the summary lists.")
@output_option()
@debug_flags(ptrace=True)
@node_flags
@click.option("--owners/--no-owners", default=True, show_default=True,
              help="When streams were joined, read the pod's sockets and rules to name each connection's owners "
                   "and the rule that redirected it.")
@click.option("--bundle", metavar="FILE.tgz",
              help="Also write one file to hand on: the merged capture, the summary, and each pod's YAML, rules, "
                   "net outputs and doctor report (read back by analyze, rules/trace/net --from-file).")
@kube_flags
def capture(kube, node, targets, selector, all_namespaces, bundle=None, **flags):
    """Capture a pod's traffic from an ephemeral NET_ADMIN/NET_RAW container and summarise every stream.

    \b
    Examples:
      kubectl whose capture my-pod -i any --duration 10s
      kubectl whose capture my-pod -i eth0 -f "tcp port 80" -w out.pcap
      kubectl whose capture my-pod --count 200 --stream 0
      kubectl whose capture my-pod -w - | wireshark -k -i -
      # a namespace whose PodSecurity forbids NET_RAW: from the pod's node
      kubectl whose capture my-pod --node --node-namespace debug-tools --duration 10s
      # several pods at once, one merged pcapng (an interface per pod), and who talks to whom
      kubectl whose capture -l app=web --duration 10s -w web.pcapng
      kubectl whose capture deploy/frontend svc/backend --duration 10s
    """
    from kubectl_whose.render.live import LiveView

    from kubectl_whose.cluster.targets import single_pod

    one = None if bundle else single_pod(targets, selector, all_namespaces)
    opts = CaptureOptions(pod=one or "", **flags, node_flags=node).complete()
    if opts.problem():
        raise click.UsageError(opts.problem())
    if one is None:
        return capture_many(kube, opts, targets, selector, all_namespaces, bundle)
    from kubectl_whose.collect.capture import conclude, run_capture
    from kubectl_whose.render.capture_summary import print_captured

    done = run_capture(kube, opts, LiveView)
    print_captured(done, opts.output, opts.stream is not None, to_stdout=opts.write != "-")
    conclude(done)


def capture_many(kube, opts: CaptureOptions, targets, selector, all_namespaces, bundle: Optional[str]) -> None:
    from kubectl_whose.cluster.client import connect
    from kubectl_whose.cluster.targets import resolve
    from kubectl_whose.collect.bundle import run_many_with_bundle
    from kubectl_whose.collect.multi_capture import conclude_many
    from kubectl_whose.render.live import MultiLiveView
    from kubectl_whose.render.multi_view import many_to_dict, print_many
    from kubectl_whose.render.output import dump_json

    if opts.problem_many(bundle):
        raise click.UsageError(opts.problem_many(bundle))
    pods = resolve(connect(kube), targets, selector, all_namespaces)
    command = ["kubectl", "whose", *((click.get_current_context().obj or {}).get("argv") or [])]
    captured = run_many_with_bundle(kube, opts, pods, MultiLiveView, bundle, lambda c: print_many(c, opts.output),
                                    lambda c: dump_json(many_to_dict(c)), command)
    conclude_many(captured, opts.write)


def _bundle_param(param):
    import copy
    import time

    if param.name not in ("bundle", "duration"):
        return param
    param = copy.copy(param)
    if param.name == "bundle":
        param.default = lambda: time.strftime("whose-bundle-%Y%m%d-%H%M%S.tgz")
        param.help = "Where to write the bundle."
        param.show_default = "whose-bundle-DATE-TIME.tgz"
    else:
        param.default, param.show_default = "30s", True
        param.help = "How long to capture (Ctrl-C stops earlier, and the bundle is still written)."
    return param


bundle = click.Command(
    "bundle", callback=capture.callback, params=[_bundle_param(p) for p in capture.params],
    help="""Capture pods and write everything about them into one file to hand on.

    Takes capture's targets and flags. FILE.tgz holds the merged capture (an interface per pod), the summary
    capture -o json prints, and for each pod its YAML, its rules (a `rules --save` snapshot), its `net`
    outputs and its doctor report, with a manifest of versions and of what could not be read.

    \b
    Examples:
      kubectl whose bundle my-pod
      kubectl whose bundle deploy/frontend svc/backend --duration 1m --bundle ticket-4711.tgz
      # read it back, anywhere, without a cluster
      kubectl whose analyze ticket-4711.tgz
      kubectl whose rules --from-file ticket-4711.tgz#default/my-pod
      kubectl whose trace --from-file ticket-4711.tgz#default/my-pod --to 10.96.0.10:53 --proto udp
      kubectl whose net --from-file ticket-4711.tgz#default/my-pod
    """)
