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
@output_option()
def analyze(file: str, stream: Optional[int], proto: str, output: str) -> None:
    """Summarise a pcap or pcapng capture, one row per TCP/UDP stream.

    FILE is a classic pcap (tcpdump -w), pcapng (dumpcap, Wireshark) or Network Monitor (.cap) file,
    gzipped or not; `-` reads stdin. Link types: Ethernet (VLAN/QinQ, MPLS, PPPoE, PBB, VN-Tag, FabricPath), Linux cooked
    (-i any), raw IP, NULL/LOOP, NFLOG, PPP, Cisco HDLC, 802.11 (radiotap, PPI), PKTAP. Tunnels are decoded
    into their inner streams: IP-in-IP, GRE (ERSPAN, PPTP), VXLAN (4789, 8472), Geneve, GTP-U, Teredo,
    AYIYA. A capture of no link type read here exits 17.

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
    """
    from kubectl_whose.analysis.pod.connections import connections_json
    from kubectl_whose.analysis.streams import analyze_file, check_stream_index
    from kubectl_whose.render.capture_summary import print_summary

    detail_proto = "udp" if proto == "udp" else "tcp"
    summary = analyze_file(file, proto=proto, detail_stream=stream, detail_proto=detail_proto)
    if stream is not None:
        summary.check_decodable(file)  # before "no such stream": the reason there is none
        check_stream_index(detail_proto, stream, summary.stream_count(detail_proto))
    print_summary(summary, connections_json(summary), output, detail=stream is not None)
    summary.check_decodable(file)
