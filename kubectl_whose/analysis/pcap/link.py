"""The general path's link layers: a frame of any link type we read → the IPv4/IPv6 packet it carries.

dpkt parses the headers it knows (SLL, SLL2, 802.1Q tags, MPLS labels, PPPoE, PPP, LLC/SNAP,
radiotap, 802.11, GRE); `analysis.pcap.proto` holds the ones it does not (NFLOG, PPI, Cisco HDLC,
802.1ah, VN-Tag, FabricPath, ERSPAN, and the UDP tunnels). The dispatch from one header to the next
is ours, because it must be tshark 4.0's: dpkt's Ethernet class stops after two VLAN tags, guesses
an MPLS payload from a first byte of exactly 0x45, and, like all its classes, decodes IP, TCP and
UDP eagerly into objects whose raw bytes are gone, while the stream rules (`analysis.pcap.general`)
need the IP packet as it was on the wire. So every dpkt class here is asked for its own header
only: the SLL/PPP subclasses clear the dispatch table dpkt looks the payload up in, the PPPoE and
LLC ones unpack their header and stop.

`network(linktype, frame)` returns (ethertype, packet) with ethertype 0x0800 or 0x86DD, or None for a
frame without IP that tshark would decode (ARP, LLDP, a management frame, an encrypted 802.11 frame).
`by_ethertype` is also the entry for tunnels that carry a protocol type (GRE, Geneve).
"""
from __future__ import annotations

import struct
from typing import Callable, Dict, Optional, Tuple

import dpkt
from dpkt import ethernet as dpkt_ethernet
from dpkt import ieee80211 as dpkt_ieee80211
from dpkt import llc as dpkt_llc
from dpkt import ppp as dpkt_ppp
from dpkt import pppoe as dpkt_pppoe
from dpkt import radiotap as dpkt_radiotap
from dpkt import sll as dpkt_sll
from dpkt import sll2 as dpkt_sll2

from kubectl_whose.analysis.pcap.proto.chdlc import CHDLC
from kubectl_whose.analysis.pcap.proto.fabricpath import ETH_TYPE_FABRICPATH, FabricPath
from kubectl_whose.analysis.pcap.proto.macsec import ETH_TYPE_MACSEC, MACsec
from kubectl_whose.analysis.pcap.proto.nflog import AF_INET, AF_INET6, NFLOG
from kubectl_whose.analysis.pcap.proto.nsh import (ETH_TYPE_NSH, NEXT_ETHERNET, NEXT_IPV4, NEXT_IPV6, NEXT_MPLS,
                                                   NEXT_NSH, NSH)
from kubectl_whose.analysis.pcap.proto.pbb import ETH_TYPE_PBB, PBB
from kubectl_whose.analysis.pcap.proto.pktap import PKTAP
from kubectl_whose.analysis.pcap.proto.ppi import PPI
from kubectl_whose.analysis.pcap.proto.vntag import ETH_TYPE_VNTAG, VNTag

ETH_IPV4, ETH_IPV6, ETH_TEB, ETH_PPP = 0x0800, 0x86DD, 0x6558, 0x880B
ETH_VLAN = (0x8100, 0x88A8, 0x9100, 0x9200)  # 802.1Q, 802.1ad and the two pre-standard QinQ types
ETH_MPLS = (0x8847, 0x8848)
ETH_PPPOE_SESSION = 0x8864
PPP_TO_ETHERTYPE = {0x0021: ETH_IPV4, 0x0057: ETH_IPV6, 0x0281: 0x8847, 0x0283: 0x8848}
ARPHRD_IEEE80211_RADIOTAP, ARPHRD_NETLINK = 803, 824
MAX_DEPTH = 24  # headers within headers: enough for any real stack, bounded for crafted ones

Network = Optional[Tuple[int, bytes]]


# --- dpkt's classes, asked for their own header only -------------------------------------------------

class _SLL(dpkt_sll.SLL):
    _typesw: Dict = {}  # no payload dispatch: the payload stays bytes


class _SLL2(dpkt_sll2.SLL2):
    _typesw: Dict = {}


class _HDLCPPP(dpkt_ppp.PPP):  # PPP in HDLC-like framing: 0xff 0x03, then the protocol
    _protosw: Dict = {}


class _PPP(dpkt_pppoe.PPP):  # PPP without address and control (PPPoE, and PPP that omits them)
    _protosw: Dict = {}


class _PPPoE(dpkt_pppoe.PPPoE):
    def unpack(self, buf):
        dpkt.Packet.unpack(self, buf)
        self.data = self.data[:self.len]  # tshark holds the payload to the header's length, padding or not


