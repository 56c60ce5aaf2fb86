"""The stream table on crafted conversations: tshark 4.0's index rules, analysis flags, Zeek states,
and the fast path agreeing with the general one (the oracle comparisons live in test_analyze_oracle.py)."""
from __future__ import annotations

import pytest

from kubectl_whose.analysis.streams.engine import native_engine
from kubectl_whose.analysis.streams import CaptureAnalyzer
from tests.helpers import pcapgen as g

C, S = "10.0.0.1", "10.0.0.2"
T0 = 1_700_000_000 * 10**9
MS = 1_000_000


def analyze(records, detail=None, proto="all", linktype=1, fast=True, ng=False, engine=None):
    if ng:
        data = g.shb() + g.idb(linktype, tsresol=9) + b"".join(g.epb(0, r[0], r[1]) for r in records)
    else:
        data = g.pcap(records, linktype=linktype, nano=True)
    a = CaptureAnalyzer(proto=proto, detail_stream=detail, fast_path=fast, engine=engine)
    a.feed(data)
    return a.finish()


def seg(src, dst, sport, dport, seq, ack, flags, win=502, payload=b"", opts=b""):
    return g.eth(g.ipv4(src, dst, g.tcp(sport, dport, seq, ack, flags, win, payload, opts)))


def by_index(summary):
    return {(r["proto"], r["index"]): r for r in summary.streams}


# --- stream indices ------------------------------------------------------------------------------

def test_a_new_isn_on_a_reused_4_tuple_starts_a_new_stream_flagged_reused_ports():
    first = g.http_conversation(isn_c=1000)
    second = g.http_conversation(isn_c=900_000, t0=T0 + 10**9)
    s = analyze(first + second, detail=1)
    rows = by_index(s)
    assert sorted(rows) == [("tcp", 0), ("tcp", 1)]
    assert rows[("tcp", 0)]["packets"] == rows[("tcp", 1)]["packets"] == 9
    assert rows[("tcp", 1)]["first_frame"] == 10 and rows[("tcp", 1)]["client_isn"] == 900_000
    assert s.detail["packets"][0]["analysis"] == ["reused_ports"]
    assert s.detail["packets"][0]["time"] == 0.0  # tcp.time_relative restarts with the new stream


def test_the_same_isn_after_a_close_stays_in_the_stream_as_a_retransmission():
    # tshark 4.0.17 measured: FIN-closed conversation, then a SYN with the same ISN: same stream
    first = g.http_conversation(isn_c=1000)
    again = g.http_conversation(isn_c=1000, t0=T0 + 10**9)[:1]
    s = analyze(first + again, detail=0)
    assert s.tcp_stream_count == 1
    assert s.detail["packets"][-1]["analysis"] == ["retransmission"]
    assert s.streams[0]["retransmissions"] == 1 and s.streams[0]["flags"]["SYN"] == 3


def test_a_syn_ack_with_another_seq_is_flagged_but_not_split():
    conv = g.http_conversation()[:4]
    odd = (T0 + 10 * MS, seg(S, C, 80, 40000, 777_777, 1001, g.SYN | g.ACK))
    s = analyze(conv + [odd], detail=0)
    assert s.tcp_stream_count == 1
    assert "reused_ports" in s.detail["packets"][-1]["analysis"]


def test_fin_rst_and_idle_time_never_split_a_stream():
    conv = g.http_conversation()
    late = (T0 + 3600 * 10**9, seg(C, S, 40000, 80, 1020, 5102, g.RST | g.ACK))
    s = analyze(conv + [late])
    assert s.tcp_stream_count == 1 and s.streams[0]["packets"] == 10 and s.streams[0]["duration"] == 3600.0


