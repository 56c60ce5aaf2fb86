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

    FILE is a classic pcap (tcpdump -w), pcapng (dumpcap, Wireshark) or Network Monitor (.cap) file,
    gzipped or not; `-` reads stdin; a merged capture of several pods shows each pod and the
    connections between them; a bundle (FILE.tgz from `kubectl whose bundle`) shows its capture.
    Link types: Ethernet (VLAN/QinQ, MPLS, PPPoE, PBB, VN-Tag, FabricPath), Linux cooked (-i any),
    raw IP, NULL/LOOP, NFLOG, PPP, Cisco HDLC, 802.11 (radiotap, PPI), PKTAP. Tunnels are decoded
    into their inner streams: IP-in-IP, GRE (ERSPAN, PPTP), VXLAN (4789, 8472), Geneve, GTP-U,
    Teredo, AYIYA. A capture of no link type read here exits 18.

    Stream numbers and figures are tshark 4.0's (tcp.stream / udp.stream; an ICMP error counts in
    the stream of the header it quotes). STATE and HISTORY are Zeek's conn_state and history for
    one trace read with `zeek -C`; not emulated: Zeek's time-outs and its own splitting of a
    connection, C (checksums), G (gaps), x (analysis limits), flips made by application analyzers,
    ICMP connections, and tunnels Zeek reads where tshark does not (README: "Zeek states").

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
        summary.check_decodable(file)  # before "no such stream": the reason there is none
        check_stream_index(detail_proto, stream, summary.stream_count(detail_proto))
    print_summary(summary, connections_json(summary), output, detail=stream is not None,
                  inbound=[i.to_dict() for i in join_inbound(summary, local_ips)])
    summary.check_decodable(file)


def analyze_pods(file: str, proto: str, output: str) -> None:
    """A merged capture of several pods: each pod's view and the connections between them, as capture showed."""
    from kubectl_whose.collect.multi_capture import captured_from_file
    from kubectl_whose.render.multi_view import print_many

    print_many(captured_from_file(file, proto), output)
