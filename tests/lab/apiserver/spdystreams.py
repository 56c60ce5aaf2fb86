"""exec/attach over SPDY/3.1: the streams of the kubelet's streaming server (kubelet `cri/streaming/
remotecommand/httpstream.go` + `exec.go`), behind the API server's upgrade-aware proxy.

The client opens one stream per channel, each a SYN_STREAM with the header `streamtype`: `error`, then `stdin`,
`stdout`, `stderr` as asked for, and `resize` with a tty (v3+). The server replies to each, waits (30 s) until all
expected streams are there, then runs the command: output goes out as DATA frames of <= 32 KiB on its stream,
which ends with an empty DATA+FIN when the process closes it; stdin arrives as DATA, its FIN is EOF. At the end
the status goes on the error stream (v4: the `metav1.Status` JSON, also on success; v2/v3: the error's text,
nothing on success), then every stream is reset (RST_STREAM CANCEL) and the connection ends with GOAWAY.
"""
from __future__ import annotations

import json
import time
from typing import Dict, Optional

from . import spdy
from .spdy import Closed, ServerConnection

V4, V3, V2 = "v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io"
SUPPORTED = (V4, V3, V2)  # the kubelet also serves v1, whose error stream is reset at once; no client uses it
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
_TYPES = {"error": ERROR, "stdin": STDIN, "stdout": STDOUT, "stderr": STDERR, "resize": RESIZE}
STREAM_CREATION_TIMEOUT = 30.0


def negotiate(offered, supported=SUPPORTED) -> Optional[str]:
    """httpstream.Handshake: the client's first `X-Stream-Protocol-Version` the server accepts."""
    for proto in (p.strip() for value in offered for p in value.split(",")):
        if proto in supported:
            return proto
    return None


class SpdyChannels:
    """The channel interface `execstream.ExecSession` drives, over SPDY streams."""

    half_close = True  # stdin's FIN is EOF in every SPDY protocol version

    def __init__(self, conn: ServerConnection, protocol: str, stdin: bool, stdout: bool, stderr: bool, tty: bool):
        self.conn, self.protocol = conn, protocol
        self.expected = 1 + stdin + stdout + stderr + (tty and protocol != V2)
        self.streams: Dict[int, int] = {}  # channel -> stream id
        self.by_id: Dict[int, int] = {}
        self.closing = False
        self._finished = set()
        self._resize = b""

    def _handle_control(self, frame) -> bool:
        """PING echoes, GOAWAY ends; True when the frame was consumed."""
        if frame.kind == "ping":
            if frame.value % 2 == 1:  # the client's pings are odd; ours would be even
                self.conn.send_ping(frame.value)
            return True
        if frame.kind == "goaway":
            raise Closed()
        return frame.kind in ("settings", "window_update", "headers")

    def wait_for_streams(self, timeout: float = STREAM_CREATION_TIMEOUT) -> bool:
        """Reply to the client's streams until all expected ones are there."""
        deadline = time.monotonic() + timeout
        self.conn.sock.settimeout(timeout)
        try:
            while len(self.streams) < self.expected:
                if time.monotonic() > deadline:
                    return False  # the kubelet logs "timed out waiting for client to create streams"
                frame = self.conn.read_frame()
                if self._handle_control(frame):
                    continue
                if frame.kind == "syn_stream":
                    self.conn.send_syn_reply(frame.stream_id)
                    channel = _TYPES.get((frame.headers.get("streamtype") or [""])[0])
                    if channel is not None:
                        self.streams[channel] = frame.stream_id
                        self.by_id[frame.stream_id] = channel
        except (Closed, OSError):
            return False
        finally:
            try:
                self.conn.sock.settimeout(None)
            except OSError:
                pass
        return True

    def open(self, want: dict) -> None:
        """Nothing: unlike the WebSocket protocols, SPDY sends no empty first message."""

    def send(self, channel: int, payload: bytes) -> None:
        if self.closing and channel != ERROR:
            raise Closed()
        sid = self.streams.get(channel)
        if sid is None:
            return
        self.conn.send_data(sid, payload)

    def end_output(self, channel: int) -> None:
        """The process closed its stdout or stderr: the runtime closes that stream (DATA with FIN)."""
        sid = self.streams.get(channel)
        if sid is not None and channel not in self._finished:
            self._finished.add(channel)
            try:
                self.conn.send_data(sid, b"", fin=True)
            except Closed:
                pass

    def finish(self, status: dict) -> None:
        self.closing = True
        try:
            sid = self.streams.get(ERROR)
            if sid is not None:
                if self.protocol == V4:
                    self.conn.send_data(sid, json.dumps(status, separators=(",", ":")).encode())
                elif status.get("status") != "Success":
                    self.conn.send_data(sid, str(status.get("message") or "").encode())
            for sid in sorted(self.by_id):
                self.conn.send_rst(sid, spdy.RST_CANCEL)
            self.conn.send_goaway(max(self.by_id, default=0))
        except Closed:
            pass
        self.conn.close()

    def abort(self) -> None:
        self.closing = True
        self.conn.close()

    def receive(self):
        """(channel, payload) from the client: stdin data, (CLOSE, b"\\0") for stdin's FIN, resize JSON."""
        while True:
            frame = self.conn.read_frame()
            if self._handle_control(frame):
                continue
            if frame.kind == "syn_stream":  # a stream past the expected ones: accepted, never read
                self.conn.send_syn_reply(frame.stream_id)
                continue
            channel = self.by_id.get(frame.stream_id)
            if frame.kind == "rst_stream":
                if channel == STDIN:
                    return CLOSE, bytes([STDIN])
                continue
            if frame.kind != "data":
                continue
            if channel == STDIN:
                if frame.data:
                    return STDIN, frame.data
                if frame.fin:
                    return CLOSE, bytes([STDIN])
            elif channel == RESIZE and frame.data:
                size = self._next_size(frame.data)
                if size is not None:
                    return RESIZE, size

    def _next_size(self, data: bytes) -> Optional[bytes]:
        """The resize stream is a stream of JSON objects (json.Encoder), not one per frame."""
        self._resize += data
        try:
            obj, end = json.JSONDecoder().raw_decode(self._resize.decode("utf-8", "replace").lstrip())
        except ValueError:
            return None
        self._resize = b""
        return json.dumps(obj).encode()


def accept(req, protocol: str):
    """Write the 101 as the kubelet does (through the API server's proxy) and take over the connection."""
    h = req.handler
    h.send_response(101, "Switching Protocols")
    h.send_header("Connection", "Upgrade")
    h.send_header("Upgrade", "SPDY/3.1")
    h.send_header("X-Stream-Protocol-Version", protocol)
    h.end_headers()
    h.wfile.flush()
    h.close_connection = True
    return ServerConnection(h.connection, h.rfile)

