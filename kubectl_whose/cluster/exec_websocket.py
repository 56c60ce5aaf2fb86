"""Exec over the Kubernetes WebSocket channel protocols, binary-safe and incremental.

Why not `kubernetes.stream.stream()`: it builds `WSClient(capture_all=True)`, which keeps every stdout byte in a
`BytesIO` for the whole session (a 10-minute capture would sit in memory twice), and its `returncode` raises on
an `InternalError` status or a missing channel 3. So we speak the protocol ourselves with websocket-client:
- offer `v5.channel.k8s.io,v4.channel.k8s.io` in one handshake: v5 is served by the API server's stream
  translator (1.30+); an older server proxies the upgrade to the kubelet, which answers v4 (offering only v5, as
  kubectl does, gets a 403 there: kr8s#270);
- the HTTP GET is authorized as `get` on pods/exec, and from 1.35 also as `create` (`server_version`);
- every binary message is one channel byte + payload: 1 stdout (handed to `on_stdout` as it arrives, never
  buffered here), 2 stderr (collected), 3 the final `Status` JSON (`exec_api.parse_status`);
- the socket closing before channel 3 means the connection was lost: we say so and keep what arrived.
"""
from __future__ import annotations

import ssl
import threading
import time
from typing import Callable, List, Optional, Sequence

from kubectl_whose.cluster.exec_api import (POLL_SECONDS, WEBSOCKET, ExecResult, Heartbeat, UpgradeRefused,
                                            connection_lost, exec_path, handshake_error, not_finished, parse_status)

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDOUT, STDERR, STATUS = 1, 2, 3


def connect(cluster, namespace: str, pod: str, container: str, argv: Sequence[str]):
    """Open the exec WebSocket; a refused upgrade raises UpgradeRefused, a network failure a WhoseError."""
    import websocket

    rest = cluster.rest
    url = rest.websocket_url(exec_path(namespace, pod, container, argv))
    headers = []
    auth = rest.authorization()
    if auth:
        headers.append(f"authorization: {auth}")
    ws = websocket.WebSocket(sslopt=rest.websocket_sslopt(), skip_utf8_validation=True)
    started = time.monotonic()
    try:
        ws.connect(url, header=headers, subprotocols=list(PROTOCOLS), timeout=cluster.timeout,
                   **rest.websocket_proxy())
        cluster.log(6, f"GET {url} {ws.getstatus()} in {(time.monotonic() - started) * 1000:.0f} milliseconds")
        cluster.log(1, f"exec {argv[0]} in {container}: WebSocket, {ws.getsubprotocol() or 'no subprotocol'}")
    except websocket.WebSocketBadStatusException as e:
        raise UpgradeRefused(handshake_error(e.status_code, e.resp_body, namespace, pod, container, WEBSOCKET, "get"),
                             e.status_code) from None
    except (OSError, websocket.WebSocketException) as e:
        from kubectl_whose.cluster.client import connection_error

        raise connection_error(e) from None
    return ws


def run_exec(cluster, namespace: str, pod: str, container: str, argv: Sequence[str],
             on_stdout: Callable[[bytes], None], on_stderr: Optional[Callable[[bytes], None]] = None,
             stop: Optional[threading.Event] = None, timeout: Optional[float] = None,
             label: Optional[str] = None) -> ExecResult:
    """Run `argv` in `container`; stdout chunks go to `on_stdout` as they arrive. Returns when the command ends,
    when `stop` is set (result `stopped=True`), or raises TIMEOUT / CONNECTION_LOST (chunks so far were delivered).
    `label` names the command in messages (default argv[0])."""
    import websocket

    label = label or argv[0]

    ws = connect(cluster, namespace, pod, container, argv)
    protocol = ws.getsubprotocol() or ""
    stderr: List[bytes] = []
    deadline = time.monotonic() + timeout if timeout else None
    ws.settimeout(POLL_SECONDS)
    beat = Heartbeat(label)
    try:
        while True:
            if stop is not None and stop.is_set():
                return ExecResult(b"", b"".join(stderr), -1, "stopped before the command ended", protocol, True,
                                  WEBSOCKET)
            if deadline is not None and time.monotonic() > deadline:
                raise not_finished(label, timeout)
            if beat.ping_due():
                try:
                    ws.ping()
                except websocket.WebSocketTimeoutException:
                    pass  # the send buffer is full: the silence limit decides
                except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError, ssl.SSLError) as e:
                    raise connection_lost(label, e) from None
            try:
                opcode, data = ws.recv_data(control_frame=True)
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError, ssl.SSLError) as e:
                raise connection_lost(label, e) from None
            beat.heard()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                raise connection_lost(label, "the server closed the stream before the command ended")
            if opcode in (websocket.ABNF.OPCODE_PING, websocket.ABNF.OPCODE_PONG) or not data:
                continue
            if opcode == websocket.ABNF.OPCODE_TEXT:  # base64 protocols are never offered; ignore
                continue
            channel, payload = data[0], data[1:]
            if channel == STDOUT:
                if payload:
                    on_stdout(payload)
            elif channel == STDERR:
                if payload:
                    stderr.append(payload)
                    if on_stderr is not None:
                        on_stderr(payload)
            elif channel == STATUS:
                code, error = parse_status(payload)
                return ExecResult(b"", b"".join(stderr), code, error, protocol, transport=WEBSOCKET)
    finally:
        try:
            ws.close(timeout=0.2)
        except Exception:  # noqa: BLE001 - closing a dead socket may fail in many ways; nothing to do
            pass
