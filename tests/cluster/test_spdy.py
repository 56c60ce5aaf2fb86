"""SPDY/3.1 frames as the spec lays them out (draft 3.1, section 2), and frames cut out of a byte stream however
it arrives. Whether the header compression and the exec protocol are right is judged end to end: the lab's SPDY
server is checked against the real kubectl (tests/lab/test_spdy.py), our client against that server
(tests/e2e/test_exec_transports.py); here the server's frames come from the lab's independent implementation."""
import struct

from kubectl_whose.cluster import spdy
from tests.lab.apiserver.spdy import ServerConnection


def test_control_and_data_frames_are_laid_out_as_the_spec_says():
    c = spdy.Codec()
    assert c.ping(1) == bytes.fromhex("80030006" "00000004" "00000001")
    assert c.rst_stream(5) == bytes.fromhex("80030003" "00000008" "00000005" "00000005")  # CANCEL = 5
    assert c.goaway() == bytes.fromhex("80030007" "00000008" "00000000" "00000000")
    assert c.window_update(0, 32768) == bytes.fromhex("80030009" "00000008" "00000000" "00008000")
    assert c.data(3, b"ab", fin=True) == bytes.fromhex("00000003" "01000002") + b"ab"


def test_syn_streams_count_up_by_two_from_one():
    c = spdy.Codec()
    ids = []
    for name in ("error", "stdout", "stderr"):
        sid, frame = c.syn_stream({"streamtype": name})
        ids.append(sid)
        version, ctype, flags_len = struct.unpack_from("!HHI", frame)
        assert (version, ctype, flags_len >> 24, flags_len & 0xFFFFFF) == (0x8003, 1, 0, len(frame) - 8)
        assert struct.unpack_from("!IIBB", frame, 8) == (sid, 0, 0, 0)
    assert ids == [1, 3, 5]


class _Sink:
    def __init__(self):
        self.data = b""

    def sendall(self, data):
        self.data += data


def test_frames_cut_out_of_a_stream_arriving_byte_by_byte():
    wire = _Sink()
    server = ServerConnection(wire, None)
    server.send_syn_reply(1)
    server.send_syn_reply(3, {"x-a": ["1", "2"]})
    server.send_data(3, b"\x00\xffpcap" * 10000)
    server.send_data(3, b"", fin=True)
    server.send_ping(2)
    server.send_rst(1)
    server.send_goaway(5)
    codec, frames = spdy.Codec(), []
    for i in range(len(wire.data)):
        frames += list(codec.feed(wire.data[i:i + 1]))
    assert [(f.type, f.stream_id) for f in frames] == [(spdy.SYN_REPLY, 1), (spdy.SYN_REPLY, 3), (0, 3), (0, 3),
                                                       (spdy.PING, 0), (spdy.RST_STREAM, 1), (spdy.GOAWAY, 0)]
    assert frames[0].headers == {} and frames[1].headers == {"x-a": ["1", "2"]}
    assert frames[2].data == b"\x00\xffpcap" * 10000 and not frames[2].fin
    assert frames[3].fin and frames[3].data == b""
    assert (frames[4].value, frames[5].value, frames[6].value) == (2, spdy.RST_CANCEL, 5)
