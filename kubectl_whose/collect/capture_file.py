"""A `-w` file that stays readable when the disk fills.

Written unbuffered, so the bytes that reached the file are known exactly. When it can take no more (disk full,
quota, an I/O error), it is cut back to the last whole packet (`analysis.pcap.reader.whole_prefix`), `error` says
what it holds, and later writes are dropped; the caller stops the capture and still summarises what arrived. A failure
while closing is reported only when nothing failed before it.

The edge is found only then, by reading the file back: walking every record as it is written cost the live
path a factor of five (`bench/bench_capture.py --no-lab`), for a failure that is rare.
"""
from __future__ import annotations

import os
from typing import Optional

from kubectl_whose.analysis.pcap.reader import whole_prefix
from kubectl_whose.errors import ExitCode, WhoseError


class CaptureFile:
    def __init__(self, path: str):
        self.path = path
        self.written = 0  # bytes the file holds
        self.error: Optional[WhoseError] = None
        try:
            self.fd: Optional[int] = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        except OSError as e:
            raise WhoseError(f"cannot write {path} ({e.strerror}); pick another -w path", ExitCode.BAD_INPUT) from None

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view and self.error is None and self.fd is not None:
            try:
                n = os.write(self.fd, view)
            except InterruptedError:
                continue
            except OSError as e:
                self._failed(e)
                return
            self.written += n
            view = view[n:]

    def _written_blocks(self):
        """The bytes that reached the file, read back (an unreadable file ends the blocks early)."""
        left = self.written
        try:
            with open(self.path, "rb") as f:
                while left > 0:
                    block = f.read(min(1 << 20, left))
                    if not block:
                        return
                    left -= len(block)
                    yield block
        except OSError:
            return

    def _failed(self, e: OSError) -> None:
        edge, packets = whole_prefix(self._written_blocks())
        try:
            os.ftruncate(self.fd, edge)
            self.written = edge
            kept = (f"cut back to its last whole packet (packet {packets}, ending at byte {edge})" if packets else
                    "cut back to its file header: it holds no whole packet")
        except OSError as again:
            kept = f"cut mid-packet: it could not be cut back to byte {edge} ({again.strerror})"
        self.error = WhoseError(f"writing {self.path} failed ({e.strerror}); the file is {kept}, and the capture "
                                f"was stopped; free space (or pick another -w path) and capture again",
                                ExitCode.WRITE_FAILED)

    def close(self) -> None:
        if self.fd is None:
            return
        try:
            os.close(self.fd)
        except OSError as e:
            if self.error is None:
                self.error = WhoseError(f"closing {self.path} failed ({e.strerror}); its last bytes may not be on "
                                        f"disk; check the disk and capture again", ExitCode.WRITE_FAILED)
        self.fd = None
