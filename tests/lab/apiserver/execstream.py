"""`pods/{name}/exec` and `attach`: one session that runs the process and pumps its stdio over a channel transport,
the WebSocket channel protocols of the API server (v5) and the kubelet (v4, v4.base64) here, SPDY/3.1 streams in
`spdystreams.py`.

WebSocket: after the 101 the server sends an empty message on the lowest writable channel, then stdout/stderr as
the process produces them (≤ 32 KiB per message), then exactly one channel-3 Status, then a close frame. Closing
the connection (either transport) does NOT kill the process: the lab only closes its end of the pipes, so the
process dies of SIGPIPE on its next write — or lives on, as on a real cluster (k8s #89031).
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import threading
from typing import Optional

from ..runtime import exit_code, find_executable
from .websocket import OP_TEXT, Closed, WebSocket

V5, V4, V4_B64 = "v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io"
V1 = "channel.k8s.io"  # and "", no subprotocol: the error channel carries only a failure's text, no Status
CHUNK = 32 * 1024
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


def status_success() -> dict:
    return {"metadata": {}, "status": "Success"}


def status_exit(code: int) -> dict:
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: command terminated with exit code {code}",
            "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def status_internal(text: str) -> dict:
    return {"metadata": {}, "status": "Failure", "message": f"Internal error occurred: {text}",
            "reason": "InternalError", "details": {"causes": [{"message": text}]}, "code": 500}


def not_found_in_path(argv0: str, exec_id: str) -> str:
    return (f'error executing command in container: failed to exec in container: failed to start exec "{exec_id}": '
            "OCI runtime exec failed: exec failed: unable to start container process: "
            f'exec: "{argv0}": executable file not found in $PATH: unknown')


class WebSocketChannels:
    """Channel byte + payload per binary message (text + base64 for v4.base64)."""

    def __init__(self, ws: WebSocket, protocol: str):
        self.ws, self.protocol = ws, protocol
        self.half_close = protocol == V5  # only v5 has the CLOSE signal (255, channel)

    @property
    def closing(self) -> bool:
        return self.ws.close_sent

    def open(self, want: dict) -> None:
        first = next((ch for ch in (STDOUT, STDERR) if want[ch]), ERROR)
        self.send(first, b"")

    def send(self, channel: int, payload: bytes) -> None:
        if self.protocol == V4_B64:
            self.ws.send(OP_TEXT, str(channel).encode() + base64.b64encode(payload))
        else:
            self.ws.send_binary(bytes([channel]) + payload)

    def end_output(self, channel: int) -> None:
        """Nothing: a WebSocket channel is not closed on its own."""

    def finish(self, status: dict) -> None:
        try:
            if self.protocol in (V1, ""):
                if status.get("status") != "Success":
                    self.send(ERROR, str(status.get("message") or "").encode())
            else:
                self.send(ERROR, json.dumps(status, separators=(",", ":")).encode())
            self.ws.close(1000)
        except Closed:
            pass

    def abort(self) -> None:
        self.ws.abort()

    def receive(self):
        while True:
            op, msg = self.ws.receive()
            if self.protocol == V4_B64 and op == OP_TEXT and msg:
                msg = bytes([msg[0] - 48]) + base64.b64decode(msg[1:])
            if msg:
                return msg[0], msg[1:]


class ExecSession:
    """`channels`: WebSocketChannels or spdystreams.SpdyChannels (send/receive/end_output/finish/abort)."""

    def __init__(self, channels, stdin: bool, stdout: bool, stderr: bool, drop_after: int = 0):
        self.channels = channels
        # Fault injection (lab switch): cut the TCP connection after this many output bytes — no status, no
        # close frame — as a dying API server or a broken network does.
        self.drop_after, self.sent = drop_after, 0
        self.want = {STDIN: stdin, STDOUT: stdout, STDERR: stderr}
        self.client_gone = threading.Event()

    def frame(self, channel: int, payload: bytes) -> None:
        if self.client_gone.is_set():
            raise Closed()
        if self.drop_after and channel in (STDOUT, STDERR) and self.sent + len(payload) > self.drop_after:
            head = payload[: self.drop_after - self.sent]
            if head:
                self.channels.send(channel, head)
            self.client_gone.set()
            self.channels.abort()
            raise Closed()
        self.sent += len(payload)
        self.channels.send(channel, payload)

    def open(self) -> None:
        self.channels.open(self.want)

    def finish(self, status: dict) -> None:
        if self.client_gone.is_set():
            return
        self.channels.finish(status)

    def run(self, sandbox, main_pid: int, identity, env: dict, argv, tty: bool = False) -> None:
        """Run argv in the container and pump the channels until it ends (or the client leaves)."""
        path = env.get("PATH", "")
        if not argv or find_executable(argv[0], path) is None:
            exec_id = hashlib.sha256(os.urandom(16)).hexdigest()
            self.finish(status_internal(not_found_in_path(argv[0] if argv else "", exec_id)))
            return
        if tty:
            self._run_tty(sandbox, main_pid, identity, dict(env, TERM="xterm"), argv)
            return
        proc = sandbox.exec(main_pid, identity, list(argv), env,
                             stdin=subprocess.PIPE if self.want[STDIN] else subprocess.DEVNULL,
                             stdout=subprocess.PIPE if self.want[STDOUT] else subprocess.DEVNULL,
                             stderr=subprocess.PIPE if self.want[STDERR] else subprocess.DEVNULL)
        pumps = []
        for ch, pipe in ((STDOUT, proc.stdout), (STDERR, proc.stderr)):
            if pipe is not None:
                t = threading.Thread(target=self._pump, args=(ch, pipe), daemon=True)
                t.start()
                pumps.append(t)
        reader = threading.Thread(target=self._read_client, args=(proc,), daemon=True)
        reader.start()
        for t in pumps:
            t.join()
        if self.client_gone.is_set():
            # The process keeps running until SIGPIPE or its own exit; reap it without holding the session.
            threading.Thread(target=proc.wait, daemon=True).start()
            return
        rc = exit_code(proc.wait())
        if proc.stdin:
            try:
                proc.stdin.close()
            except OSError:
                pass
        self.finish(status_success() if rc == 0 else status_exit(rc))

    def _run_tty(self, sandbox, main_pid: int, identity, env: dict, argv) -> None:
        """`exec -t`: the process runs on a pseudo-terminal; stderr is the terminal too (no channel 2)."""
        from .attach import ContainerIO
        io = ContainerIO(None, tty=True, stdin_once=False)
        proc = sandbox.exec(main_pid, identity, list(argv), env, *io.child_fds, tty=True)
        io.started()
        try:
            self.attach(io, tty=True)
        except Closed:
            threading.Thread(target=proc.wait, daemon=True).start()
            return
        rc = exit_code(proc.wait())
        self.finish(status_success() if rc == 0 else status_exit(rc))

    def attach(self, io, tty: bool) -> None:
        """Pump a container's stdio (attach) until its output ends or the client leaves."""
        done = threading.Event()

        def on_output(channel: int, data):
            if data is None:
                done.set()
                return
            if not self.want.get(channel if not tty else STDOUT):
                return
            try:
                self.frame(channel, data)
            except Closed:
                self.client_gone.set()
                done.set()

        io.subscribe(on_output)
        reader = threading.Thread(target=self._read_attach, args=(io, done), daemon=True)
        reader.start()
        try:
            while not done.wait(0.2):
                if io.ended.is_set():
                    break
        finally:
            io.unsubscribe(on_output)
        if self.client_gone.is_set():
            raise Closed()

    def _read_attach(self, io, done: threading.Event) -> None:
        try:
            while True:
                ch, payload = self.channels.receive()
                if ch == STDIN and self.want[STDIN]:
                    io.write_stdin(payload)
                elif ch == RESIZE:
                    try:
                        size = json.loads(payload)
                        io.resize(int(size.get("Width", 80)), int(size.get("Height", 24)))
                    except (ValueError, OSError, AttributeError):
                        pass
                elif ch == CLOSE and self.channels.half_close and payload[:1] == bytes([STDIN]) and io.stdin_once:
                    io.close_stdin()
        except Closed:
            if not self.channels.closing:
                self.client_gone.set()
                if io.stdin_once:
                    io.close_stdin()
                done.set()

    def _pump(self, channel: int, pipe) -> None:
        fd = pipe.fileno()
        try:
            while True:
                data = os.read(fd, CHUNK)
                if not data:
                    self.channels.end_output(channel)
                    return
                try:
                    self.frame(channel, data)
                except Closed:
                    self.client_gone.set()
                    return
        finally:
            pipe.close()  # on client loss: the process's next write gets SIGPIPE

    def _read_client(self, proc: subprocess.Popen) -> None:
        try:
            while True:
                ch, payload = self.channels.receive()
                if ch == STDIN and proc.stdin:
                    try:
                        proc.stdin.write(payload)
                        proc.stdin.flush()
                    except (BrokenPipeError, ValueError, OSError):
                        pass
                elif ch == CLOSE and self.channels.half_close and payload[:1] == bytes([STDIN]) and proc.stdin:
                    try:
                        proc.stdin.close()
                    except OSError:
                        pass
        except Closed:
            if not self.channels.closing:
                # The pumps notice on the process's next write and close their pipe ends then (SIGPIPE after).
                self.client_gone.set()
                if proc.stdin:
                    try:
                        proc.stdin.close()
                    except OSError:
                        pass


def validate_exec(pod: dict, container: Optional[str]) -> str:
    """The container name to exec in, or raise the 400 of a real server."""
    from .status import bad_request
    name = pod["metadata"]["name"]
    spec = pod["spec"]
    regular = [c["name"] for c in spec.get("containers") or []]
    init = [c["name"] for c in spec.get("initContainers") or []]
    eph = [c["name"] for c in spec.get("ephemeralContainers") or []]
    if not spec.get("nodeName"):
        raise bad_request(f"pod {name} does not have a host assigned")
    if not container:
        if len(regular) == 1:
            return regular[0]
        msg = f"a container name must be specified for pod {name}, choose one of: [{' '.join(regular)}]"
        if init:
            msg += f" or one of the init containers: [{' '.join(init)}]"
        if eph:
            msg += f" or one of the ephemeral containers: [{' '.join(eph)}]"
        raise bad_request(msg)
    if container not in regular + init + eph:
        raise bad_request(f"container {container} is not valid for pod {name}")
    return container