class _LLC(dpkt_llc.LLC):
    """802.2 LLC; `type` is the SNAP ethertype (or IPv4 for SAP 0x06), None for anything else."""

    def unpack(self, buf):
        dpkt.Packet.unpack(self, buf)
        self.type = None
        if self.is_snap:
            if len(self.data) < 5:
                raise dpkt.NeedData('SNAP header')
            self.oui, self.type = struct.unpack('>IH', b'\x00' + self.data[:5])
            self.data = self.data[5:]
        elif self.dsap == 0x06:
            self.type = ETH_IPV4


# --- Ethernet and what an ethertype names --------------------------------------------------------------

def ethernet(buf: bytes, depth: int = 0) -> Network:
    if len(buf) < 14:
        return None
    ethertype = (buf[12] << 8) | buf[13]
    if ethertype <= 1500:  # IEEE 802.3: a length, then LLC
        return llc(buf[14:14 + ethertype], depth)
    if ethertype == ETH_TYPE_FABRICPATH:
        return ethernet(FabricPath(buf).data, depth + 1)
    return by_ethertype(ethertype, buf[14:], depth)


def by_ethertype(ethertype: int, buf: bytes, depth: int = 0) -> Network:
    if ethertype in (ETH_IPV4, ETH_IPV6):
        return ethertype, buf
    if depth >= MAX_DEPTH:
        return None
    depth += 1
    if ethertype in ETH_VLAN:  # any number of tags, as tshark reads them
        tag = dpkt_ethernet.VLANtag8021Q(buf)
        return by_ethertype(tag.type, buf[4:], depth)
    if ethertype in ETH_MPLS:
        return _mpls(buf, depth)
    if ethertype == ETH_PPPOE_SESSION:
        session = _PPPoE(buf)
        return ppp(session.data, depth) if session.code == 0 else None
    if ethertype == ETH_TYPE_PBB:
        itag = PBB(buf)
        return by_ethertype(itag.type, itag.data, depth)
    if ethertype == ETH_TYPE_VNTAG:
        tag = VNTag(buf)
        return by_ethertype(tag.type, tag.data, depth)
    if ethertype == ETH_TEB:
        return ethernet(buf, depth)
    if ethertype == ETH_PPP:
        return ppp(buf, depth)
    if ethertype == ETH_TYPE_MACSEC:
        tag = MACsec(buf)
        if tag.encrypted or len(tag.data) < 2:
            return None
        return by_ethertype((tag.data[0] << 8) | tag.data[1], tag.data[2:], depth)
    if ethertype == ETH_TYPE_NSH:
        header = NSH(buf)
        return by_next_protocol(header.next_proto, header.data, depth)
    return None


def by_next_protocol(next_proto: int, buf: bytes, depth: int = 0) -> Network:
    """The next-protocol numbers of NSH and VXLAN-GPE."""
    if depth >= MAX_DEPTH:
        return None
    if next_proto == NEXT_IPV4:
        return ETH_IPV4, buf
    if next_proto == NEXT_IPV6:
        return ETH_IPV6, buf
    if next_proto == NEXT_ETHERNET:
        return ethernet(buf, depth + 1)
    if next_proto == NEXT_NSH:
        return by_ethertype(ETH_TYPE_NSH, buf, depth + 1)
    if next_proto == NEXT_MPLS:
        return by_ethertype(ETH_MPLS[0], buf, depth + 1)
    return None


def _mpls(buf: bytes, depth: int) -> Network:
    """The label stack, then tshark's payload rule (BCP 128): the first nibble says IPv4 or IPv6.
    Other payloads (pseudowires) are not read; tshark reads them only with a label bound to them."""
    for _ in range(MAX_DEPTH):
        label = dpkt_ethernet.MPLSlabel(buf)
        buf = buf[4:]
        if label.s:
            break
    else:
        return None
    version = buf[0] >> 4 if buf else 0
    return (ETH_IPV4, buf) if version == 4 else (ETH_IPV6, buf) if version == 6 else None


def ppp(buf: bytes, depth: int = 0) -> Network:
    """PPP with or without HDLC-like framing (0xff 0x03), protocol compressed or not."""
    frame = _HDLCPPP(buf) if buf[:2] == b"\xff\x03" else _PPP(buf)
    ethertype = PPP_TO_ETHERTYPE.get(frame.p)
    return by_ethertype(ethertype, bytes(frame.data), depth) if ethertype else None


def llc(buf: bytes, depth: int = 0) -> Network:
    header = _LLC(buf)
    return by_ethertype(header.type, header.data, depth) if header.type is not None else None


