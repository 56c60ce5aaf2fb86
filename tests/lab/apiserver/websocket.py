"""RFC 6455, server side: the handshake answer and framing over an already-accepted (TLS) socket."""
from __future__ import annotations

import base64
import hashlib
import socket
import struct
import threading
from typing import Optional, Tuple

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


class Closed(Exception):
    """The peer closed the connection (close frame or EOF)."""


class WebSocket:
    def __init__(self, sock: socket.socket, rfile):
        self.sock = sock
        self.rfile = rfile  # the handler's buffered reader: bytes already read past the headers live there
        self._send_lock = threading.Lock()
        self.closed = False
        self.close_sent = False

    # -- sending -----------------------------------------------------------------------------------------------
    def send(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        with self._send_lock:
            if self.close_sent:
                raise Closed()
            try:
                self.sock.sendall(header + payload)
            except OSError as e:
                self.closed = True
                raise Closed() from e

    def send_binary(self, payload: bytes) -> None:
        self.send(OP_BINARY, payload)

    def send_text(self, text: str) -> None:
        self.send(OP_TEXT, text.encode())

    def close(self, code: int = 1000, reason: str = "") -> None:
        try:
            self.send(OP_CLOSE, struct.pack("!H", code) + reason.encode())
        except Closed:
            pass
        with self._send_lock:
            self.close_sent = True

    def abort(self) -> None:
        """Drop the TCP connection without a close frame."""
        with self._send_lock:
            self.close_sent = True
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- receiving ---------------------------------------------------------------------------------------------
    def _read_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.rfile.read(n - len(data))
            if not chunk:
                raise Closed()
            data += chunk
        return data

    def _frame(self) -> Tuple[bool, int, bytes]:
        b1, b2 = self._read_exact(2)
        fin, opcode = bool(b1 & 0x80), b1 & 0x0F
        masked, n = bool(b2 & 0x80), b2 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read_exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read_exact(8))[0]
        mask = self._read_exact(4) if masked else b""
        payload = self._read_exact(n)
        if masked:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if n < 64 else _unmask(payload, mask)
        return fin, opcode, payload

    def receive(self) -> Tuple[int, bytes]:
        """The next data message (opcode, payload); answers pings; raises Closed on close/EOF."""
        parts, first_op = [], None
        while True:
            try:
                fin, op, payload = self._frame()
            except (OSError, ValueError) as e:
                self.closed = True
                raise Closed() from e
            if op == OP_PING:
                try:
                    self.send(OP_PONG, payload)
                except Closed:
                    pass
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                self.closed = True
                if not self.close_sent:
                    self.close(struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1000)
                raise Closed()
            if op != OP_CONT:
                first_op = op
            parts.append(payload)
            if fin:
                return first_op or OP_BINARY, b"".join(parts)


def _unmask(payload: bytes, mask: bytes) -> bytes:
    n = len(payload)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


def negotiate(offered: Optional[str], supported) -> Optional[str]:
    """The protocol the API server settles on. From 1.30 a request that offers v5 goes to the stream translator,
    which speaks v5 whatever the order; anything else reaches the kubelet's wsstream, where the client's order
    wins and a request without a subprotocol is the "" protocol (channel.k8s.io)."""
    wanted = [p.strip() for p in (offered or "").split(",") if p.strip()]
    if "v5.channel.k8s.io" in wanted and "v5.channel.k8s.io" in supported:
        return "v5.channel.k8s.io"
    if not wanted:
        return "" if "" in supported else None
    for proto in wanted:
        if proto in supported:
            return proto
    return None
