"""SPDY/3.1 framing for the client side of an exec, written here because PyPI has no maintained implementation
(`spdy-py` 0.2.0 dates from 2021, `python-spdylay` from 2012).

Wire format (SPDY Protocol draft 3.1, section 2):
- control frame: `1 | version=3 (15 bits) | type (16) | flags (8) | length (24)` + payload;
  data frame: `0 | stream-id (31) | flags (8) | length (24)` + payload; FLAG_FIN (0x01) ends that side of a stream;
- SYN_STREAM `stream-id | associated-id | priority (3 bits) + 5 unused | slot | header block`, SYN_REPLY and
  HEADERS `stream-id | header block`, RST_STREAM `stream-id | status`, PING `id`, GOAWAY `last-good-id | status`,
  WINDOW_UPDATE `stream-id (0 = the connection, new in 3.1) | delta`;
- a header block is `count (32)` then `len (32) name len (32) value` pairs, names lowercase, several values joined
  by NUL; all blocks of one direction form ONE zlib stream primed with the spec's dictionary (2.6.10.1) and
  sync-flushed after each block.
Flow control: a receiver grants its peer more window with WINDOW_UPDATE; the initial window is 64 KiB per stream
and for the connection. Kubernetes' own side (moby/spdystream, in the kubelet and in client-go) neither sends nor
waits for WINDOW_UPDATE; `exec_spdy` grants windows to a peer that shows it counts them (SETTINGS or a
WINDOW_UPDATE of its own), so such a peer never stalls a capture. We only ever send empty data frames, so our
own send window never matters.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Dict, Iterator, List

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_CANCEL = 5
INITIAL_WINDOW = 64 * 1024

_DICTIONARY_WORDS = (
    "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding",
    "accept-language", "accept-ranges", "age", "allow", "authorization", "cache-control", "connection",
    "content-base", "content-encoding", "content-language", "content-length", "content-location", "content-md5",
    "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host", "if-match",
    "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
    "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer", "retry-after",
    "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via", "warning",
    "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie",
    "keep-alive", "origin")
_DICTIONARY_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
DICTIONARY = b"".join(struct.pack("!I", len(w)) + w.encode() for w in _DICTIONARY_WORDS) + _DICTIONARY_TAIL.encode()


class ProtocolError(Exception):
    """The peer sent something that is not SPDY/3.1."""


@dataclass
class Frame:
    type: int  # 0 = data, else the control frame type
    stream_id: int = 0
    flags: int = 0
    data: bytes = b""
    headers: Dict[str, List[str]] = field(default_factory=dict)
    value: int = 0  # RST_STREAM status, PING id, GOAWAY last-good stream, WINDOW_UPDATE delta

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


def header_block(headers: Dict[str, str]) -> bytes:
    parts = [struct.pack("!I", len(headers))]
    for name, value in headers.items():
        n, v = name.lower().encode("ascii"), value.encode("latin-1")
        parts += [struct.pack("!I", len(n)), n, struct.pack("!I", len(v)), v]
    return b"".join(parts)


def parse_header_block(block: bytes) -> Dict[str, List[str]]:
    try:
        (count,), pos, out = struct.unpack_from("!I", block), 4, {}
        for _ in range(count):
            (n,) = struct.unpack_from("!I", block, pos)
            name, pos = block[pos + 4:pos + 4 + n].decode("latin-1"), pos + 4 + n
            (n,) = struct.unpack_from("!I", block, pos)
            out[name], pos = block[pos + 4:pos + 4 + n].decode("latin-1").split("\0"), pos + 4 + n
        return out
    except struct.error:
        raise ProtocolError("a header block ends early") from None


class Codec:
    """Builds the frames we send and cuts the frames we receive out of a byte stream; one per connection."""

    def __init__(self):
        self._deflate = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, zdict=DICTIONARY)
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._buffer = bytearray()
        self._next_stream = 1  # a client's streams are odd

    # -- building ------------------------------------------------------------------------------------------------
    @staticmethod
    def _control(ctype: int, flags: int, payload: bytes) -> bytes:
        return struct.pack("!HHI", 0x8000 | VERSION, ctype, flags << 24 | len(payload)) + payload

    def syn_stream(self, headers: Dict[str, str]):
        """(stream id, frame) of a new stream; ids must be sent in increasing order."""
        sid, self._next_stream = self._next_stream, self._next_stream + 2
        block = self._deflate.compress(header_block(headers)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        return sid, self._control(SYN_STREAM, 0, struct.pack("!IIBB", sid, 0, 0, 0) + block)

    @staticmethod
    def data(stream_id: int, payload: bytes, fin: bool = False) -> bytes:
        return struct.pack("!II", stream_id, (FLAG_FIN if fin else 0) << 24 | len(payload)) + payload

    def rst_stream(self, stream_id: int, status: int = RST_CANCEL) -> bytes:
        return self._control(RST_STREAM, 0, struct.pack("!II", stream_id, status))

    def ping(self, ping_id: int) -> bytes:
        return self._control(PING, 0, struct.pack("!I", ping_id))

    def goaway(self, last_good: int = 0) -> bytes:
        return self._control(GOAWAY, 0, struct.pack("!II", last_good, 0))

    def window_update(self, stream_id: int, delta: int) -> bytes:
        return self._control(WINDOW_UPDATE, 0, struct.pack("!II", stream_id, delta))

    # -- parsing -------------------------------------------------------------------------------------------------
    def feed(self, data: bytes) -> Iterator[Frame]:
        """Every whole frame in what arrived so far; a partial one waits for more bytes."""
        self._buffer += data
        while len(self._buffer) >= 8:
            first, second = struct.unpack_from("!II", self._buffer)
            length = second & 0xFFFFFF
            if len(self._buffer) < 8 + length:
                return
            payload = bytes(self._buffer[8:8 + length])
            del self._buffer[:8 + length]
            yield self._frame(first, second >> 24, payload)

    def _frame(self, first: int, flags: int, payload: bytes) -> Frame:
        if not first & 0x80000000:
            return Frame(0, first & 0x7FFFFFFF, flags, payload)
        version, ctype = (first >> 16) & 0x7FFF, first & 0xFFFF
        if version != VERSION:
            raise ProtocolError(f"SPDY version {version}, not 3")
        try:
            if ctype in (SYN_STREAM, SYN_REPLY, HEADERS):
                start = 10 if ctype == SYN_STREAM else 4
                sid = struct.unpack_from("!I", payload)[0] & 0x7FFFFFFF
                return Frame(ctype, sid, flags, headers=parse_header_block(self._inflate.decompress(payload[start:])))
            if ctype in (RST_STREAM, WINDOW_UPDATE):
                sid, value = struct.unpack_from("!II", payload)
                return Frame(ctype, sid & 0x7FFFFFFF, flags, value=value)
            if ctype == PING:
                return Frame(ctype, flags=flags, value=struct.unpack_from("!I", payload)[0])
            if ctype == GOAWAY:
                return Frame(ctype, flags=flags, value=struct.unpack_from("!I", payload)[0] & 0x7FFFFFFF)
        except (struct.error, zlib.error) as e:
            raise ProtocolError(f"a malformed control frame of type {ctype} ({e})") from None
        return Frame(ctype, flags=flags, data=payload)  # SETTINGS and unknown types: nothing we act on