def test_an_icmp_quote_joins_the_quoted_headers_stream_without_zeek_state():
    """tshark puts the ICMP frame into the quoted header's tcp.stream (test_crafted_oracle checks the
    figures against tshark); Zeek files it under an ICMP connection, so the stream has no Zeek state."""
    quoted = g.ipv4("10.9.9.9", "10.0.0.5", g.tcp(1234, 443, 1, 0, g.SYN))
    icmp = g.eth(g.ipv4("10.0.0.5", "10.9.9.9", g.icmp_unreachable(quoted), proto=1))
    s = analyze([(T0, icmp)] + g.http_conversation(t0=T0 + MS))
    rows = by_index(s)
    assert s.tcp_stream_count == 2 and sorted(rows) == [("tcp", 0), ("tcp", 1)]
    quote = rows[("tcp", 0)]
    assert (quote["packets"], quote["bytes"], quote["payload_bytes"], quote["flags"]["SYN"]) == (1, len(icmp), 0, 1)
    assert quote["client"] == "10.9.9.9:1234" and quote["client_isn"] is None
    assert (quote["state"], quote["history"]) == ("OTH", "")
    assert s.packets == 10 and s.frames_without_transport == 0


def test_udp_streams_have_their_own_counter_and_zeek_states():
    q = lambda a, b, sp, dp, t: (T0 + t, g.eth(g.ipv4(a, b, g.udp(sp, dp, b"xyz"), proto=17)))  # noqa: E731
    s = analyze([q(C, S, 5000, 53, 0), q(S, C, 53, 5000, 1), q(C, S, 5001, 53, 2)] + g.http_conversation(t0=T0 + 5))
    rows = by_index(s)
    assert rows[("udp", 0)]["state"] == "SF" and rows[("udp", 0)]["history"] == "Dd"
    assert rows[("udp", 0)]["payload_bytes"] == 6 and rows[("udp", 0)]["client"] == "10.0.0.1:5000"
    assert rows[("udp", 1)]["state"] == "S0" and rows[("udp", 1)]["history"] == "D"
    assert rows[("tcp", 0)]["packets"] == 9
    assert [r["proto"] for r in analyze([q(C, S, 5000, 53, 0)] + g.http_conversation(), proto="tcp").streams] == ["tcp"]


# --- per-packet analysis -------------------------------------------------------------------------

