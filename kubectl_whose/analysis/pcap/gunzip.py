"""Captures compressed with gzip (`capture.pcap.gz`, `.pcapng.gz`), read as tshark reads them.

Wireshark's tools open gzip-compressed captures transparently, and people keep and share captures
that way. The input is recognised by its magic bytes, not its name (it may be a pipe), and inflated
chunk by chunk with an output bound, so memory stays flat and a small file that inflates to gigabytes
(a "zip bomb") is only ever held a few MiB at a time. Several gzip members in a row (`cat a.gz b.gz`)
are read as one stream, as gzip itself does. A cut or corrupt gzip stream ends the capture there,
like a cut capture: the frames before it are kept and a warning says what happened.
"""
from __future__ import annotations

import itertools
import zlib
from typing import Callable, Iterator

from kubectl_whose.errors import ExitCode, WhoseError

GZIP_MAGIC = b"\x1f\x8b"
MAX_PIECE = 4 << 20  # bytes of inflated output handed on at a time


Warn = Callable[[str, bool], None]  # (message, whether the capture was cut short)


def gunzip_if_compressed(chunks: Iterator[bytes], warn: Warn, name: str = "input") -> Iterator[bytes]:
    """The capture bytes of `chunks`: as they are, or inflated when they start with gzip's magic."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= len(GZIP_MAGIC):
            break
    if not head.startswith(GZIP_MAGIC):
        if head:
            yield head
        yield from chunks
        return
    yield from _inflate(head, chunks, warn, name)


def _inflate(head: bytes, chunks: Iterator[bytes], warn: Warn, name: str) -> Iterator[bytes]:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    inflated = 0
    member = 1
    for data in itertools.chain([head], chunks):
        while data:
            if d.eof:  # a member ended: another may follow (cat a.gz b.gz), or zero padding
                if not data.strip(b"\x00"):
                    break
                if not data.startswith(GZIP_MAGIC[:len(data)]):
                    warn(f"{len(data)} bytes after the end of the gzip data were ignored", False)
                    return
                d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                member += 1
            try:
                out = d.decompress(data, MAX_PIECE)
            except zlib.error as e:
                if not inflated:
                    raise WhoseError(f"{name} is gzip-compressed but its data is corrupt ({e})",
                                     ExitCode.BAD_INPUT) from None
                warn(_why(member, inflated, f"the gzip data is corrupt ({e})"), True)
                return
            inflated += len(out)
            if out:
                yield out
            data = d.unused_data if d.eof else d.unconsumed_tail
    if not d.eof:
        tail = d.flush()
        if tail:
            yield tail
        warn(_why(member, inflated + len(tail), "the gzip stream ends early (the file was cut)"), True)


def _why(member: int, inflated: int, what: str) -> str:
    where = f" in gzip member {member}" if member > 1 else ""
    return f"{what}{where} after {inflated} inflated bytes; kept the frames before it"