def wlan(buf: bytes, fcs: bool = False, depth: int = 0) -> Network:
    """An 802.11 data frame's LLC payload; no IP in management, control, null or protected frames.
    A-MSDU aggregates (several packets in one frame) are not read."""
    frame = dpkt_ieee80211.IEEE80211(buf, fcs=fcs)
    if frame.type != dpkt_ieee80211.DATA_TYPE or frame.wep:
        return None
    if frame.subtype not in (dpkt_ieee80211.D_DATA, dpkt_ieee80211.D_QOS_DATA):
        return None
    data = frame.data
    if frame.subtype == dpkt_ieee80211.D_QOS_DATA:
        if frame.qos_data.control & 0x8000:  # A-MSDU present (bit 7 of the first QoS byte)
            return None
        if frame.order:  # an HT control field follows the QoS control
            data = data[4:]
    return llc(data, depth + 1)


# --- link types ------------------------------------------------------------------------------------------

def _raw(frame: bytes) -> Network:
    version = frame[0] >> 4 if frame else 0
    return (ETH_IPV4, frame) if version == 4 else (ETH_IPV6, frame) if version == 6 else None


def _loopback(frame: bytes, big_endian: bool) -> Network:
    """NULL (the capturing host's byte order) and LOOP (network order): a 4-byte address family.
    Not dpkt's Loopback: it reads the family in *this* host's byte order and decodes IP eagerly."""
    if len(frame) < 4:
        return None
    family = struct.unpack_from(">I" if big_endian else "<I", frame)[0]
    if not big_endian and family > 0xFFFF:
        family = struct.unpack_from(">I", frame)[0]
    if family == 2:
        return ETH_IPV4, frame[4:]
    if family in (10, 24, 28, 30):  # AF_INET6 of Linux, the BSDs and macOS
        return ETH_IPV6, frame[4:]
    return None


def _sll(frame: bytes, header) -> Network:
    if header.hrd == ARPHRD_NETLINK:
        return None
    if header.hrd == ARPHRD_IEEE80211_RADIOTAP:
        return _radiotap(header.data)
    if header.ethtype == 0x0004:  # an 802.2 frame
        return llc(header.data)
    return by_ethertype(header.ethtype, header.data)


def _radiotap(frame: bytes) -> Network:
    header = dpkt_radiotap.Radiotap(frame)
    if not isinstance(header.data, dpkt_ieee80211.IEEE80211):
        return None
    return wlan(frame[header.length:], bool(header.flags_present and header.flags.fcs))


def _ppp_serial(frame: bytes) -> Network:
    """LINKTYPE_PPP_HDLC: PPP in HDLC-like framing, or Cisco HDLC (address 0x0f / 0x8f)."""
    if frame[:1] in (b"\x0f", b"\x8f"):
        header = CHDLC(frame)
        return by_ethertype(header.type, header.data)
    return ppp(frame)


def _chdlc(frame: bytes) -> Network:
    header = CHDLC(frame)
    return by_ethertype(header.type, header.data)


def _nflog(frame: bytes) -> Network:
    header = NFLOG(frame)
    if header.payload is None:
        return None
    if header.family == AF_INET:
        return ETH_IPV4, header.payload
    if header.family == AF_INET6:
        return ETH_IPV6, header.payload
    return _raw(header.payload)


def _pktap(frame: bytes) -> Network:
    header = PKTAP(frame)
    decode = BY_LINKTYPE.get(header.dlt)
    return decode(header.data) if decode is not None and header.dlt not in (149, 258) else None


def _ppi(frame: bytes) -> Network:
    header = PPI(frame)
    decode = BY_LINKTYPE.get(header.dlt)
    return decode(header.data) if decode is not None and header.dlt != 192 else None


# every link type `linktypes.LINKTYPES` lists has its decoder here (a test holds the two equal)
BY_LINKTYPE: Dict[int, Callable[[bytes], Network]] = {
    0: lambda f: _loopback(f, False),
    1: ethernet,
    9: ppp,
    12: _raw,
    14: _raw,
    50: _ppp_serial,
    101: _raw,
    104: _chdlc,
    105: wlan,
    108: lambda f: _loopback(f, True),
    113: lambda f: _sll(f, _SLL(f)),
    127: _radiotap,
    149: _pktap,  # DLT_USER2, which Apple's libpcap used for PKTAP before 258 (tshark reads it so)
    192: _ppi,
    228: lambda f: (ETH_IPV4, f),
    229: lambda f: (ETH_IPV6, f),
    239: _nflog,
    258: _pktap,
    276: lambda f: _sll(f, _SLL2(f)),
}

# a header shorter than it claims (dpkt's NeedData is an UnpackError), or a field past the end
DECODE_ERRORS = (dpkt.UnpackError, struct.error, IndexError, ValueError)


def network(linktype: int, frame: bytes) -> Network:
    """The IP packet a frame carries, as (ethertype, bytes), or None."""
    decode = BY_LINKTYPE.get(linktype)
    if decode is None:
        return None
    try:
        return decode(frame)
    except DECODE_ERRORS:
        return None
