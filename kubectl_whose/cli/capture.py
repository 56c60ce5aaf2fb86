"""`kubectl whose capture POD`: tcpdump in an ephemeral debug container, streamed, saved and summarised.

The flags become one `CaptureOptions` (by name), completed and validated here; `collect.capture.run_capture`
does the work and `render.capture_summary.print_summary` prints what `analyze FILE` prints for the saved file.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Optional

import click

from kubectl_whose.analysis.streams.summary import PROTOS
from kubectl_whose.cli.options import DebugFlags, DurationType, debug_flags, kube_flags, output_option, pod_argument


@dataclass
class CaptureOptions:
    pod: str
    interface: str
    bpf: Optional[str]
    duration: Optional[float]
    count: Optional[int]
    snaplen: Optional[int]
    write: Optional[str]
    stream: Optional[int]
    proto: str
    output: str
    owners: bool  # name owners and the redirect rule of joined connections
    debug: DebugFlags
    ttl: float = 0.0  # the debug container's lifetime, from --ttl and --duration (complete())

    def complete(self) -> "CaptureOptions":
        self.ttl = self.debug.ttl
        if self.duration and self.duration + 15 > self.ttl:
            self.ttl = self.duration + 60  # a capture must fit in the container's lifetime
        return self

    def validate(self) -> None:
        if self.write == "-" and self.output in ("json", "yaml"):
            raise click.UsageError("-w - sends the pcap to stdout; it cannot be combined with -o json/yaml")
        if self.debug.ttl < 60:
            raise click.UsageError("--ttl must be at least 60s (the debug container idles that long)")

    @property
    def detail_proto(self) -> str:
        return "udp" if self.proto == "udp" else "tcp"


@click.command("capture")
@pod_argument()
@click.option("-i", "--interface", default="any", show_default=True, help="Interface in the pod: any, lo, eth0, ...")
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
@click.option("--owners/--no-owners", default=True, show_default=True,
              help="When streams were joined, read the pod's sockets and rules to name each connection's owners "
                   "and the rule that redirected it.")
@kube_flags
def capture(kube, **flags):
    """Capture a pod's traffic from an ephemeral NET_ADMIN/NET_RAW container and summarise every stream.

    \b
    Examples:
      kubectl whose capture my-pod -i any --duration 10s
      kubectl whose capture my-pod -i eth0 -f "tcp port 80" -w out.pcap
      kubectl whose capture my-pod --count 200 --stream 0
      kubectl whose capture my-pod -w - | wireshark -k -i -
    """
    from kubectl_whose.collect.capture import conclude, run_capture
    from kubectl_whose.render.capture_summary import print_summary
    from kubectl_whose.render.live import LiveView

    opts = CaptureOptions(**flags).complete()
    opts.validate()
    done = run_capture(kube, opts, LiveView)
    if done.summary is not None:
        if opts.write == "-":  # stdout is the pcap: the summary goes to stderr, as a table
            print_summary(done.summary, done.connections, "wide" if opts.output == "wide" else "table",
                          opts.stream is not None, out=sys.stderr)
        else:
            print_summary(done.summary, done.connections, opts.output, opts.stream is not None)
    conclude(done)
