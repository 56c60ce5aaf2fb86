"""`kubectl whose analyze FILE`: the per-stream summary of a saved capture, offline.

The same engine `capture` feeds from the exec stream (`analysis.streams`), here fed from a file or
a pipe. Stream numbers are tshark's `tcp.stream` / `udp.stream`, so `--stream 3` here and
`tshark -Y tcp.stream==3` show the same packets.
"""
from __future__ import annotations

from typing import Optional

import click

from kubectl_whose.analysis.streams.summary import PROTOS
from kubectl_whose.cli.options import output_option


@click.command("analyze")
@click.argument("file", metavar="FILE")
@click.option("--stream", "stream", type=int, metavar="N",
              help="Show the packet-by-packet flag table of stream N (tshark's tcp.stream, or udp.stream "
                   "with --proto udp).")
@click.option("--proto", type=click.Choice(PROTOS), default="all", show_default=True,
              help="Which streams to list.")
@click.option("--local-ip", "local_ips", multiple=True, metavar="IP",
              help="The captured pod's own address (repeatable): links inbound connections to the sidecar's local "
                   "leg, as capture does with the pod's addresses.")
@output_option()
def analyze(file: str, stream: Optional[int], proto: str, local_ips, output: str) -> None:
    """Summarise a pcap or pcapng capture, one row per TCP/UDP stream.

    FILE is a classic pcap (tcpdump -w) or pcapng (dumpcap, Wireshark) file, gzipped or not; `-`
    reads stdin; a merged capture of several pods shows each pod and the connections between them; a
    bundle (FILE.tgz from `kubectl whose bundle`) shows its capture. Overlays (VXLAN on 4789 and 8472,
    Geneve, IP-in-IP, GRE) are decoded into their inner streams.

    \b
    Examples:
      # every stream, busiest first, with Zeek-style state and history
      kubectl whose analyze capture.pcap
      # the TCP flag table of stream 3 (No. = frame number in the file)
      kubectl whose analyze capture.pcap --stream 3
      # only UDP streams, as JSON, from a gzipped capture
      kubectl whose analyze capture.pcapng.gz --proto udp -o json
      # straight from tcpdump
      tcpdump -i eth0 -U -w - -c 200 | kubectl whose analyze -
      # a bundle a colleague sent
      kubectl whose analyze whose-bundle.tgz
    """
    from kubectl_whose.analysis.bundle_file import extracted_capture, is_bundle

    if file != "-" and is_bundle(file):
        with extracted_capture(file) as capture:
            return analyze_capture(capture, stream, proto, local_ips, output)
    analyze_capture(file, stream, proto, local_ips, output)


def analyze_capture(file: str, stream: Optional[int], proto: str, local_ips, output: str) -> None:
    from kubectl_whose.analysis.pcap.demux import pods_in
    from kubectl_whose.analysis.pod.connections import connections_json
    from kubectl_whose.analysis.pod.inbound import join_inbound
    from kubectl_whose.analysis.streams import analyze_file, check_stream_index
    from kubectl_whose.render.capture_summary import print_summary

    if stream is None and file != "-" and len(pods_in(file)) > 1:
        return analyze_pods(file, proto, output)
    detail_proto = "udp" if proto == "udp" else "tcp"
    summary = analyze_file(file, proto=proto, detail_stream=stream, detail_proto=detail_proto)
    if stream is not None:
        check_stream_index(detail_proto, stream, summary.stream_count(detail_proto))
    print_summary(summary, connections_json(summary), output, detail=stream is not None,
                  inbound=[i.to_dict() for i in join_inbound(summary, local_ips)])


def analyze_pods(file: str, proto: str, output: str) -> None:
    """A merged capture of several pods: each pod's view and the connections between them, as capture showed."""
    from kubectl_whose.analysis.pod.connections import connections_json
    from kubectl_whose.analysis.pod.inbound import join_inbound
    from kubectl_whose.analysis.pod.pod_to_pod import PodCapture, join_pods_of_file
    from kubectl_whose.analysis.streams.analyzer import analyze_per_pod
    from kubectl_whose.cluster.targets import PodTarget
    from kubectl_whose.collect.multi_capture import ManyCaptured, PodRun
    from kubectl_whose.render.multi_view import print_many

    runs = []
    for info, summary in analyze_per_pod(file, proto):
        target = PodTarget(info.namespace, info.pod, info.node, info.ips[0] if info.ips else None, "Running", file)
        runs.append(PodRun(target, None, summary=summary, connections=connections_json(summary),
                           inbound=[i.to_dict() for i in join_inbound(summary, info.ips)],
                           interface=",".join(info.interfaces), node=info.node, pod_ips=tuple(info.ips)))
    links = join_pods_of_file([PodCapture(r.label, r.node, r.pod_ips, list(r.summary.iter_streams()),
                                          r.connections, r.inbound) for r in runs], file)
    print_many(ManyCaptured(runs, False, links), output)