def loss_conversation():
    c, s = 1000, 5000
    pk = [
        (C, S, 40000, 80, c, 0, g.SYN, b""),
        (S, C, 80, 40000, s, c + 1, g.SYN | g.ACK, b""),
        (C, S, 40000, 80, c + 1, s + 1, g.ACK, b""),
        (S, C, 80, 40000, s + 1, c + 1, g.ACK, b"a" * 100),
        (S, C, 80, 40000, s + 201, c + 1, g.ACK, b"c" * 100),   # s+101..s+200 never captured
        (C, S, 40000, 80, c + 1, s + 101, g.ACK, b""),
        (C, S, 40000, 80, c + 1, s + 101, g.ACK, b""),          # duplicate ACK #1
        (C, S, 40000, 80, c + 1, s + 101, g.ACK, b""),          # duplicate ACK #2
        (S, C, 80, 40000, s + 101, c + 1, g.ACK, b"b" * 100),   # within 20 ms: fast retransmission
        (C, S, 40000, 80, c + 1, s + 301, g.ACK, b""),
    ]
    return [(T0 + i * MS // 10, seg(a, b, pa, pb, sq, ak, fl, 502, pl)) for i, (a, b, pa, pb, sq, ak, fl, pl)
            in enumerate(pk)]


def test_lost_segment_duplicate_acks_and_fast_retransmission():
    s = analyze(loss_conversation(), detail=0)
    notes = [p["analysis"] for p in s.detail["packets"]]
    assert notes[4] == ["lost_segment"]
    assert notes[6] == ["duplicate_ack"] and notes[7] == ["duplicate_ack"]
    assert notes[8] == ["retransmission", "fast_retransmission"]
    row = s.streams[0]
    assert (row["retransmissions"], row["dup_acks"], row["lost_segments"]) == (1, 2, 1)
    assert row["history"] == "ShAdt"  # t: the server's payload did not go beyond its highest seq


def test_relative_numbers_window_scaling_and_handshake_rtt():
    s = analyze(g.http_conversation(scale=7), detail=0)
    p = s.detail["packets"]
    assert [(r["seq"], r["ack"]) for r in p[:4]] == [(0, 0), (0, 1), (1, 1), (1, 1)]
    assert p[0]["window"] == 502 and p[1]["window"] == 502  # SYNs are never scaled
    assert p[2]["window"] == 502 << 7
    assert p[3]["flags"] == "PSH,ACK" and p[3]["flags_hex"] == "0x018" and p[3]["segment_length"] == 18
    assert p[6]["flags"] == "FIN,ACK" and p[1]["flags"] == "SYN,ACK"
    assert s.streams[0]["handshake_rtt"] == pytest.approx(2e-6)  # SYN at 0, first pure ACK at 2 µs
    assert (s.streams[0]["client_isn"], s.streams[0]["server_isn"], s.streams[0]["synack_ack"]) == (1000, 5000, 1001)


def test_no_window_scaling_when_one_side_did_not_offer_it():
    conv = g.http_conversation()
    conv[1] = (conv[1][0], seg(S, C, 80, 40000, 5000, 1001, g.SYN | g.ACK))  # SYN-ACK without the option
    s = analyze(conv, detail=0)
    assert s.detail["packets"][2]["window"] == 502


def test_zero_window_is_counted():
    conv = g.http_conversation()[:4] + [(T0 + 50 * MS, seg(S, C, 80, 40000, 5001, 1019, g.ACK, win=0))]
    s = analyze(conv, detail=0)
    assert s.streams[0]["zero_window"] == 1 and s.detail["packets"][-1]["analysis"] == ["zero_window"]
    assert s.streams[0]["history"] == "ShADaw"


# --- Zeek conn_state / history -------------------------------------------------------------------

@pytest.mark.parametrize("packets,state,history", [
    ([(C, S, 40000, 80, 1, 0, g.SYN)], "S0", "S"),
    ([(C, S, 40000, 80, 1, 0, g.SYN), (S, C, 80, 40000, 0, 2, g.RST | g.ACK)], "REJ", "Sr"),
    ([(C, S, 40000, 80, 1, 0, g.SYN), (S, C, 80, 40000, 9, 2, g.SYN | g.ACK), (C, S, 40000, 80, 2, 10, g.ACK),
      (C, S, 40000, 80, 2, 10, g.RST | g.ACK)], "RSTO", "ShAR"),
    ([(C, S, 40000, 80, 1, 0, g.SYN), (S, C, 80, 40000, 9, 2, g.SYN | g.ACK), (C, S, 40000, 80, 2, 10, g.ACK),
      (S, C, 80, 40000, 10, 2, g.RST | g.ACK)], "RSTR", "ShAr"),
    ([(C, S, 40000, 80, 1, 0, g.SYN), (S, C, 80, 40000, 9, 2, g.SYN | g.ACK), (C, S, 40000, 80, 2, 10, g.ACK)],
     "S1", "ShA"),
    # a SYN-ACK from a likely server port first: Zeek flips at creation (^), the SYN-ACK is the responder's
    ([(S, C, 80, 40000, 9, 2, g.SYN | g.ACK), (C, S, 40000, 80, 2, 10, g.ACK)], "S1", "^hA"),
    # ... from another port: no flip until productive traffic meets history "H", then "^h"; the SYN-ACK
    # sender stays SYN_ACK_SENT and the ACK makes its sender PARTIAL: OTH
    ([(S, C, 8081, 40000, 9, 2, g.SYN | g.ACK), (C, S, 40000, 8081, 2, 10, g.ACK)], "OTH", "^hA"),
    # FIN, then RST, then the peer's FIN: the peer's FIN turns the RST back into a normal close (SF)
    ([(C, S, 40000, 80, 1, 0, g.SYN), (S, C, 80, 40000, 9, 2, g.SYN | g.ACK), (C, S, 40000, 80, 2, 10, g.ACK),
      (C, S, 40000, 80, 2, 10, g.FIN | g.ACK), (C, S, 40000, 80, 3, 10, g.RST),
      (S, C, 80, 40000, 10, 3, g.FIN | g.ACK)], "SF", "ShAFRf"),
    # both sides reset after data: the payload seen decides RSTR over REJ
    ([(C, S, 40000, 80, 1, 0, g.SYN), (S, C, 80, 40000, 9, 2, g.SYN | g.ACK), (C, S, 40000, 80, 2, 10, g.ACK),
      (C, S, 40000, 80, 2, 10, g.PSH | g.ACK, 502, b"data"), (S, C, 80, 40000, 10, 6, g.RST | g.ACK),
      (C, S, 40000, 80, 6, 10, g.RST)], "RSTR", "ShADrR"),
    ([(C, S, 40000, 80, 1, 0, g.SYN), (S, C, 80, 40000, 9, 2, g.SYN | g.ACK), (C, S, 40000, 80, 2, 10, g.ACK),
      (S, C, 80, 40000, 10, 2, g.RST | g.ACK), (C, S, 40000, 80, 2, 10, g.RST)], "REJ", "ShArR"),
    ([(C, S, 40000, 80, 2, 10, g.ACK), (S, C, 80, 40000, 10, 2, g.ACK)], "OTH", "Aa"),
])
def test_zeek_states_from_the_definitions(packets, state, history):
    recs = [(T0 + i * MS, seg(*p)) for i, p in enumerate(packets)]
    row = analyze(recs).streams[0]
    assert (row["state"], row["history"]) == (state, history)


def test_zeek_sf_for_a_normal_close_and_client_is_the_syn_sender():
    row = analyze(g.http_conversation()).streams[0]
    assert (row["state"], row["history"]) == ("SF", "ShADadfF")
    assert row["client"] == "10.0.0.1:40000" and row["server"] == "10.0.0.2:80"
    late_syn = [g.http_conversation()[1], g.http_conversation()[0]]  # SYN-ACK seen before the SYN
    assert analyze(late_syn).streams[0]["client"] == "10.0.0.1:40000"


# --- both decoding paths agree -------------------------------------------------------------------

def mixed_records():
    recs = g.http_conversation()
    recs += g.http_conversation("fd00::1", "fd00::2", 41000, 443, ip=g.ipv6, t0=T0 + 10 * MS)
    recs += g.http_conversation(cport=42000, t0=T0 + 20 * MS, link=lambda p: g.eth(p, vlans=[7]))
    inner = g.http_conversation("192.168.0.1", "192.168.0.2", 43000, 8080, t0=T0 + 30 * MS)
    recs += [(t, g.eth(g.ipv4("10.1.0.1", "10.1.0.2", g.udp(40001, 8472, g.vxlan(1, f)), proto=17)))
             for t, f in inner]
    recs += [(T0 + 40 * MS + i, g.eth(g.ipv4(C, S, g.udp(6000 + i % 2, 53, b"q" * i), proto=17))) for i in range(6)]
    recs += loss_conversation()
    return sorted(recs, key=lambda r: r[0])


ENGINES = ["python"] + (["native"] if native_engine() is not None else [])


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("detail", [0, 3])
def test_fused_pcap_path_record_path_and_general_path_agree(detail, engine):
    recs = mixed_records()
    fused = analyze(recs, detail=detail, engine=engine).to_dict()
    records = analyze(recs, detail=detail, ng=True, engine=engine).to_dict()
    general = analyze(recs, detail=detail, fast=False, engine=engine).to_dict()
    # TCP: v4, v6, VLAN, inner VXLAN (the loss conversation reuses the v4 4-tuple and ISN: same stream);
    # UDP: the VXLAN carrier and two DNS-like flows
    assert fused["packets"] == len(recs) and len(fused["streams"]) == 7
    assert any(r["encapsulation"] for r in fused["streams"]) and fused["detail"]["packets"]
    assert fused == records == general


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("scenario", ["http_short", "loss", "any_sll2", "ipv6", "vxlan_8472"])
@pytest.mark.root
def test_both_paths_agree_on_real_captures(scenario, engine, captures):
    from kubectl_whose.analysis.pcap.reader import read_chunks

    path = captures.get(scenario).path
    out = []
    for fast in (True, False):
        a = CaptureAnalyzer(detail_stream=0, fast_path=fast, engine=engine)
        with open(path, "rb") as f:
            for chunk in read_chunks(f, 1000):
                a.feed(chunk)
        out.append(a.finish().to_dict())
    assert out[0] == out[1] and out[0]["streams"]


# --- memory and the live view --------------------------------------------------------------------

def test_detail_is_kept_only_for_the_selected_stream_and_reused_streams_are_frozen():
    recs = g.http_conversation() + g.http_conversation(isn_c=50_000, t0=T0 + 10**9)
    a = CaptureAnalyzer(detail_stream=1, engine="python")  # the Python table's internals
    a.feed(g.pcap(recs, nano=True))
    assert len(a.engine.table.detail) == 9
    old, new = a.engine.table.tcp_streams
    assert old.flows is None and new.flows is not None
    rows = by_index(a.finish())
    assert rows[("tcp", 0)]["state"] == "SF" and rows[("tcp", 0)]["history"] == "ShADadfF"


def test_snapshot_counts_while_feeding():
    a = CaptureAnalyzer()
    data = g.pcap(g.http_conversation() + loss_conversation(), nano=True)
    a.feed(data[:500])
    early = a.snapshot()
    a.feed(data[500:])
    late = a.snapshot()
    assert 0 < early.packets < late.packets == 19
    assert late.first_ts == T0 / 1e9 and late.tcp_streams == 1
    assert late.top[0]["packets"] == 19 and late.top[0]["client"] == "10.0.0.1:40000"
    assert late.to_dict()["bytes"] == a.bytes


def test_zeek_shortcut_for_established_packets_changes_nothing(monkeypatch):
    """ZeekTcp.packet skips the state machine for plain data/ACKs; the full path must agree."""
    from kubectl_whose.analysis.streams.python import conn_state

    recs = mixed_records() + g.http_conversation(cport=45000, t0=T0 + 99 * MS)[:5]
    quick = [(r["history"], r["state"]) for r in analyze(recs, engine="python").streams]

    def full(self, d, flags, seq, ack, seglen, window):
        self._process(d, self.ends[d], self.ends[1 - d], flags, seq, ack, seglen, window)

    monkeypatch.setattr(conn_state.ZeekTcp, "packet", full)
    assert [(r["history"], r["state"]) for r in analyze(recs, engine="python").streams] == quick


def test_json_text_rows_equal_the_dict_rows():
    """`-o json` writes rows as text (rows.stream_json); they must be the very objects `streams` holds."""
    import json

    recs = mixed_records() + g.http_conversation(isn_c=77, t0=T0 + 10**9)  # + a frozen (reused) stream
    recs += [(T0 + 2 * 10**9, g.eth(g.ipv4("10.1.0.1", "10.1.0.2", g.udp(1, 6081, g.geneve(9, g.eth(
        g.ipv4("192.168.5.1", "192.168.5.2", g.tcp(1, 2, 3, 0, g.SYN))))), proto=17)))]
    summary = analyze(recs)
    lines = list(summary.iter_json_rows())
    assert len(lines) == len(summary.streams) >= 9
    assert [json.loads(line) for line in lines] == summary.streams
    assert any(r["handshake_rtt"] is None for r in summary.streams)
    assert any(r["encapsulation"] and "→" in r["encapsulation"] for r in summary.streams)


def test_flag_names_are_wiresharks():
    """As tshark 4.0.17's Info column prints them: [SYN, ECE, CWR], [ACK, AE, Reserved], [<None>]."""
    from kubectl_whose.analysis.streams.rows import flag_names

    assert flag_names(0x0C2) == "SYN,ECE,CWR" and flag_names(0x310) == "ACK,AE,Reserved"
    assert flag_names(0x000) == "<None>" and flag_names(0x019) == "FIN,PSH,ACK"
