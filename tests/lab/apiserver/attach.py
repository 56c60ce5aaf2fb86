"""A container's stdio for `pods/attach` (what `kubectl debug -i/-it` uses): the runtime keeps the container's
stdin open and copies its output both to the log and to every attached client.

With `tty: true` the container runs on a pseudo-terminal (stdout and stderr are one stream, as under a real
runtime); otherwise stdin, stdout and stderr are pipes. `stdinOnce` closes stdin when the first attach ends.
"""
from __future__ import annotations

import fcntl
import os
import struct
import termios
import threading
import time
from pathlib import Path
from typing import Callable, List, Optional

Listener = Callable[[int, Optional[bytes]], None]  # (channel, data) — data None = the output ended


class ContainerIO:
    def __init__(self, log: Optional[Path], tty: bool, stdin_once: bool, stdin: bool = True):
        """`stdin` False: a container without stdin (its stdin is /dev/null); its output is still attachable, as
        the runtime's attach streams any container's stdout and stderr."""
        self.log, self.tty, self.stdin_once = log, tty, stdin_once
        self.has_stdin = stdin or tty
        self._lock = threading.Lock()
        self._listeners: List[Listener] = []
        self.ended = threading.Event()
        self.stamps: List[tuple] = []  # (log offset, epoch seconds) of each chunk written: what --timestamps reads
        self._log_size = log.stat().st_size if log is not None and log.exists() else 0
        if tty:
            self.master, slave = os.openpty()
            self.child_fds = (slave, slave, slave)
            self.stdin_w: Optional[int] = self.master
            self._outputs = [(1, self.master)]
        elif not stdin:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            self.child_fds = (os.open(os.devnull, os.O_RDONLY), out_w, err_w)
            self.stdin_w = None
            self._outputs = [(1, out_r), (2, err_r)]
        else:
            in_r, self.stdin_w = os.pipe()
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            self.child_fds = (in_r, out_w, err_w)
            self._outputs = [(1, out_r), (2, err_r)]

    def started(self) -> None:
        """After the child has its copies: close ours and start copying output."""
        for fd in set(self.child_fds):
            os.close(fd)
        self._open_outputs = len(self._outputs)
        for channel, fd in self._outputs:
            threading.Thread(target=self._pump, args=(channel, fd), daemon=True).start()

    def _pump(self, channel: int, fd: int) -> None:
        with open(self.log or os.devnull, "ab", buffering=0) as logf:
            while True:
                try:
                    data = os.read(fd, 32 * 1024)
                except OSError:  # EIO: the pty's last writer is gone
                    data = b""
                if not data:
                    break
                with self._lock:  # both pumps append to one log: its offsets and their times in one order
                    logf.write(data)
                    self.stamps.append((self._log_size, time.time()))
                    self._log_size += len(data)
                    listeners = list(self._listeners)
                for fn in listeners:
                    fn(channel, data)
        with self._lock:
            self._open_outputs -= 1
            done = self._open_outputs == 0
            listeners = list(self._listeners)
        if done:
            if self.tty:
                with self._lock:
                    self.stdin_w = None
                os.close(self.master)
            self.ended.set()
            for fn in listeners:
                fn(1, None)

    def subscribe(self, fn: Listener) -> None:
        with self._lock:
            self._listeners.append(fn)

    def unsubscribe(self, fn: Listener) -> None:
        with self._lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    def write_stdin(self, data: bytes) -> None:
        if self.stdin_w is not None:
            try:
                os.write(self.stdin_w, data)
            except OSError:
                pass

    def close_stdin(self) -> None:
        """EOF for the container (a tty gets ^D, as a terminal's EOF)."""
        if self.tty:
            self.write_stdin(b"\x04")
            return
        with self._lock:
            fd, self.stdin_w = self.stdin_w, None
        if fd is not None:
            os.close(fd)

    def resize(self, width: int, height: int) -> None:
        if self.tty:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
