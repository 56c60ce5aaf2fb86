"""The link-type table, the general path's decoders and the native plain decoder agree on what is read."""
from __future__ import annotations

import pytest

from kubectl_whose.analysis.pcap import link
from kubectl_whose.analysis.pcap.decode import TUNNEL_PORTS, decode_fast
from kubectl_whose.analysis.pcap.linktypes import LINKTYPES, PLAIN
from kubectl_whose.analysis.streams.engine import native_engine
from tests.helpers import pcapgen as g


def test_every_decoded_link_type_has_a_decoder_and_no_other_does():
    decoded = {n for n, lt in LINKTYPES.items() if lt.decoded}
    assert decoded == set(link.BY_LINKTYPE)
    assert set(PLAIN) <= decoded


@pytest.mark.parametrize("port", sorted(TUNNEL_PORTS))
def test_both_plain_decoders_leave_every_tunnel_port_to_the_general_path(port):
    """native/decode.h keeps its own copy of decode.TUNNEL_PORTS: a UDP datagram to each port must
    be declined by the Python plain decoder and by the C one (Engine.frame returns False)."""
    frame = g.eth(g.ipv4("10.0.0.1", "10.0.0.2", g.udp(40000, port, b"x" * 16), proto=17))
    assert decode_fast(1, frame) is None
    other = g.eth(g.ipv4("10.0.0.1", "10.0.0.2", g.udp(40000, 9999, b"x" * 16), proto=17))
    assert decode_fast(1, other) is not None
    engine = native_engine()
    if engine is None:
        pytest.skip("the native engine is not built here")
    e = engine(True, True, -1, -1)
    assert e.frame(1, 0, 1, len(frame), frame) is False
    assert e.frame(2, 0, 1, len(other), other) is True


def test_a_header_shorter_than_it_says_gives_no_ip():
    assert link.network(1, g.eth(b"", ethertype=0x8100)) is None  # a VLAN tag cut off
    assert link.network(239, b"\x02\x00\x00\x05\x40\x00") is None  # an NFLOG TLV longer than the frame
    assert link.network(127, b"\x00\x00\x40\x00") is None  # a radiotap length past the end
    assert link.network(65000, b"\x45") is None  # no such link type
