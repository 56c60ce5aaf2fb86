"""What every exec transport shares: the request (`exec_path`), the result (`ExecResult`), the final `Status`
(`parse_status`), and the words for a refused upgrade (`handshake_error`, raised as `UpgradeRefused`).

The transports are `exec_websocket` (WebSocket, `v5.channel.k8s.io` or `v4.channel.k8s.io`) and `exec_spdy`
(SPDY/3.1 with `v4.channel.k8s.io`); `exec_transport` picks one per server release and permissions, as kubectl
does. On both, stdout is handed over chunk by chunk as it arrives, stderr is collected, and the v4/v5 error
channel carries one `Status` JSON: the exit code is `details.causes[reason=ExitCode].message`, an
`InternalError` carries the runtime's text (e.g. a missing binary). Closing the connection does NOT stop the
remote process (kubernetes#89031); stopping is the caller's job (see `collect.tcpdump`).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Optional, Sequence
from urllib.parse import quote, urlencode

from kubectl_whose.errors import ExitCode, WhoseError

POLL_SECONDS = 0.1  # how often a blocked read looks at `stop` and the deadline
# A quiet interface sends nothing, so silence alone proves nothing: a ping does. client-go pings every 5 s; a
# server that answers neither data nor a ping for SILENCE_LIMIT has stopped answering without closing.
PING_PERIOD = 5.0
SILENCE_LIMIT = 15.0
MISSING_BINARY_EXIT = 127
WEBSOCKET, SPDY = "WebSocket", "SPDY/3.1"


@dataclass
class ExecResult:
    """How a command in the debug container ended. `stdout` is empty for `stream()` (chunks went to the callback).

    `error` holds the runtime's or the server's words when the command could not run or did not end normally
    (missing binary, container gone, stopped by the caller), else None. `transport` is WEBSOCKET or SPDY,
    `protocol` the channel protocol spoken over it (`v5.channel.k8s.io`, `v4.channel.k8s.io`).
    """

    stdout: bytes
    stderr: bytes
    exit_code: int
    error: Optional[str] = None
    protocol: str = ""
    stopped: bool = False
    transport: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.error is None


class UpgradeRefused(Exception):
    """The server answered the upgrade with something other than 101: kubectl's cue to try the next transport
    (client-go `httpstream.IsUpgradeFailure`). `error` is the user-facing translation of that answer."""

    def __init__(self, error: WhoseError, status: int):
        super().__init__(error.message)
        self.error, self.status = error, status


def parse_status(payload: bytes):
    """The error channel's `Status` -> (exit_code, error text or None)."""
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


def handshake_error(code: int, body, namespace: str, pod: str, container: str, transport: str,
                    verb: str) -> WhoseError:
    """A non-101 answer to the upgrade in one sentence; `verb` is what the transport's request is authorized as."""
    from kubectl_whose.cluster.client import parse_status as parse_api_status, rbac_error

    status = parse_api_status(code, body or b"")
    words = f"(server: {status.message})" if status.message else f"(server: HTTP {code})"
    if code == 403 and status.message:
        return rbac_error(status, namespace, "exec", verb, words)
    if code == 403:
        what = ("neither v5.channel.k8s.io nor v4.channel.k8s.io" if transport == WEBSOCKET
                else "no stream protocol we speak (v4.channel.k8s.io)")
        return WhoseError(f"the API server refused the exec {transport} upgrade: it speaks {what} {words}",
                          ExitCode.UNSUPPORTED_SERVER)
    if code == 404:
        return WhoseError(f'pod "{pod}" not found in namespace "{namespace}" {words}', ExitCode.NOT_FOUND)
    if "not valid for pod" in status.message:
        return WhoseError(f'container "{container}" not found in pod "{pod}" {words}', ExitCode.NOT_FOUND)
    if "container not found" in status.message or "does not have a host" in status.message:
        return WhoseError(f'debug container {container} in pod "{pod}" is not running {words}',
                          ExitCode.POD_NOT_RUNNING)
    return WhoseError(f"exec in the debug container failed {words}", ExitCode.ERROR)


def connection_lost(label: str, cause) -> WhoseError:
    return WhoseError(f"the API connection was lost while {label} ran in the debug container ({cause})",
                      ExitCode.CONNECTION_LOST)


class Heartbeat:
    """The silence rule both transports follow: `heard()` on every frame received; `ping_due()` says when to send
    a ping (PING_PERIOD without a frame or a ping); past SILENCE_LIMIT without any frame, it raises."""

    def __init__(self, label: str):
        self.label = label
        self.heard_at = self.pinged_at = time.monotonic()

    def heard(self) -> None:
        self.heard_at = time.monotonic()

    def ping_due(self) -> bool:
        now = time.monotonic()
        if now - self.heard_at > SILENCE_LIMIT:
            raise went_silent(self.label, SILENCE_LIMIT)
        if now - max(self.heard_at, self.pinged_at) < PING_PERIOD:
            return False
        self.pinged_at = now
        return True


def went_silent(label: str, seconds: float) -> WhoseError:
    return WhoseError(f"the API server sent nothing for {seconds:g} s, not even an answer to a ping, while {label} ran "
                      f"in the debug container; it stopped answering without closing the connection; check it "
                      f"(kubectl get --raw /readyz) and run again", ExitCode.CONNECTION_LOST)


def not_finished(label: str, timeout: float) -> WhoseError:
    return WhoseError(f"{label} did not finish within {timeout:g} s in the debug container", ExitCode.TIMEOUT)
