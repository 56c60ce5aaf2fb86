"""Exec over SPDY/3.1, the transport kubectl falls back to when the WebSocket upgrade is refused (client-go
`remotecommand.NewSPDYExecutor`, the kubelet's `cri/streaming/remotecommand/httpstream.go`).

1. `POST /api/v1/namespaces/NS/pods/POD/exec?command=...` with `Connection: Upgrade`, `Upgrade: SPDY/3.1` and
   `X-Stream-Protocol-Version: v4.channel.k8s.io`: authorized as `create` on pods/exec, in every release;
   the answer is `101 Switching Protocols` naming the protocol, or a refusal (a `Status` or the kubelet's text).
2. We open one stream per channel, a SYN_STREAM with `streamtype: error | stdout | stderr`; the server replies to
   each and starts the command once all are there.
3. stdout DATA frames go to `on_stdout` as they arrive; stderr is collected; each ends with FIN (or RST). The
   error stream carries the v4 `Status` JSON. The kubelet then resets the streams and sends GOAWAY.
The connection ending (EOF, no GOAWAY) before the error stream did means it was lost, whatever arrived is kept.
"""
from __future__ import annotations

import socket
import ssl
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence
from urllib.parse import urlsplit

from kubectl_whose.cluster import spdy
from kubectl_whose.cluster.exec_api import (POLL_SECONDS, SPDY, ExecResult, Heartbeat, UpgradeRefused,
                                            connection_lost, exec_path, handshake_error, not_finished, parse_status)

PROTOCOL = "v4.channel.k8s.io"
STREAMS = ("error", "stdout", "stderr")
_MAX_HEAD = 64 * 1024


