"""The capture reader on literal pcap/pcapng bytes: formats, chunking, truncation, bad input, pipes."""
from __future__ import annotations

import io
import os
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubectl_whose.analysis.pcap.reader import CaptureReader, read_records
from kubectl_whose.analysis.streams import CaptureAnalyzer, analyze_file
from kubectl_whose.errors import ExitCode, WhoseError
from tests.helpers import pcapgen as g

T0 = 1_700_000_000_123_456_000
FRAME_A = g.eth(g.ipv4("10.0.0.1", "10.0.0.2", g.tcp(40000, 80, 1, 0, g.SYN)))
FRAME_B = g.ipv4("10.0.0.2", "10.0.0.1", g.tcp(80, 40000, 7, 2, g.SYN | g.ACK))


def read(data: bytes, chunk: int = 0):
    reader = CaptureReader("test.pcap")
    out = []
    if chunk:
        for i in range(0, len(data), chunk):
            reader.feed(data[i:i + chunk])
            out.extend(reader.records())
    else:
        reader.feed(data)
        out.extend(reader.records())
    reader.close()
    return out, reader


@pytest.mark.parametrize("endian", ["<", ">"])
def test_classic_pcap_microseconds_both_byte_orders(endian):
    data = g.pcap([(T0, FRAME_A), (T0 + 2_000_000, FRAME_A, 1514)], endian=endian)
    recs, reader = read(data)
    assert reader.format == "pcap" and reader.linktypes == [1] and not reader.truncated
    assert recs == [(1, T0, 1, len(FRAME_A), len(FRAME_A), FRAME_A),
                    (2, T0 + 2_000_000, 1, len(FRAME_A), 1514, FRAME_A)]


def test_classic_pcap_nanoseconds_keep_every_digit():
    ts = 1_700_000_000_000_000_007
    recs, _ = read(g.pcap([(ts, FRAME_A)], nano=True))
    assert recs[0][1] == ts


def test_modified_pcap_has_24_byte_record_headers():
    recs, reader = read(g.pcap([(T0, FRAME_A), (T0, FRAME_A)], modified=True))
    assert [r[0] for r in recs] == [1, 2] and recs[1][5] == FRAME_A and not reader.truncated


