"""Edge cases real traffic rarely produces, written byte by byte and judged by tshark 4.0.

Each scenario is a literal capture (tests/helpers/pcapgen.py); tshark reads the same file through
tests/helpers/tshark_oracle.py (B's aggregation of `tshark -T fields`), and every stream figure plus every
row of every TCP flag table must agree: fragment reassembly, port-reuse variants, an ICMP quote
consuming an index, GRE/IP-in-IP/Geneve/QinQ, SLL/NULL/LOOP link types, multi-interface pcapng,
loss/dup-ACK/fast-retransmission, zero window, keep-alive and window updates.
"""
from __future__ import annotations

import struct

import pytest

from kubectl_whose.analysis.streams import analyze_file
from tests.helpers import pcapgen as g
from tests.helpers.netns import requires_tools
from tests.helpers.tshark_oracle import analyze as tshark_analyze, row_diff, stream_diff

pytestmark = requires_tools("tshark")

C, S = "10.0.0.1", "10.0.0.2"
T0 = 1_700_000_000 * 10**9
MS = 1_000_000

def seg(src, dst, sport, dport, seq, ack, flags, win=502, payload=b"", opts=b""):
    return g.ipv4(src, dst, g.tcp(sport, dport, seq, ack, flags, win, payload, opts))


def at(i, frame, step=MS // 10):
    return (T0 + i * step, frame)


def fragments_v4():
    dgram = g.udp(5000, 53, bytes(range(200)) * 2)  # 408 bytes of UDP
    parts = [(0, dgram[:160], True), (160, dgram[160:320], True), (320, dgram[320:], False)]
    frames = [g.eth(g.ipv4(C, S, p, proto=17, frag=(0x2000 if more else 0) | (off // 8))) for off, p, more in parts]
    lone = g.eth(g.ipv4(C, S, g.udp(5001, 53, b"z" * 100)[:64], proto=17, frag=0x2000))  # never completed
    lone = lone[:18] + b"\x00\x63" + lone[20:]  # another IP id
    return [at(0, frames[1]), at(1, frames[0]), at(2, lone), at(3, frames[2])] + \
        [at(4 + i, g.eth(g.ipv4(S, C, g.udp(53, 5000, b"r"), proto=17))) for i in range(2)]


def fragments_v6():
    dgram = g.udp(5000, 53, b"q" * 300)
    frag = lambda off, more, data: g.eth(g.ipv6("fd00::1", "fd00::2", data, nxt=44,  # noqa: E731
                                                  ext=struct.pack("!BBHI", 17, 0, off | more, 77)))
    return [at(0, frag(0, 1, dgram[:200])), at(1, frag(200, 0, dgram[200:]))]


def reuse_variants():
    recs = g.http_conversation(isn_c=1000)
    recs += g.http_conversation(isn_c=1000, t0=T0 + 10**9)[:2]                 # same ISN: retransmission
    recs += g.http_conversation(isn_c=70_000, t0=T0 + 2 * 10**9)               # new ISN: new stream
    recs += [(T0 + 3 * 10**9, g.eth(seg(S, C, 80, 40000, 999_999, 70_001, g.SYN | g.ACK)))]  # odd SYN-ACK
    mid = [(T0 + 4 * 10**9 + i, g.eth(seg(C, S, 40100, 80, 5000 + i, 9, g.ACK, payload=b"m"))) for i in range(2)]
    mid += g.http_conversation(cport=40100, isn_c=123, t0=T0 + 5 * 10**9)[:3]   # SYN after mid-stream start
    return recs + mid


def icmp_quote_first():
    quoted = g.ipv4("10.9.9.9", "10.0.0.5", g.tcp(1234, 443, 1, 0, g.SYN))
    icmp = g.eth(g.ipv4("10.0.0.5", "10.9.9.9", g.icmp_unreachable(quoted), proto=1))
    return [(T0, icmp)] + g.http_conversation(t0=T0 + MS) + \
        [(T0 + 9 * MS, g.eth(g.ipv4("10.0.0.5", "10.9.9.9", g.icmp_unreachable(
            g.ipv4(C, S, g.tcp(40000, 80, 1, 0, g.SYN))), proto=1)))]


def tunnels():  # every encapsulation labels its inner stream
    inner = g.http_conversation("192.168.7.1", "192.168.7.2", 33000, 8080)
    recs = [(t, g.eth(g.ipv4("10.1.0.1", "10.1.0.2", g.gre(f[14:], key=9), proto=47))) for t, f in inner]
    inner2 = g.http_conversation("192.168.8.1", "192.168.8.2", 33001, 8080, t0=T0 + 10**8)
    recs += [(t, g.eth(g.ipv4("10.1.0.1", "10.1.0.2", f[14:], proto=4))) for t, f in inner2]
    inner3 = g.http_conversation("192.168.9.1", "192.168.9.2", 33002, 8080, t0=T0 + 2 * 10**8)
    recs += [(t, g.eth(g.ipv4("10.1.0.1", "10.1.0.2", g.udp(40000 + i, 6081, g.geneve(5, f)), proto=17)))
             for i, (t, f) in enumerate(inner3)]
    inner4 = g.http_conversation(cport=33003, t0=T0 + 3 * 10**8, link=lambda p: g.eth(p, vlans=[100, 7]))
    return recs + inner4


def loss_and_windows():
    c, s = 1000, 5000
    pk = [
        (C, S, 40000, 80, c, 0, g.SYN, 502, b"", g.wscale(2)),
        (S, C, 80, 40000, s, c + 1, g.SYN | g.ACK, 502, b"", g.wscale(2)),
        (C, S, 40000, 80, c + 1, s + 1, g.ACK, 502, b"", b""),
        (S, C, 80, 40000, s + 1, c + 1, g.ACK, 502, b"a" * 100, b""),
        (S, C, 80, 40000, s + 201, c + 1, g.ACK, 502, b"c" * 100, b""),
        (C, S, 40000, 80, c + 1, s + 101, g.ACK, 502, b"", b""),
        (C, S, 40000, 80, c + 1, s + 101, g.ACK, 502, b"", b""),
        (C, S, 40000, 80, c + 1, s + 101, g.ACK, 502, b"", b""),
        (S, C, 80, 40000, s + 101, c + 1, g.ACK, 502, b"b" * 100, b""),
        (C, S, 40000, 80, c + 1, s + 301, g.ACK, 0, b"", b""),           # zero window
        (C, S, 40000, 80, c + 1, s + 301, g.ACK, 300, b"", b""),         # window update
        (C, S, 40000, 80, c, s + 301, g.ACK, 300, b"", b""),             # keep-alive (seq - 1)
        (S, C, 80, 40000, s + 301, c + 1, g.ACK, 502, b"", b""),         # keep-alive ACK
        (S, C, 80, 40000, s + 101, c + 1, g.ACK, 502, b"b" * 100, b""),  # spurious retransmission
        (S, C, 80, 40000, s + 301, c + 1, g.FIN | g.ACK, 502, b"", b""),
        (C, S, 40000, 80, c + 1, s + 302, g.RST, 0, b"", b""),
    ]
    return [at(i, g.eth(seg(*p[:7], win=p[7], payload=p[8], opts=p[9]))) for i, p in enumerate(pk)]


def probes_and_reordering():
    c, s = 1000, 5000
    pk = [
        (C, S, 40000, 80, c, 0, g.SYN, 100, b""),
        (C, S, 40000, 80, c, 0, g.SYN, 100, b""),                       # SYN retransmitted
        (S, C, 80, 40000, s, c + 1, g.SYN | g.ACK, 100, b""),
        (C, S, 40000, 80, c + 1, s + 1, g.ACK, 100, b""),
        (C, S, 40000, 80, c + 1, s + 1, g.ACK, 100, b"1" * 50),
        (C, S, 40000, 80, c + 101, s + 1, g.ACK, 100, b"3" * 50),       # hole: lost segment
        (C, S, 40000, 80, c + 51, s + 1, g.ACK, 100, b"2" * 50),        # fills it at once: out-of-order
        (C, S, 40000, 80, c + 51, s + 1, g.ACK, 100, b"2" * 50),        # the same frame seen twice
        (S, C, 80, 40000, s + 1, c + 151, g.ACK, 0, b""),               # zero window
        (C, S, 40000, 80, c + 151, s + 1, g.ACK, 100, b"p"),            # zero-window probe
        (S, C, 80, 40000, s + 1, c + 151, g.ACK, 0, b""),               # zero-window probe ACK
        (S, C, 80, 40000, s + 1, c + 151, g.ACK, 150, b""),             # window update
        (C, S, 40000, 80, c + 151, s + 1, g.ACK, 100, b"w" * 150),      # fills the window: window full
        (S, C, 80, 40000, s + 1, c + 400, g.ACK, 150, b""),             # ACKs data never seen
        (C, S, 40000, 80, c + 301, s + 1, g.RST | g.ACK, 0, b""),
    ]
    return [at(i, g.eth(seg(*p[:7], win=p[7], payload=p[8])), step=MS // 1000) for i, p in enumerate(pk)]


def ip_variants():
    recs = [(t, g.eth(g.ipv4(C, S, f[34:], options=b"\x01\x01\x01\x00"))) for t, f in g.http_conversation()]
    hop = bytes([6, 0]) + b"\x01\x04\x00\x00\x00\x00"
    v6 = g.http_conversation("fd00::1", "fd00::2", ip=lambda a, b, p: g.ipv6(a, b, p, nxt=0, ext=hop),
                             t0=T0 + MS)
    quoted_udp = g.ipv4(C, S, g.udp(5000, 53, b"q"), proto=17)
    icmp = (T0 + 2 * MS, g.eth(g.ipv4(S, C, g.icmp_unreachable(quoted_udp), proto=1)))
    cut = [(t, f[:54], len(f)) for t, f in g.http_conversation(cport=40002, t0=T0 + 3 * MS)]  # snaplen 54
    return recs + v6 + [icmp] + cut


def icmp_variants():
    """ICMPv6 "packet too big" quoting a TCP segment of a new pair, an ICMP quote of a UDP flow that
    exists, an echo request: only the first takes a new index."""
    quoted6 = g.ipv6("fd00::9", "fd00::1", g.tcp(443, 51000, 7, 8, g.ACK, 100, b"x" * 40))
    too_big = g.eth(g.ipv6("fd00::2", "fd00::9", struct.pack("!BBHI", 2, 0, 0, 1280) + quoted6, nxt=58))
    dns = [(T0 + i, g.eth(g.ipv4(C, S, g.udp(5353, 53, b"q" * (i + 1)), proto=17))) for i in range(2)]
    quote_udp = g.eth(g.ipv4(S, C, g.icmp_unreachable(g.ipv4(C, S, g.udp(5353, 53, b"q"), proto=17)), proto=1))
    echo = g.eth(g.ipv4(C, S, b"\x08\x00\x00\x00\x00\x01\x00\x01", proto=1))
    return dns + [(T0 + 5, too_big), (T0 + 6, quote_udp), (T0 + 7, echo)] + g.http_conversation(t0=T0 + 10)


def icmp_quote_reuse():
    """An ICMP error quoting a SYN whose seq differs from the open stream's ISN: tshark opens a new
    stream for it (as for a real reused SYN) and the conversation's later packets join that one."""
    conv = g.http_conversation(cport=40002)
    quoted = g.ipv4(C, S, g.tcp(40002, 80, 1, 0, g.SYN))
    icmp = (T0 + 3500, g.eth(g.ipv4(S, C, g.icmp_unreachable(quoted), proto=1)))
    return conv[:4] + [icmp] + conv[4:] + g.http_conversation(cport=40003, t0=T0 + MS)


def link_types(linktype):
    wrap = {113: lambda ip: g.sll(ip), 0: lambda ip: struct.pack("<I", 2) + ip,
            108: lambda ip: struct.pack(">I", 2) + ip, 101: lambda ip: ip}[linktype]
    return [(t, wrap(f[14:])) for t, f in g.http_conversation()]


def _ip_conv(**kw):
    """The HTTP conversation's IP packets (no link layer), IPv6 with ipv6=True."""
    v6 = kw.pop("ipv6", False)
    if v6:
        kw.update(client="fd00::1", server="fd00::2", ip=g.ipv6)
    return [(t, f[14:]) for t, f in g.http_conversation(**kw)]


def _udp_carrier(payload: bytes, dport: int, sport: int = 41000) -> bytes:
    return g.eth(g.ipv4("10.9.0.1", "10.9.0.2", g.udp(sport, dport, payload), proto=17))


def _gre_carrier(gre: bytes) -> bytes:
    return g.eth(g.ipv4("10.9.0.1", "10.9.0.2", gre, proto=47))


# link layers and encapsulations read by the general path: (link type, IP packet -> frame, IPv6 inside)
WRAPPED = {
    "nflog": (239, g.nflog, False),
    "nflog_v6": (239, g.nflog, True),
    "ppp": (9, g.ppp_hdlc, False),
    "ppp_no_framing": (9, lambda ip: struct.pack("!H", 0x0021) + ip, False),
    "ppp_serial_chdlc": (50, g.chdlc, False),
    "c_hdlc": (104, g.chdlc, True),
    "pppoe_in_qinq": (1, lambda ip: g.eth(g.pppoe(ip), ethertype=0x8864, vlans=[100, 7]), False),
    "mpls_in_vlan": (1, lambda ip: g.eth(g.mpls(ip, [16, 17]), ethertype=0x8847, vlans=[5]), False),
    "mpls_v6": (1, lambda ip: g.eth(g.mpls(ip), ethertype=0x8847), True),
    "vlan_three_tags": (1, lambda ip: g.eth(ip, vlans=[1, 2, 3]), False),
    "pbb": (1, lambda ip: g.eth(g.pbb(ip), ethertype=0x88E7), False),
    "vntag_in_vlan": (1, lambda ip: g.eth(g.vntag(ip), ethertype=0x8926, vlans=[9]), False),
    "fabricpath": (1, lambda ip: g.fabricpath(g.eth(ip)), False),
    "radiotap_qos_fcs": (127, lambda ip: g.radiotap(g.wlan_data(ip, qos=True), fcs=True), False),
    "wlan": (105, g.wlan_data, True),
    "ppi": (192, lambda ip: g.ppi(g.wlan_data(ip)), False),
    "gtp_u": (1, lambda ip: _udp_carrier(g.gtp_u(ip, seq=9), 2152), False),
    "teredo": (1, lambda ip: _udp_carrier(g.teredo(ip), 3544, 40000), True),
    "ayiya": (1, lambda ip: _udp_carrier(g.ayiya(ip), 5072), True),
    "gre_in_udp": (1, lambda ip: _udp_carrier(g.gre(ip), 4754), False),
    "erspan_1": (1, lambda ip: _gre_carrier(g.gre(g.eth(ip), 0x88BE)), False),
    "erspan_2": (1, lambda ip: _gre_carrier(g.gre_seq(g.erspan(g.eth(ip), 2), 0x88BE)), False),
    "erspan_3": (1, lambda ip: _gre_carrier(g.gre(g.erspan(g.eth(ip), 3), 0x22EB)), False),
    "pptp": (1, lambda ip: _gre_carrier(g.gre_pptp(g.ppp_hdlc(ip))), False),
    "macsec": (1, lambda ip: g.eth(g.macsec(ip), ethertype=0x88E5), False),
    "nsh": (1, lambda ip: g.eth(g.nsh(ip), ethertype=0x894F), False),
    "vxlan_gpe_nsh": (1, lambda ip: _udp_carrier(g.vxlan_gpe(g.nsh(ip), next_proto=4), 4790), False),
    "vxlan_gpe_ethernet": (1, lambda ip: _udp_carrier(g.vxlan_gpe(g.eth(ip)), 4790), True),
    "wccp": (1, lambda ip: _gre_carrier(g.gre(b"\x00\x00\x00\x00" + ip, 0x883E)), False),
    "pim_register": (1, lambda ip: g.eth(g.ipv4("10.9.0.1", "10.9.0.2", g.pim_register(ip), proto=103)), False),
    "pktap": (258, lambda ip: g.pktap(g.eth(ip)), False),
}


def wrapped(name):
    linktype, wrap, v6 = WRAPPED[name]
    return g.pcap([(t, wrap(ip)) for t, ip in _ip_conv(ipv6=v6)], linktype=linktype)


def lengths():
    """Lengths tshark cuts or refuses: IP length 0 (segmentation offload, also with the snaplen cutting
    the frame), an IP length beyond the frame, UDP lengths below 8 or beyond the datagram, a PPPoE
    length shorter than its payload."""
    recs = []
    for i, ulen in enumerate([0, 4, 7, 8, 20, 30, 60]):
        udp = struct.pack("!HHHH", 5000 + i, 53, ulen, 0) + b"x" * 22
        recs.append((T0 + i, g.eth(g.ipv4(C, S, udp, proto=17))))
    tso = g.eth(g.ipv4(C, S, g.tcp(40000, 80, 1, 1, g.ACK, payload=b"y" * 100), total=0))
    long_ip = g.eth(g.ipv4(C, S, g.tcp(40001, 80, 1, 1, g.ACK, payload=b"y" * 100), total=500))
    tso_cut = g.eth(g.ipv4(C, S, g.tcp(40002, 80, 1, 1, g.ACK, payload=b"y" * 1000), total=0))
    short_pppoe = g.eth(g.pppoe(g.ipv4(C, S, g.tcp(40003, 80, 1, 1, g.ACK, payload=b"z" * 6)), length=42),
                        ethertype=0x8864)
    recs += [(T0 + 100, tso), (T0 + 200, long_ip), (T0 + 300, tso_cut[:80], len(tso_cut)), (T0 + 400, short_pppoe)]
    jumbo = g.eth(g.ipv6_jumbo("fd00::1", "fd00::2", g.tcp(40004, 80, 1, 1, g.ACK, payload=b"j" * 300)))
    cut_fragment = g.eth(g.ipv4(C, S, g.tcp(40005, 80, 1, 1, g.ACK, payload=b"f" * 400), frag=0x2000))
    cut_v6 = g.eth(g.ipv6("fd00::1", "fd00::2", g.tcp(40006, 80, 1, 1, g.ACK, payload=b"g" * 400), nxt=44,
                          ext=struct.pack("!BBHI", 6, 0, 1, 99)))
    recs += [(T0 + 500, jumbo), (T0 + 600, cut_fragment[:90], len(cut_fragment)), (T0 + 700, cut_v6[:100], len(cut_v6))]
    return recs


def editcap(data: bytes, file_format: str) -> bytes:
    """`editcap -F FORMAT` of a capture: files of other writers, made by Wireshark's own code."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = f"{tmp}/in.pcap", f"{tmp}/out"
        with open(src, "wb") as f:
            f.write(data)
        subprocess.run(["editcap", "-F", file_format, src, dst], check=True, capture_output=True)
        with open(dst, "rb") as f:
            return f.read()


SCENARIOS = {
    **{f"wrapped_{name}": (lambda name=name: wrapped(name)) for name in WRAPPED},
    "netmon_1": lambda: editcap(g.pcap(g.http_conversation(step=3 * MS)), "netmon1"),
    "netmon_2_0": lambda: editcap(g.pcap(g.http_conversation()), "netmon2"),
    "netmon_2_3": lambda: g.netmon2(g.http_conversation() + g.http_conversation(cport=40001, t0=T0 + MS)),
    "netmon_2_1_raw_ip": lambda: g.netmon2([(t, f[14:]) for t, f in g.http_conversation()], minor=1, network=9),
    "lengths": lambda: g.pcap(lengths()),
    "fragments_v4": lambda: g.pcap(fragments_v4()),
    "fragments_v6": lambda: g.pcap(fragments_v6()),
    "reuse_variants": lambda: g.pcap(reuse_variants()),
    "icmp_quote_first": lambda: g.pcap(icmp_quote_first()),
    "tunnels": lambda: g.pcap(tunnels()),
    "loss_and_windows": lambda: g.pcap(loss_and_windows(), nano=True),
    "probes_and_reordering": lambda: g.pcap(probes_and_reordering(), nano=True),
    "ip_variants": lambda: g.pcap(ip_variants()),
    "icmp_variants": lambda: g.pcap(icmp_variants()),
    "icmp_quote_reuse": lambda: g.pcap(icmp_quote_reuse()),
    "sll": lambda: g.pcap(link_types(113), linktype=113),
    "null": lambda: g.pcap(link_types(0), linktype=0),
    "loop": lambda: g.pcap(link_types(108), linktype=108),
    "raw": lambda: g.pcap(link_types(101), linktype=101, endian=">"),
    "pcapng_two_linktypes": lambda: (g.shb() + g.idb(1) + g.idb(101, tsresol=9)
                                     + b"".join(g.epb(i % 2, (t // 1000) if i % 2 == 0 else t, f if i % 2 == 0
                                                      else f[14:]) for i, (t, f) in
                                                enumerate(g.http_conversation()))),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_crafted_capture_equals_tshark(name, tmp_path):
    problems = crafted_problems(name, tmp_path)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", sorted(WRAPPED))
def test_tshark_reads_the_stream_inside_each_wrapping(name, tmp_path):
    """The wrapped scenarios prove something only if tshark itself finds the inner HTTP stream."""
    path = tmp_path / f"{name}.pcap"
    path.write_bytes(wrapped(name))
    tcp = [v for (proto, _), v in tshark_analyze(path).streams.items() if proto == "tcp"]
    assert len(tcp) == 1 and tcp[0]["packets"] == 9 and tcp[0]["flags"]["SYN"] == 2, tcp


def crafted_problems(name, tmp_path) -> list:
    """Every difference from tshark on SCENARIOS[name], one line each."""
    path = tmp_path / f"{name}.pcap"
    path.write_bytes(SCENARIOS[name]())
    truth = tshark_analyze(path)
    ours = {(r["proto"], r["index"]): r for r in analyze_file(str(path)).streams}
    assert sorted(ours) == sorted(truth.streams)
    problems = []
    for key, want in truth.streams.items():
        problems += [f"{key} {d}" for d in stream_diff(ours[key], want)]
        if key[0] == "tcp":
            detail = analyze_file(str(path), detail_stream=key[1]).detail["packets"]
            for o, w in zip(detail, truth.detail("tcp", key[1]), strict=True):
                problems += [f"{key} frame {w['frame']} {d}" for d in row_diff(o, w)]
    if name == "tunnels":
        labels = sorted({r["encapsulation"] for r in ours.values() if r["proto"] == "tcp"}, key=str)
        assert labels == [None, "geneve 10.1.0.1→10.1.0.2 vni 5", "gre 10.1.0.1→10.1.0.2",
                          "ipip 10.1.0.1→10.1.0.2"]
    return problems


def random_conversation(seed: int) -> list:
    """A TCP exchange with seeded random gaps, repeats, probes, window changes, odd flags and SYN-ACKs.

    No pure SYN after the first one here (they have their own test, `conversation_with_syns`); real
    reuse is covered by `reuse_variants` and B's `reuse` capture."""
    import random

    rnd = random.Random(seed)
    nxt = {0: 1000, 1: 5000}
    acked = {0: 5000, 1: 1000}
    ends = {0: (C, S, 40000, 80), 1: (S, C, 80, 40000)}
    t = T0
    out = [(t, g.eth(seg(C, S, 40000, 80, 999, 0, g.SYN, 29200, opts=g.wscale(rnd.choice([0, 3, 7])))))]
    if rnd.random() < 0.8:
        t += rnd.choice([20_000, 200_000])
        out.append((t, g.eth(seg(S, C, 80, 40000, 4999, 1000, g.SYN | g.ACK, 28960,
                                 opts=g.wscale(rnd.choice([0, 7])) if rnd.random() < 0.7 else b""))))
    for _ in range(rnd.randint(10, 40)):
        d = rnd.randint(0, 1)
        a, b, pa, pb = ends[d]
        size = rnd.choice([0, 0, 0, 1, 10, 100, 1448])
        seq = rnd.choice([nxt[d]] * 6 + [nxt[d] - 1, nxt[d] + 100, nxt[d] - 100, nxt[d] - size])
        ack = rnd.choice([acked[d]] * 4 + [nxt[1 - d], acked[d] + 50, acked[d] - 1])
        flags = rnd.choice([g.ACK] * 6 + [g.PSH | g.ACK] * 3 + [g.FIN | g.ACK, g.RST, g.RST | g.ACK, g.SYN | g.ACK])
        win = rnd.choice([502, 502, 502, 0, 1000, 64])
        t += rnd.choice([100_000, 1_000_000, 5_000_000, 30_000_000, 60 * 10**9])
        out.append((t, g.eth(seg(a, b, pa, pb, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, flags, win,
                                 b"z" * size if not flags & (g.SYN | g.RST) else b""))))
        if flags & g.ACK:
            acked[d] = ack
        if (seq - nxt[d]) & 0xFFFFFFFF < 0x80000000:
            nxt[d] = (seq + size + (1 if flags & (g.SYN | g.FIN) else 0)) & 0xFFFFFFFF
        if rnd.random() < 0.1:  # the same frame captured twice (tcpdump -i any)
            out.append((t, out[-1][1]))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_random_tcp_exchanges_equal_tshark(seed, tmp_path):
    SCENARIOS[f"random_{seed}"] = lambda: g.pcap(random_conversation(seed), nano=True)
    try:
        test_crafted_capture_equals_tshark(f"random_{seed}", tmp_path)
    finally:
        del SCENARIOS[f"random_{seed}"]


def random_mix(seed: int) -> list:
    """Interleaved conversations on a few 4-tuples: closes and reopens with new or equal ISNs, UDP,
    ICMP quotes, fragmented datagrams, VLAN and tunnelled copies: stream numbering under stress."""
    import random

    rnd = random.Random(seed)
    recs = []
    for i in range(rnd.randint(4, 9)):
        kind = rnd.choice(["tcp", "tcp", "tcp", "udp", "icmp", "frag", "vxlan"])
        t0 = T0 + rnd.randint(0, 50) * MS
        cport = 40000 + rnd.randint(0, 2)  # few ports: reuse happens
        if kind == "tcp":
            conv = g.http_conversation(cport=cport, isn_c=rnd.choice([1000, 1000, 50_000 + i]), t0=t0, step=MS)
            recs += conv[:rnd.randint(1, 9)]
        elif kind == "udp":
            recs += [(t0 + j * MS, g.eth(g.ipv4(*rnd.sample([C, S], 2), g.udp(5000 + rnd.randint(0, 1), 53, b"u"),
                                                 proto=17))) for j in range(rnd.randint(1, 3))]
        elif kind == "icmp":
            quoted = g.ipv4(C, S, g.tcp(cport, 80, 1, 0, g.SYN)) if rnd.random() < 0.5 else \
                g.ipv4(C, S, g.udp(5001, 53, b"q"), proto=17)
            recs.append((t0, g.eth(g.ipv4(S, C, g.icmp_unreachable(quoted), proto=1))))
        elif kind == "frag":
            dgram = g.udp(6000, 7000, b"f" * 300)
            ident = 100 + i
            parts = [g.ipv4(C, S, dgram[:160], proto=17, frag=0x2000), g.ipv4(C, S, dgram[160:], proto=17, frag=20)]
            parts = [p[:4] + ident.to_bytes(2, "big") + p[6:] for p in parts]
            order = [0, 1] if rnd.random() < 0.7 else [1, 0]
            recs += [(t0 + j * MS, g.eth(parts[k])) for j, k in enumerate(order)]
        else:
            inner = g.http_conversation("192.168.1.1", "192.168.1.2", cport, 8080, t0=t0, step=MS)[:4]
            recs += [(t, g.eth(g.ipv4("10.1.0.1", "10.1.0.2", g.udp(33000, 4789, g.vxlan(7, f)), proto=17)))
                     for t, f in inner]
    recs.sort(key=lambda r: r[0])
    return recs


@pytest.mark.parametrize("seed", range(16))
def test_random_stream_mixes_equal_tshark(seed, tmp_path):
    SCENARIOS[f"mix_{seed}"] = lambda: g.pcap(random_mix(seed), nano=True)
    try:
        test_crafted_capture_equals_tshark(f"mix_{seed}", tmp_path)
    finally:
        del SCENARIOS[f"mix_{seed}"]


def test_flag_names_equal_tsharks_info_column(tmp_path):
    """Names and order as tshark prints them ("[SYN, ECE, CWR]", "[ACK, AE, Reserved]", "[<None>]")."""
    import re
    import subprocess

    combos = [0x002, 0x012, 0x010, 0x018, 0x011, 0x019, 0x004, 0x014, 0x0C2, 0x052, 0x090, 0x030, 0x110, 0x210,
              0x000, 0x03F]
    path = tmp_path / "flags.pcap"
    path.write_bytes(g.pcap([(T0 + i, g.eth(seg(C, S, 40000 + i, 80, 7, 9, f))) for i, f in enumerate(combos)]))
    info = subprocess.run(["tshark", "-n", "-r", str(path), "-T", "fields", "-e", "_ws.col.Info"],
                          capture_output=True, text=True, check=True).stdout.splitlines()
    theirs = [re.search(r"\[([^\]]*)\] Seq=", line).group(1).replace(", ", ",") for line in info]
    ours = [analyze_file(str(path), detail_stream=i).detail["packets"][0]["flags"] for i in range(len(combos))]
    assert ours == theirs


# --- what the random exchanges found: tshark 4.0.17's behaviour, found by minimising differences ----

def _tshark_fields(path, *fields):
    import subprocess

    out = subprocess.run(["tshark", "-n", "-r", str(path), "-T", "fields", *sum((["-e", f] for f in fields), [])],
                         capture_output=True, text=True, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


def test_handshake_rtt_is_shown_as_tshark_shows_it(tmp_path):
    """tshark computes the initial RTT at the first pure ACK after a SYN but shows it
    (tcp.analysis.initial_rtt) only on frames that carry its analysis subtree: a flag, an ACK that
    exactly acknowledges an unacked segment, or data in flight. An ACK below the SYN's next sequence
    does none of these: no RTT until a later frame does."""
    syn = (T0, g.eth(seg(C, S, 40000, 80, 999, 0, g.SYN, 29200)))
    low_ack = (T0 + 37 * MS, g.eth(seg(S, C, 80, 40000, 5200, 999, g.ACK)))
    data = (T0 + 40 * MS, g.eth(seg(C, S, 40000, 80, 1000, 5200, g.ACK, payload=b"q")))
    for recs, want in (([syn, low_ack], None), ([syn, low_ack, data], 0.037)):
        path = tmp_path / "rtt.pcap"
        path.write_bytes(g.pcap(recs, nano=True))
        shown = [row[1] for row in _tshark_fields(path, "frame.number", "tcp.analysis.initial_rtt") if row[1]]
        assert (float(shown[0]) if shown else None) == (pytest.approx(want) if want else None)
        (row,) = analyze_file(str(path)).streams
        assert row["handshake_rtt"] == (pytest.approx(want) if want else None)
        assert not crafted_problems_for(path.read_bytes(), tmp_path)


def test_a_repeated_pure_syn_after_an_unseen_segment_equals_tshark(tmp_path):
    """After a segment beyond the expected sequence (lost_segment), a pure SYN repeating the first one
    moves tshark's expected sequence back to the end of the in-order data: the SYN is a plain
    retransmission and the next segment a lost one (the rule in `analysis.streams.python.table`)."""
    path = tmp_path / "midsyn.pcap"
    recs = [seg(C, S, 40000, 80, 1000, 4999, g.RST | g.ACK),
            seg(C, S, 40000, 80, 2448, 4998, g.ACK, payload=b"x" * 1448),
            seg(C, S, 40000, 80, 999, 0, g.SYN, 29200),
            seg(C, S, 40000, 80, 3797, 4998, g.ACK, payload=b"y")]
    path.write_bytes(g.pcap([(T0 + i * MS, g.eth(f)) for i, f in enumerate(recs)], nano=True))
    theirs = [sorted(a for a in row[1].split(",") if a) for row in
              _tshark_fields(path, "frame.number", "tcp.analysis.flags")]
    ours = [p["analysis"] for p in analyze_file(str(path), detail_stream=0).detail["packets"]]
    assert ours == [[], ["lost_segment"], ["retransmission"], ["lost_segment"]]
    assert [bool(t) for t in theirs] == [False, True, True, True]
    problems = crafted_problems_for(path.read_bytes(), tmp_path)
    assert not problems, "\n".join(problems)


def conversation_with_syns(seed: int) -> list:
    """random_conversation with one to three pure SYNs dropped in, mostly repeating the client's
    first one, some with another seq (a reuse), some from the server."""
    import random

    rnd = random.Random(seed * 7919)
    recs = random_conversation(seed)
    for _ in range(rnd.randint(1, 3)):
        k = rnd.randint(1, len(recs) - 1)
        if rnd.random() < 0.8:
            frame = seg(C, S, 40000, 80, rnd.choice([999, 999, 999, 998, 1000, 5000]), 0, g.SYN, 29200)
        else:
            frame = seg(S, C, 80, 40000, rnd.choice([4999, 4999, 5100]), 0, g.SYN, 29200)
        recs = sorted(recs[:k] + [(recs[k][0], g.eth(frame))] + recs[k:], key=lambda r: r[0])
    return recs


def crafted_problems_for(data: bytes, tmp_path) -> list:
    SCENARIOS["_adhoc"] = lambda: data
    try:
        return crafted_problems("_adhoc", tmp_path)
    finally:
        del SCENARIOS["_adhoc"]


@pytest.mark.parametrize("seed", range(24))
def test_random_exchanges_with_mid_conversation_syns_equal_tshark(seed, tmp_path):
    problems = crafted_problems_for(g.pcap(conversation_with_syns(seed), nano=True), tmp_path)
    assert not problems, "\n".join(problems)


def test_a_sequence_difference_of_exactly_2_to_the_31_counts_as_tshark_counts_it(tmp_path):
    """tshark's GT_SEQ(a, b) is (gint32)(b - a) < 0: a jump of exactly 2**31 is "greater" (lost
    segment, ACKed unseen segment) where a plain half-range test would say neither."""
    half = 2**31
    hs = [seg(C, S, 40000, 80, 999, 0, g.SYN, 29200), seg(S, C, 80, 40000, 4999, 1000, g.SYN | g.ACK, 29200),
          seg(C, S, 40000, 80, 1000, 5000, g.ACK)]
    jump = hs + [seg(C, S, 40000, 80, 1000, 5000, g.ACK, payload=b"x" * 100),
                 seg(C, S, 40000, 80, (1100 + half) % 2**32, 5000, g.ACK, payload=b"y" * 10),
                 seg(C, S, 40000, 80, (1110 + half) % 2**32, 5000, g.ACK, payload=b"z" * 10)]
    ack = hs + [seg(S, C, 80, 40000, 5000, 1000, g.ACK, payload=b"x" * 100),
                seg(C, S, 40000, 80, 1000, (5100 + half) % 2**32, g.ACK)]
    for frames in (jump, ack):
        data = g.pcap([(T0 + i * MS, g.eth(f)) for i, f in enumerate(frames)], nano=True)
        problems = crafted_problems_for(data, tmp_path)
        assert not problems, "\n".join(problems)
    detail = analyze_file(str(tmp_path / "_adhoc.pcap"), detail_stream=0).detail["packets"]
    assert detail[-1]["analysis"] == ["ack_lost_segment"]