def _read_head(sock, label: str):
    """The HTTP answer's status code, headers (lowercase names) and the bytes already read past them."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        try:
            chunk = sock.recv(65536)
        except (OSError, ssl.SSLError) as e:
            raise connection_lost(label, e) from None
        if not chunk:
            raise connection_lost(label, "the server closed the connection before answering the SPDY upgrade")
        buf += chunk
        if len(buf) > _MAX_HEAD:
            raise connection_lost(label, "the answer to the SPDY upgrade has no end of headers")
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(None, 2)
    code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return code, headers, rest


def _read_body(sock, headers: Dict[str, str], rest: bytes) -> bytes:
    """A refusal's body (a Status JSON or the kubelet's text), by Content-Length or until the server closes."""
    length = headers.get("content-length")
    want = int(length) if length and length.isdigit() else _MAX_HEAD
    body = rest
    sock.settimeout(2.0)
    try:
        while len(body) < want:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    except (OSError, ssl.SSLError):
        pass
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    return body[:want]


def _dechunk(data: bytes) -> bytes:
    out, pos = b"", 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return out
        size = int(data[pos:end].split(b";")[0] or b"0", 16)
        if size == 0:
            return out
        out += data[end + 2:end + 2 + size]
        pos = end + 2 + size + 2


def upgrade(cluster, namespace: str, pod: str, container: str, argv: Sequence[str], label: str):
    """Send the upgrade request; (socket, bytes read past the 101) or UpgradeRefused / a connection WhoseError."""
    from kubectl_whose.cluster.client import connection_error

    rest = cluster.rest
    path = exec_path(namespace, pod, container, argv)
    server = urlsplit(rest.t.server)
    try:
        started = time.monotonic()
        sock = rest.open_socket(cluster.timeout)
    except (OSError, ssl.SSLError) as e:
        raise connection_error(e) from None
    lines = [f"POST {server.path.rstrip('/')}{path} HTTP/1.1", f"Host: {server.netloc}",
             "User-Agent: kubectl-whose", "Connection: Upgrade", "Upgrade: SPDY/3.1",
             f"X-Stream-Protocol-Version: {PROTOCOL}", "Content-Length: 0"]
    auth = rest.authorization()
    if auth:
        lines.append(f"Authorization: {auth}")
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        code, headers, extra = _read_head(sock, label)
        if code != 101:
            body = _read_body(sock, headers, extra)
            sock.close()
            raise UpgradeRefused(handshake_error(code, body, namespace, pod, container, SPDY, "create"), code)
        cluster.log(6, f"POST {rest.t.server.rstrip('/')}{path} {code} in {(time.monotonic() - started) * 1000:.0f} "
                       f"milliseconds")
        cluster.log(1, f"exec {argv[0]} in {container}: SPDY/3.1, {PROTOCOL}")
    except UpgradeRefused:
        raise
    except BaseException:
        sock.close()
        raise
    chosen = headers.get("x-stream-protocol-version", "")
    if chosen != PROTOCOL:
        sock.close()
        raise UpgradeRefused(handshake_error(403, f"the server chose stream protocol {chosen or 'none'}".encode(),
                                             namespace, pod, container, SPDY, "create"), 403)
    return sock, extra


class _Exec:
    """One exec's streams over one SPDY connection, read on the caller's thread."""

    def __init__(self, sock, extra: bytes, on_stdout, on_stderr, label: str):
        self.sock, self.codec, self.label = sock, spdy.Codec(), label
        self.on_stdout, self.on_stderr = on_stdout, on_stderr
        self.ids: Dict[int, str] = {}
        self.ended = set()
        self.unacked: Dict[int, int] = {}
        self.stderr: List[bytes] = []
        self.status = bytearray()
        self.gone_away = False
        self.peer_counts_windows = False  # see _grant
        self.pending = extra
        self.beat = Heartbeat(label)
        self.next_ping_id = 1  # a client's pings are odd (SPDY/3.1 §2.6.5); the server echoes them
        for name in STREAMS:
            sid, frame = self.codec.syn_stream({"streamtype": name})
            self.ids[sid] = name
            self.sock.sendall(frame)

    @property
    def finished(self) -> bool:
        return "error" in self.ended and (self.gone_away or {"stdout", "stderr"} <= self.ended)

    def heartbeat(self) -> None:
        """Ping after a stretch of silence (`exec_api.Heartbeat`)."""
        if self.beat.ping_due():
            self._send_control(self.codec.ping(self.next_ping_id))
            self.next_ping_id += 2

    def pump(self) -> bool:
        """Handle what arrived within POLL_SECONDS; False when the connection has ended."""
        if self.pending:
            data, self.pending = self.pending, b""
        else:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return True
            except (ConnectionError, OSError, ssl.SSLError) as e:
                if self.finished:
                    return False
                raise connection_lost(self.label, e) from None
            if not data:
                return False
        self.beat.heard()
        try:
            for frame in self.codec.feed(data):
                self._handle(frame)
        except spdy.ProtocolError as e:
            raise connection_lost(self.label, f"the server broke the SPDY protocol: {e}") from None
        return True

    def _handle(self, frame: spdy.Frame) -> None:
        name = self.ids.get(frame.stream_id)
        if frame.type == 0 and name is not None:
            if frame.data:
                self._deliver(name, frame.data)
                self._grant(frame.stream_id, len(frame.data))
            if frame.fin:
                self.ended.add(name)
        elif frame.type == spdy.RST_STREAM and name is not None:
            self.ended.add(name)
        elif frame.type == spdy.PING and frame.value % 2 == 0:
            self._send_control(self.codec.ping(frame.value))  # the server's own ping (even): echo it
        # an odd PING is the answer to ours: hearing it is all it is for
        elif frame.type == spdy.GOAWAY:
            self.gone_away = True
        elif frame.type in (spdy.SETTINGS, spdy.WINDOW_UPDATE):
            self.peer_counts_windows = True
        elif frame.type == spdy.SYN_STREAM:  # servers open no streams in this protocol
            self._send_control(self.codec.rst_stream(frame.stream_id, 3))  # REFUSED_STREAM

    def _send_control(self, frame: bytes) -> None:
        """Best effort: after its last frames the server closes at once, and a late WINDOW_UPDATE or PING answer
        then meets a closed socket; whether the exec ended well is the read side's to tell."""
        try:
            self.sock.sendall(frame)
        except (OSError, ssl.SSLError):
            pass

    def _deliver(self, name: str, data: bytes) -> None:
        if name == "stdout":
            self.on_stdout(data)
        elif name == "stderr":
            self.stderr.append(data)
            if self.on_stderr is not None:
                self.on_stderr(data)
        else:
            self.status += data

    def _grant(self, stream_id: int, n: int) -> None:
        """Give the window back once half of it was used, for the stream and for the connection; but only to a peer
        that counts windows, which says so with SETTINGS or a WINDOW_UPDATE of its own. spdystream (the kubelet,
        the runtime's streaming server) does neither and closes the TCP connection right after its last frame:
        a WINDOW_UPDATE still in flight then sits unread in its socket, the close turns into a TCP reset, and
        the reset can drop the exit status from our receive queue. client-go sends none either."""
        if not self.peer_counts_windows:
            return
        for sid in (stream_id, 0):
            self.unacked[sid] = self.unacked.get(sid, 0) + n
            if self.unacked[sid] >= spdy.INITIAL_WINDOW // 2:
                self._send_control(self.codec.window_update(sid, self.unacked.pop(sid)))

    def close(self) -> None:
        try:
            self.sock.settimeout(0.2)
            self.sock.sendall(self.codec.goaway())
        except (OSError, ssl.SSLError):
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def run_exec(cluster, namespace: str, pod: str, container: str, argv: Sequence[str],
             on_stdout: Callable[[bytes], None], on_stderr: Optional[Callable[[bytes], None]] = None,
             stop: Optional[threading.Event] = None, timeout: Optional[float] = None,
             label: Optional[str] = None) -> ExecResult:
    """The same contract as `exec_websocket.run_exec`, over SPDY/3.1."""
    label = label or argv[0]
    sock, extra = upgrade(cluster, namespace, pod, container, argv, label)
    return exchange(sock, extra, on_stdout, on_stderr, stop, timeout, label)


def exchange(sock, extra: bytes, on_stdout: Callable[[bytes], None],
             on_stderr: Optional[Callable[[bytes], None]] = None, stop: Optional[threading.Event] = None,
             timeout: Optional[float] = None, label: str = "the command") -> ExecResult:
    """Open the streams on an upgraded connection (`extra`: bytes already read past the 101) and run the exec to
    its end; the socket is closed afterwards."""
    deadline = time.monotonic() + timeout if timeout else None
    session = None
    try:
        sock.settimeout(POLL_SECONDS)
        session = _Exec(sock, extra, on_stdout, on_stderr, label)
        while not session.finished:
            if stop is not None and stop.is_set():
                return ExecResult(b"", b"".join(session.stderr), -1, "stopped before the command ended", PROTOCOL,
                                  True, SPDY)
            if deadline is not None and time.monotonic() > deadline:
                raise not_finished(label, timeout)
            session.heartbeat()
            if not session.pump():
                if session.finished:
                    break
                raise connection_lost(label, "the server closed the connection before the command ended")
        if not session.status:  # v4 always writes a Status, Success included (client-go would call this success)
            raise connection_lost(label, "the server ended the exec without its exit status")
        code, error = parse_status(bytes(session.status))
        return ExecResult(b"", b"".join(session.stderr), code, error, PROTOCOL, transport=SPDY)
    except (OSError, ssl.SSLError) as e:  # a send failed: the connection is gone
        raise connection_lost(label, e) from None
    finally:
        if session is not None:
            session.close()
        else:
            sock.close()