def test_pcapng_two_interfaces_with_their_own_linktype_and_resolution():
    data = (g.shb() + g.idb(1) + g.idb(101, tsresol=9, tsoffset=10) + g.unknown_block()
            + g.epb(0, T0 // 1000, FRAME_A) + g.epb(1, 1_700_000_000_000_000_001, FRAME_B, orig_len=900)
            + g.spb(FRAME_A) + g.pb(1, 5, FRAME_B))
    recs, reader = read(data)
    assert reader.format == "pcapng" and reader.linktypes == [1, 101]
    assert recs[0] == (1, T0, 1, len(FRAME_A), len(FRAME_A), FRAME_A)
    # if_tsresol 9 = nanoseconds, if_tsoffset 10 s added
    assert recs[1] == (2, 1_700_000_010_000_000_001, 101, len(FRAME_B), 900, FRAME_B)
    assert recs[2][2] == 1 and recs[2][5] == FRAME_A  # SPB: interface 0, no timestamp
    assert recs[3][1:3] == (10_000_000_005, 101)  # obsolete PB on interface 1


def test_pcapng_binary_resolution_big_endian_and_a_second_section():
    data = (g.shb(">") + g.idb(1, tsresol=0x80 | 10, endian=">") + g.epb(0, 3 * 1024, FRAME_A, endian=">")
            + g.shb() + g.idb(101) + g.epb(0, 5, FRAME_B))
    recs, reader = read(data)
    assert recs[0][1:3] == (3 * 10**9, 1)  # 2^-10 s units
    assert recs[1][1:3] == (5000, 101)  # new section: interface 0 is the new IDB (microseconds)
    assert reader.linktypes == [1, 101]


@pytest.mark.parametrize("make", [
    lambda: g.pcap([(T0 + i, FRAME_A) for i in range(5)]),
    lambda: g.shb() + g.idb(1) + b"".join(g.epb(0, i, FRAME_A) for i in range(5)),
])
def test_feeding_one_byte_at_a_time_gives_the_same_records(make):
    data = make()
    assert read(data, chunk=1)[0] == read(data)[0]
    assert len(read(data, chunk=7)[0]) == 5


def test_cut_inside_a_record_body_drops_it_and_says_so():
    data = g.pcap([(T0, FRAME_A), (T0, FRAME_A), (T0, FRAME_A)])
    recs, reader = read(data[:-10])
    assert len(recs) == 2 and reader.truncated
    assert reader.warnings[0].startswith("capture ended mid-packet after frame 2")


def test_cut_inside_a_record_header_drops_it_and_says_so():
    data = g.pcap([(T0, FRAME_A), (T0, FRAME_A)])
    recs, reader = read(data[:24 + 16 + len(FRAME_A) + 9])
    assert len(recs) == 1 and reader.truncated and "after frame 1" in reader.warnings[0]


def test_cut_pcapng_block_is_truncation_too():
    data = g.shb() + g.idb(1) + g.epb(0, 1, FRAME_A) + g.epb(0, 2, FRAME_A)
    recs, reader = read(data[:-5])
    assert len(recs) == 1 and reader.truncated


def test_wrong_magic_is_bad_input_with_the_magic_named(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(b"hello world, not a capture")
    with pytest.raises(WhoseError) as e:
        analyze_file(str(path))
    assert e.value.code == ExitCode.BAD_INPUT
    assert str(e.value).startswith(f"{path} is not a pcap or pcapng file (magic 0x68656c6c)")


def test_empty_and_too_short_files_are_bad_input(tmp_path):
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    with pytest.raises(WhoseError) as e:
        analyze_file(str(empty))
    assert e.value.code == ExitCode.BAD_INPUT and "is empty (0 bytes)" in str(e.value)
    short = tmp_path / "short.pcap"
    short.write_bytes(g.pcap([])[:12])
    with pytest.raises(WhoseError) as e:
        analyze_file(str(short))
    assert e.value.code == ExitCode.BAD_INPUT and "too short" in str(e.value)


def test_corruption_after_some_frames_keeps_them_with_a_warning():
    good = g.pcap([(T0, FRAME_A), (T0, FRAME_A)])
    bad = good + b"\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\x7f\xff\xff\xff\x7f" + b"\x00" * 64
    a = CaptureAnalyzer()
    a.feed(bad)
    s = a.finish()
    assert s.packets == 2 and s.truncated and s.tcp_stream_count == 1
    assert "corrupt after frame 2" in s.warnings[0]


def test_corruption_at_the_first_record_is_an_error():
    data = g.pcap([]) + b"\x00" * 8 + b"\xff\xff\xff\x7f" * 2
    with pytest.raises(WhoseError) as e:
        read(data)
    assert e.value.code == ExitCode.BAD_INPUT and "impossible" in str(e.value)


def test_pcapng_packet_for_an_undescribed_interface_is_corruption():
    data = g.shb() + g.idb(1) + g.epb(0, 1, FRAME_A) + g.epb(3, 2, FRAME_A)
    recs, reader = read(data)
    assert len(recs) == 1 and "interface 3" in reader.warnings[0]


def test_a_pipe_is_read_without_seeking():
    data = g.pcap(g.http_conversation())
    rfd, wfd = os.pipe()

    def writer():
        with os.fdopen(wfd, "wb") as w:
            for i in range(0, len(data), 100):
                w.write(data[i:i + 100])

    t = threading.Thread(target=writer)
    t.start()
    with os.fdopen(rfd, "rb") as r:
        summary = analyze_file(r)
    t.join()
    assert summary.packets == 9 and summary.streams[0]["packets"] == 9


def test_buffer_stays_small_however_long_the_capture():
    reader = CaptureReader()
    record = g.pcap([(T0, FRAME_A)])[24:]
    reader.feed(g.pcap([]))
    biggest = 0
    for _ in range(3000):
        reader.feed(record * 50)
        for _rec in reader.records():
            pass
        biggest = max(biggest, len(reader._buf))
    assert reader.frames == 150_000
    assert biggest < 4 * 50 * len(record) + (1 << 17)


def test_read_records_accepts_a_file_object():
    recs, reader = read_records(io.BytesIO(g.pcap([(T0, FRAME_A)])))
    assert len(recs) == 1 and reader.name == "input"


VALID = g.pcap(g.http_conversation() + [(T0, g.eth(g.ipv4("10.0.0.9", "10.0.0.8", g.udp(5000, 53, b"q"), 17)))])
VALID_NG = g.shb() + g.idb(1) + b"".join(g.epb(0, i, f) for i, (_, f) in enumerate(g.http_conversation()))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_mutated_captures_never_crash(data):
    base = data.draw(st.sampled_from([VALID, VALID_NG]))
    buf = bytearray(base)
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(buf)))
    chunk = data.draw(st.integers(1, 64))
    a = CaptureAnalyzer(detail_stream=0)
    try:
        for i in range(0, cut, chunk):
            a.feed(bytes(buf[i:min(i + chunk, cut)]))
        summary = a.finish()
    except WhoseError as e:
        assert e.code == ExitCode.BAD_INPUT
        return
    summary.to_dict()  # every row renders


def test_a_cut_pcapng_section_header_is_no_capture():
    shb = g.shb()
    with pytest.raises(WhoseError) as e:
        read(shb[:16])
    assert e.value.code == ExitCode.BAD_INPUT and "too short" in str(e.value)
    with pytest.raises(WhoseError) as e:
        read(shb[:8] + b"\x01\x02\x03\x04" + shb[12:])
    assert "byte-order magic 0x01020304" in str(e.value)


@pytest.mark.parametrize("data", [VALID, VALID_NG], ids=["pcap", "pcapng"])
def test_analyzer_fed_one_byte_at_a_time_equals_one_feed(data):
    whole = CaptureAnalyzer(detail_stream=0)
    whole.feed(data)
    trickle = CaptureAnalyzer(detail_stream=0)
    for i in range(len(data)):
        trickle.feed(data[i:i + 1])
    done = whole.finish()
    assert trickle.finish().to_dict() == done.to_dict()
    assert len(done.detail["packets"]) == 9
