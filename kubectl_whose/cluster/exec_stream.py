"""Exec over the Kubernetes WebSocket protocol, binary-safe and incremental.

Why not `kubernetes.stream.stream()`: it builds `WSClient(capture_all=True)`, which keeps every stdout byte in a
`BytesIO` for the whole session (a 10-minute capture would sit in memory twice), and its `returncode` raises on
an `InternalError` status or a missing channel 3. So we speak the protocol ourselves with websocket-client:
- offer `v5.channel.k8s.io,v4.channel.k8s.io` (v5 is only served by the API server's translator, 1.30+; a v4
  server answers v4; offering only v5 gets a 403 from older servers, kr8s#270);
- every binary message is one channel byte + payload: 1 stdout (handed to `on_stdout` as it arrives, never
  buffered here), 2 stderr (collected), 3 the final `Status` JSON, parsed here: the exit code is
  `details.causes[reason=ExitCode].message`, an `InternalError` carries the runtime's text (e.g. a missing binary);
- the socket closing before channel 3 means the connection was lost: we say so and keep what arrived.
Closing the WebSocket does NOT stop the remote process (kubernetes#89031); stopping is the caller's job
(see `collect.tcpdump`).
"""
from __future__ import annotations

import json
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence
from urllib.parse import quote, urlencode

from kubectl_whose.errors import ExitCode, WhoseError

PROTOCOLS = "v5.channel.k8s.io,v4.channel.k8s.io"
STDOUT, STDERR, STATUS = 1, 2, 3
POLL_SECONDS = 0.1  # how often a blocked read looks at `stop`
MISSING_BINARY_EXIT = 127


@dataclass
class ExecResult:
    """How a command in the debug container ended. `stdout` is empty for `stream()` (chunks went to the callback).

    `error` holds the runtime's or the server's words when the command could not run or did not end normally
    (missing binary, container gone, stopped by the caller), else None.
    """

    stdout: bytes
    stderr: bytes
    exit_code: int
    error: Optional[str] = None
    protocol: str = ""
    stopped: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.error is None


def parse_status(payload: bytes):
    """Channel-3 `Status` -> (exit_code, error text or None)."""
    try:
        status = json.loads(payload.decode("utf-8", "replace"))
    except ValueError:
        text = payload.decode("utf-8", "replace").strip()
        return (0, None) if not text else (1, text)
    if status.get("status") == "Success":
        return 0, None
    message = str(status.get("message") or "")
    causes = ((status.get("details") or {}).get("causes")) or []
    for cause in causes:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message")), None
            except (TypeError, ValueError):
                break
    if "executable file not found" in message or "no such file or directory" in message:
        return MISSING_BINARY_EXIT, message
    return 1, message or "command failed without a message"


def exec_path(namespace: str, pod: str, container: str, argv: Sequence[str]) -> str:
    """One `command` query parameter per argv element: never shell-split, never joined."""
    query = [("command", a) for a in argv] + [("container", container), ("stdout", "true"), ("stderr", "true")]
    return f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(pod)}/exec?{urlencode(query)}"


def connect(cluster, namespace: str, pod: str, container: str, argv: Sequence[str]):
    """Open the exec WebSocket; handshake failures become WhoseErrors with the server's words."""
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
        ws.connect(url, header=headers, subprotocols=PROTOCOLS.split(","), timeout=cluster.timeout,
                   **rest.websocket_proxy())
        cluster.log(6, f"GET {url} {ws.getstatus()} in {(time.monotonic() - started) * 1000:.0f} milliseconds")
        cluster.log(1, f"exec {argv[0]} in {container}: WebSocket, {ws.getsubprotocol() or 'no subprotocol'}")
    except websocket.WebSocketBadStatusException as e:
        raise handshake_error(e.status_code, e.resp_body, namespace, pod, container) from None
    except (OSError, websocket.WebSocketException) as e:
        from kubectl_whose.cluster.client import connection_error

        raise connection_error(e) from None
    return ws


def handshake_error(code: int, body, namespace: str, pod: str, container: str) -> WhoseError:
    from kubectl_whose.cluster.client import parse_status as parse_api_status, rbac_error

    status = parse_api_status(code, body or b"")
    words = f"(server: {status.message})" if status.message else f"(server: HTTP {code})"
    if code == 403 and status.message:
        return rbac_error(status, namespace, "exec", "create", words)
    if code == 403:
        return WhoseError(f"the API server refused the exec WebSocket: it speaks neither v5.channel.k8s.io nor "
                          f"v4.channel.k8s.io {words}", ExitCode.UNSUPPORTED_SERVER)
    if code == 404:
        return WhoseError(f'pod "{pod}" not found in namespace "{namespace}" {words}', ExitCode.NOT_FOUND)
    if "not valid for pod" in status.message:
        return WhoseError(f'container "{container}" not found in pod "{pod}" {words}', ExitCode.NOT_FOUND)
    if "container not found" in status.message or "does not have a host" in status.message:
        return WhoseError(f'debug container {container} in pod "{pod}" is not running {words}',
                          ExitCode.POD_NOT_RUNNING)
    return WhoseError(f"exec in the debug container failed {words}", ExitCode.ERROR)


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
    try:
        while True:
            if stop is not None and stop.is_set():
                return ExecResult(b"", b"".join(stderr), -1, "stopped before the command ended", protocol, True)
            if deadline is not None and time.monotonic() > deadline:
                raise WhoseError(f"{label} did not finish within {timeout:g} s in the debug container",
                                 ExitCode.TIMEOUT)
            try:
                opcode, data = ws.recv_data()
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError, ssl.SSLError) as e:
                raise _lost(label, e) from None
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                raise _lost(label, "the server closed the stream before the command ended")
            if not data:
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
                return ExecResult(b"", b"".join(stderr), code, error, protocol)
    finally:
        try:
            ws.close(timeout=0.2)
        except Exception:  # noqa: BLE001 - closing a dead socket may fail in many ways; nothing to do
            pass


def _lost(label: str, cause) -> WhoseError:
    return WhoseError(f"the API connection was lost while {label} ran in the debug container ({cause})",
                      ExitCode.CONNECTION_LOST)
