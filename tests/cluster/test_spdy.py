"""SPDY/3.1 frames as the spec lays them out (draft 3.1, section 2), and frames cut out of a byte stream however
it arrives. Whether the header compression and the exec protocol are right is judged end to end: the lab's SPDY
server is checked against the real kubectl (tests/lab/test_spdy.py), our client against that server
(tests/e2e/test_exec_transports.py); here the server's frames come from the lab's independent implementation."""
import struct

import pytest

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


def _serve(sock, settings: bool, payload: bytes, got: list):
    """A kubelet-like server on one end of a socketpair: the lab's SPDY implementation, then what came back."""
    import json
    import threading

    from tests.lab.apiserver import spdy as lab_spdy

    conn = ServerConnection(sock, sock.makefile("rb"))
    if settings:  # a peer that counts windows announces itself (SETTINGS, initial window 64 KiB)
        sock.sendall(struct.pack("!HHII", 0x8003, lab_spdy.SETTINGS, 12, 1) + struct.pack("!II", 7, 65536))
    ids = {}
    while len(ids) < 3:
        f = conn.read_frame()
        ids[f.headers["streamtype"][0]] = f.stream_id
        conn.send_syn_reply(f.stream_id)
    for i in range(0, len(payload), 32768):
        conn.send_data(ids["stdout"], payload[i:i + 32768])
    conn.send_data(ids["stdout"], b"", fin=True)
    conn.send_data(ids["stderr"], b"", fin=True)
    conn.send_data(ids["error"], json.dumps({"metadata": {}, "status": "Success"}).encode())

    def drain():
        try:
            while True:
                got.append(conn.read_frame())
        except lab_spdy.Closed:
            pass
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        for sid in ids.values():
            conn.send_rst(sid)
        conn.send_goaway(5)
    except lab_spdy.Closed:  # the client may be gone already: the error stream's reset was all it waited for
        pass
    reader.join(5)  # the client sends GOAWAY and closes when it is done


@pytest.mark.parametrize("settings", [False, True], ids=["spdystream-peer", "window-counting-peer"])
def test_windows_are_granted_only_to_a_peer_that_counts_them(settings):
    import socket
    import threading

    from kubectl_whose.cluster.exec_spdy import exchange

    client, server = socket.socketpair()
    payload = bytes(range(256)) * 1024  # 256 KiB: four initial windows
    got: list = []
    t = threading.Thread(target=_serve, args=(server, settings, payload, got), daemon=True)
    t.start()
    chunks = []
    result = exchange(client, b"", chunks.append, timeout=10)
    t.join(5)
    assert b"".join(chunks) == payload and result.exit_code == 0 and result.transport == "SPDY/3.1"
    updates = [f for f in got if f.kind == "window_update"]
    if not settings:
        assert updates == []  # as client-go: spdystream neither sends nor counts windows
    else:
        granted = {sid: sum(f.value for f in updates if f.stream_id == sid) for sid in {f.stream_id for f in updates}}
        assert granted == {0: len(payload), 3: len(payload)}  # the connection and stdout (streams 1, 3, 5)
