"""SPDY/3.1, the server side, as moby/spdystream speaks it (the library under the kubelet's streaming server and
client-go's SPDY executor).

Frames (SPDY Protocol draft 3.1, section 2): a control frame is `1 | version(15) | type(16) | flags(8) |
length(24)`, a data frame `0 | stream-id(31) | flags(8) | length(24)`, then `length` bytes. Header blocks of
SYN_STREAM / SYN_REPLY / HEADERS are `count(32)` then `len(32) name len(32) value` pairs (names lowercase,
several values joined by NUL), compressed with ONE zlib stream per direction for the whole connection, primed
with the spec's dictionary and sync-flushed after every block.

What spdystream does, and so the lab: it answers PING frames whose id has the peer's parity, and it neither
sends WINDOW_UPDATE nor waits for one (SETTINGS and WINDOW_UPDATE are read and ignored), so data is never held
back by a flow-control window.
"""
from __future__ import annotations

import socket
import struct
import threading
import zlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_PROTOCOL_ERROR, RST_CANCEL = 1, 5

_NAMES = ("options head post put delete trace accept accept-charset accept-encoding accept-language accept-ranges "
          "age allow authorization cache-control connection content-base content-encoding content-language "
          "content-length content-location content-md5 content-range content-type date etag expect expires from "
          "host if-match if-modified-since if-none-match if-range if-unmodified-since last-modified location "
          "max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after server te trailer "
          "transfer-encoding upgrade user-agent vary via warning www-authenticate method get status").split()
_WORDS = ("200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin")
_TAIL = ("100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505203 "
         "Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized403 "
         "Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service UnavailableJan Feb Mar Apr "
         "May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,"
         "image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,public"
         "privatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
# The header compression dictionary of SPDY/3 (section 2.6.10.1): length-prefixed words, then a plain tail.
DICTIONARY = b"".join(struct.pack("!I", len(w)) + w.encode() for w in (*_NAMES, *_WORDS)) + _TAIL.encode()


class Closed(Exception):
    """The peer went away (GOAWAY, EOF or a broken socket)."""


@dataclass
class Frame:
    kind: str  # "data" or the control type's name
    stream_id: int = 0
    flags: int = 0
    data: bytes = b""
    headers: Dict[str, List[str]] = field(default_factory=dict)
    value: int = 0  # RST status, PING id, GOAWAY last-good id, WINDOW_UPDATE delta

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


_CONTROL_NAMES = {SYN_STREAM: "syn_stream", SYN_REPLY: "syn_reply", RST_STREAM: "rst_stream", SETTINGS: "settings",
                  PING: "ping", GOAWAY: "goaway", HEADERS: "headers", WINDOW_UPDATE: "window_update"}


def encode_headers(headers: Dict[str, List[str]]) -> bytes:
    out = [struct.pack("!I", len(headers))]
    for name, values in headers.items():
        n, v = name.lower().encode(), "\x00".join(values).encode()
        out += [struct.pack("!I", len(n)), n, struct.pack("!I", len(v)), v]
    return b"".join(out)


def decode_headers(block: bytes) -> Dict[str, List[str]]:
    (count,), pos, out = struct.unpack_from("!I", block), 4, {}
    for _ in range(count):
        (n,) = struct.unpack_from("!I", block, pos)
        name = block[pos + 4:pos + 4 + n].decode("latin-1")
        pos += 4 + n
        (n,) = struct.unpack_from("!I", block, pos)
        out[name] = block[pos + 4:pos + 4 + n].decode("latin-1").split("\x00")
        pos += 4 + n
    return out


class ServerConnection:
    """One upgraded connection; `read_frame()` from one thread, the `send_*` methods from any."""

    def __init__(self, sock: socket.socket, rfile):
        self.sock, self.rfile = sock, rfile  # rfile: the handler's buffered reader (bytes past the headers live there)
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, zdict=DICTIONARY)
        self._lock = threading.Lock()
        self.closed = False

    # -- reading -------------------------------------------------------------------------------------------------
    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            try:
                chunk = self.rfile.read(n - len(data))
            except (OSError, ValueError) as e:
                raise Closed() from e
            if not chunk:
                raise Closed()
            data += chunk
        return data

    def read_frame(self) -> Frame:
        first, second = struct.unpack("!II", self._read(8))
        flags, length = second >> 24, second & 0xFFFFFF
        payload = self._read(length)
        if not first & 0x80000000:
            return Frame("data", first & 0x7FFFFFFF, flags, payload)
        ctype = first & 0xFFFF
        kind = _CONTROL_NAMES.get(ctype, f"type-{ctype}")
        if ctype == SYN_STREAM:
            sid = struct.unpack_from("!I", payload)[0] & 0x7FFFFFFF
            return Frame(kind, sid, flags, headers=decode_headers(self._inflate.decompress(payload[10:])))
        if ctype in (SYN_REPLY, HEADERS):
            sid = struct.unpack_from("!I", payload)[0] & 0x7FFFFFFF
            return Frame(kind, sid, flags, headers=decode_headers(self._inflate.decompress(payload[4:])))
        if ctype in (RST_STREAM, WINDOW_UPDATE):
            sid, value = struct.unpack_from("!II", payload)
            return Frame(kind, sid & 0x7FFFFFFF, flags, value=value)
        if ctype == PING:
            return Frame(kind, flags=flags, value=struct.unpack_from("!I", payload)[0])
        if ctype == GOAWAY:
            return Frame(kind, flags=flags, value=struct.unpack_from("!I", payload)[0] & 0x7FFFFFFF)
        return Frame(kind, flags=flags, data=payload)

    # -- writing -------------------------------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as e:
            self.closed = True
            raise Closed() from e

    def _control(self, ctype: int, flags: int, payload: bytes) -> bytes:
        return struct.pack("!HHI", 0x8000 | VERSION, ctype, flags << 24 | len(payload)) + payload

    def send_syn_reply(self, stream_id: int, headers: Optional[Dict[str, List[str]]] = None) -> None:
        with self._lock:
            block = self._deflate.compress(encode_headers(headers or {})) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
            self._send(self._control(SYN_REPLY, 0, struct.pack("!I", stream_id) + block))

    def send_data(self, stream_id: int, data: bytes, fin: bool = False) -> None:
        with self._lock:
            self._send(struct.pack("!II", stream_id, (FLAG_FIN if fin else 0) << 24 | len(data)) + data)

    def send_rst(self, stream_id: int, status: int = RST_CANCEL) -> None:
        with self._lock:
            self._send(self._control(RST_STREAM, 0, struct.pack("!II", stream_id, status)))

    def send_ping(self, ping_id: int) -> None:
        with self._lock:
            self._send(self._control(PING, 0, struct.pack("!I", ping_id)))

    def send_goaway(self, last_good: int) -> None:
        with self._lock:
            self._send(self._control(GOAWAY, 0, struct.pack("!II", last_good, 0)))

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
