"""The capture pipeline: tcpdump in the debug container, every chunk tee'd to the file and the analyzer.

Flow: open the output file (fail before touching the cluster) -> open a debug session (reuse or add the
NET_ADMIN/NET_RAW container) -> exec the tcpdump recipe (`collect.tcpdump`) -> every stdout chunk goes, unchanged
and in order, to the file (`-w`) and to the analysis engine -> stop on --duration/--count/Ctrl-C by signalling the
remote tcpdump (closing the WebSocket would not stop it) -> the engine's summary and the joined connections.
Captured data is never lost: the file is flushed and named on every error, and the summary covers what arrived.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, List, Optional

from kubectl_whose.chatter import say
from kubectl_whose.collect.tcpdump import CaptureRecipe
from kubectl_whose.errors import ExitCode, WhoseError

# --duration and Ctrl-C are honoured within 2 s whatever the API server does: the remote tcpdump gets STOP_GRACE
# to flush and end its stream after it was signalled (or after its own `timeout`, DEADLINE_SLACK after the local
# clock's --duration); then the stream is abandoned and what arrived is kept.
STOP_GRACE = 1.5
DEADLINE_SLACK = 0.3
ALIVE_GRACE = 8.0  # a server that answered the stop is alive, only slow (a loaded machine): its stream may end late
# what a capture on the pod's host-side interface misses: it only sees what leaves or enters the pod
NODE_BLIND_SPOTS = ("the pod's lo (app <-> sidecar proxy)", "traffic between the pod's containers")


class Tee:
    """Writes the stream unchanged to a file or stdout, and feeds the analysis engine.

    A file that can take no more (`collect.capture_file`) sets `write_error`; the engine goes on being fed, so the
    summary still covers everything that arrived."""

    def __init__(self, path: Optional[str], analyzer, out=None):
        """`out`: a writer to use instead of opening `path` (one pod's stream of a merged pcapng); its
        `error`, when it has one, is this Tee's `write_error`."""
        from kubectl_whose.collect.capture_file import CaptureFile

        self.path = path
        self.analyzer = analyzer
        self.lock = threading.Lock()
        self.bytes = 0
        self.broken_pipe = False
        self.feed_error: Optional[Exception] = None
        self._file = out
        if out is None and path == "-":
            self._file = sys.stdout.buffer
        elif out is None and path:
            self._file = CaptureFile(path)

    @property
    def write_error(self):
        return getattr(self._file, "error", None)

    @property
    def written(self) -> int:
        return getattr(self._file, "written", self.bytes)

    def write(self, chunk: bytes) -> None:
        with self.lock:
            self.bytes += len(chunk)
            if self._file is not None and not self.broken_pipe:
                try:
                    self._file.write(chunk)
                    if self.path == "-":
                        self._file.flush()
                except BrokenPipeError:
                    self.broken_pipe = True  # wireshark/tshark closed the pipe: stop quietly
            if self.feed_error is None:
                try:
                    self.analyzer.feed(chunk)
                except Exception as e:  # noqa: BLE001 - the raw pcap is still saved; reported at the end
                    self.feed_error = e

    def snapshot(self):
        with self.lock:
            return self.analyzer.snapshot()

    def close(self) -> None:
        if self._file is None:
            return
        try:
            if self.path == "-":
                self._file.flush()
            else:
                self._file.close()
        except BrokenPipeError:
            self.broken_pipe = True
        if self.path not in (None, "-") and self.bytes == 0:
            try:  # tcpdump never started: an empty file is not data
                os.unlink(self.path)
            except OSError:
                pass


class RemoteCapture:
    """Runs the tcpdump recipe in a thread and stops it remotely (Ctrl-C, local deadline)."""

    def __init__(self, session, recipe: CaptureRecipe, sink: Tee, t0: float, argv: Optional[List[str]] = None,
                 tell=say):
        from kubectl_whose.collect.tcpdump import capture_argv

        self.session, self.recipe, self.sink, self.t0, self.tell = session, recipe, sink, t0, tell
        self.argv = argv or capture_argv(recipe)
        self.stop = threading.Event()  # abandon the stream (only after the remote stop failed)
        self.reader_gone = threading.Event()  # `-w -` reader closed: stop the remote tcpdump, then end
        self.stderr = bytearray()
        self.pid: Optional[int] = None
        self.result = None
        self.error: Optional[WhoseError] = None
        self.running_said = False
        self.listening_at: Optional[float] = None  # monotonic time tcpdump said it listens
        self.last_heard = time.monotonic()  # when the stream last brought bytes
        self.stop_answered = threading.Event()  # the stop exec came back: the server answers
        # Thread.join() interrupted by Ctrl-C marks a live thread as stopped (CPython 3.11 _wait_for_tstate_lock),
        # so the main thread waits on this event instead.
        self.done = threading.Event()

    def _on_stderr(self, chunk: bytes) -> None:
        from kubectl_whose.collect.tcpdump import parse_pid

        self.stderr += chunk
        self.last_heard = time.monotonic()
        if self.pid is None and b"\n" in self.stderr:
            self.pid = parse_pid(bytes(self.stderr.split(b"\n", 1)[0]))
        if not self.running_said and b"listening on" in self.stderr:
            self.running_said = True
            self.listening_at = time.monotonic()
            how = "reused" if self.session.reused else "new"
            self.tell(f"capture running in {self.session.container_name} ({how} debug container) after "
                      f"{time.monotonic() - self.t0:.2f} s")

    def _on_stdout(self, chunk: bytes) -> None:
        self.last_heard = time.monotonic()
        self.sink.write(chunk)
        if self.sink.broken_pipe or self.sink.write_error is not None:
            self.reader_gone.set()  # nowhere to put more: stop the remote tcpdump

    def _work(self) -> None:
        try:
            self.result = self.session.stream(self.argv, on_stdout=self._on_stdout, on_stderr=self._on_stderr,
                                              stop=self.stop, label="tcpdump")
        except WhoseError as e:
            self.error = e
        except Exception as e:  # noqa: BLE001 - surfaced in the main thread as one line
            self.error = WhoseError(f"the capture stream stopped on an unexpected error "
                                    f"({str(e) or type(e).__name__}); what arrived is kept; please report it with the "
                                    f"output of --traceback",
                                    ExitCode.ERROR)
        finally:
            self.done.set()

    def start(self) -> None:
        threading.Thread(target=self._work, name="whose-capture", daemon=True).start()

    def wait(self, duration: Optional[float], stop_all: Optional[threading.Event] = None) -> None:
        """Until the stream ends, the reader goes, `stop_all` is set, or the local deadline passes: --duration
        after tcpdump began to listen (the remote `timeout` ends the capture on time; the local deadline guards
        a server that stops answering)."""
        started = time.monotonic()
        while not self.done.wait(0.1):
            since = self.listening_at or started
            if self.reader_gone.is_set() or (duration and time.monotonic() > since + duration + DEADLINE_SLACK) or \
                    (stop_all is not None and stop_all.is_set()):
                return

    def finish(self, user_stopped: bool = False) -> None:
        """Stop the remote tcpdump if it still runs, and give its stream STOP_GRACE to end with what it holds; then
        abandon it. A stream that had to be abandoned though nobody pressed Ctrl-C is a server that stopped
        answering: that is said (CONNECTION_LOST), and what arrived is kept."""
        if self.error is not None and self.error.code == ExitCode.CONNECTION_LOST and self.pid is not None:
            self._stop_in_background()  # best effort: the API may be back; else the remote `timeout` ends it
        if not self.done.is_set():
            self._stop_in_background()
            alive = self.done.wait(STOP_GRACE) or (self.stop_answered.is_set() and self.done.wait(ALIVE_GRACE))
            if not alive:
                self.stop.set()
                self.done.wait(0.2)
                if self.error is None and not user_stopped and not self.reader_gone.is_set():
                    self.error = WhoseError(
                        f"the capture stream did not end when tcpdump was stopped: the API server stopped answering "
                        f"(the last bytes arrived {time.monotonic() - self.last_heard:.0f} s ago); what arrived is "
                        f"kept; check the API server (kubectl get --raw /readyz) and capture again",
                        ExitCode.CONNECTION_LOST)

    def _stop_in_background(self) -> None:
        """The stop is an exec of its own: on a server that hangs it would hang too, so nobody waits for it."""
        threading.Thread(target=self._stop_remote, name="whose-stop", daemon=True).start()

    def run(self, duration: Optional[float]) -> bool:
        """Start, wait, finish; returns True when interrupted by Ctrl-C."""
        self.start()
        interrupted = False
        try:
            self.wait(duration)
        except KeyboardInterrupt:
            interrupted = True
        try:
            self.finish(user_stopped=interrupted)
        except KeyboardInterrupt:
            interrupted = True
            self.stop.set()  # a second Ctrl-C: do not wait for the stream at all
        return interrupted

    def _stop_remote(self) -> None:
        from kubectl_whose.collect.tcpdump import stop_argv

        if self.pid is None:
            self.stop.set()
            return
        try:  # nobody waits for this exec (finish() does the waiting), so a slow server may take its time
            self.session.run(stop_argv(self.pid), timeout=ALIVE_GRACE)
            self.stop_answered.set()
        except (WhoseError, KeyboardInterrupt):
            pass  # the server did not take the stop: finish() abandons the stream after STOP_GRACE

    def failure(self) -> Optional[WhoseError]:
        from kubectl_whose.collect.recipe import binary_missing, missing_tool_error
        from kubectl_whose.collect.tcpdump import classify_failure

        if self.error is not None:
            return self.error
        if self.result is None or self.result.stopped:
            return None
        if self.result.error and not self.stderr:
            if binary_missing(self.result.exit_code, self.result.error):
                return missing_tool_error("sh/tcpdump", self.session.image, self.result.error)
            return WhoseError(f"tcpdump could not run in the debug container ({self.result.error}); "
                              f"`kubectl whose doctor {self.session.pod}` checks the debug container", ExitCode.ERROR)
        return classify_failure(self.recipe, bytes(self.stderr), self.result.exit_code, self.session.image,
                                self.session.pod)


@dataclass
class Captured:
    """What one capture produced: the summary (None when nothing arrived), the joins, and how it ended."""

    summary: Any = None
    connections: List[dict] = field(default_factory=list)
    bytes: int = 0  # that arrived (all of them went to the analysis)
    written: int = 0  # that the file holds
    path: Optional[str] = None  # -w
    broken_pipe: bool = False
    interrupted: bool = False
    error: Optional[WhoseError] = None  # the failure that ended it, raised after the summary
    feed_error: Optional[Exception] = None
    capture_point: Optional[dict] = None  # --node: which node and interface, and why (None: inside the pod)
    inbound: List[dict] = field(default_factory=list)  # inbound connections linked to the sidecar's local leg


def run_capture(kube, opts, live_view) -> Captured:
    """`opts` is `collect.capture_options.CaptureOptions`; `live_view(snapshot, byte_count, where)` the context
    manager that shows the capture while it runs (`render.live.LiveView`). Raises only when nothing at all was
    captured."""
    from kubectl_whose.analysis.streams import CaptureAnalyzer, check_stream_index
    from kubectl_whose.collect import tcpdump
    from kubectl_whose.collect.node import debug_session

    t0 = time.monotonic()
    analyzer = CaptureAnalyzer(proto=opts.proto, detail_stream=opts.stream, detail_proto=opts.detail_proto)
    sink = Tee(opts.write, analyzer)
    pending: Optional[WhoseError] = None
    interrupted = False
    point: Optional[dict] = None
    pod_ips: tuple = ()
    try:
        # a reused container must outlive the capture; without --duration, ask for half a fresh one's lifetime
        min_left = opts.duration + 15 if opts.duration else max(75.0, opts.ttl / 2)
        with debug_session(kube, opts.pod, opts.debug, opts.node_flags, ttl=opts.ttl, min_remaining=min_left,
                           say=say) as (session, target):
            interface, where = opts.interface, f"pod/{opts.pod} -i {opts.interface}"
            pod_ips = session.pod_ips
            if target is not None:  # --node: the pod's host-side interface, found on its node
                from kubectl_whose.collect.node import find_pod_interface

                host = find_pod_interface(session, target, opts.interface)
                interface, where = host.name, f"node/{target.node} -i {host.name} (pod/{opts.pod})"
                point = {"where": "node", "node": target.node, "pod_ip": target.ip, **host.to_dict(),
                         "not_seen": list(NODE_BLIND_SPOTS)}
                say(f"capturing on node {target.node}, interface {host.name}: {host.why}")
                say(f"from the node, the capture cannot see {' nor '.join(NODE_BLIND_SPOTS)}")
            seconds = opts.duration or max(30.0, (session.remaining() or opts.ttl) - 5)
            recipe = CaptureRecipe(interface, opts.bpf, opts.count, opts.snaplen, seconds)
            runner = RemoteCapture(session, recipe, sink, t0)
            if not opts.duration and not opts.count:
                say(f"capturing until Ctrl-C (at most {seconds:.0f} s, the debug container's remaining lifetime)")
            with live_view(sink.snapshot, lambda: sink.bytes, where):
                interrupted = runner.run(opts.duration)
            pending = runner.failure()
            dropped = tcpdump.summary_counts(bytes(runner.stderr)).get("dropped")
            if dropped:
                say(f"tcpdump reports {dropped} packets dropped by the kernel (capture buffer full); "
                    f"narrow the capture with -f or --snaplen")
    except KeyboardInterrupt:
        interrupted = True
    except WhoseError as e:
        pending = e
    finally:
        failed_mid_capture = sink.write_error
        sink.close()
    # the file's failure first when it is what stopped the capture; a failure to close it never hides another
    pending = failed_mid_capture or pending or sink.write_error
    done = Captured(bytes=sink.bytes, written=sink.written, path=opts.write, broken_pipe=sink.broken_pipe,
                    interrupted=interrupted, error=pending, feed_error=sink.feed_error, capture_point=point)
    if sink.broken_pipe:
        return done  # the reader went away (wireshark closed): end quietly
    if pending is not None and sink.bytes == 0:
        raise pending
    if interrupted and sink.bytes == 0:
        raise WhoseError("interrupted before the capture started; nothing was captured", ExitCode.INTERRUPTED)
    done.summary = analyzer.finish()
    if opts.stream is not None:
        check_stream_index(opts.detail_proto, opts.stream, done.summary.stream_count(opts.detail_proto))
    # after a failure the API may not answer: the owners are not asked for, the joins stand on the capture alone
    done.connections, done.inbound = name_connections(kube, opts, done.summary, interrupted or pending is not None,
                                                      pod_ips)
    return done


def conclude(done: Captured) -> None:
    """After the summary: say what was kept, then end with the failure that stopped the capture, if any."""
    if done.broken_pipe:
        return  # the reader went away (wireshark closed): end quietly
    saved = done.path not in (None, "-")
    if done.feed_error is not None:
        again = f"; `kubectl whose analyze {done.path}` reads it again" if saved and done.bytes else ""
        say(f"the summary covers only the start of the capture: the analysis stopped ({done.feed_error}); the raw "
            f"capture is complete{again}")
    if saved and done.written:
        say(f"wrote {done.written} bytes to {done.path}")
    if done.error is not None and done.error.code == ExitCode.WRITE_FAILED:
        raise done.error  # it says what the file holds
    if done.error is not None:
        if saved:
            raise WhoseError(f"{done.error.message}; the {done.written} bytes captured so far are in {done.path}",
                             done.error.code)
        raise done.error
    if done.interrupted:
        raise SystemExit(int(ExitCode.INTERRUPTED))


def name_connections(kube, opts, summary, interrupted: bool, pod_ips) -> tuple:
    """(the joined connections, the inbound links): NAT-split streams joined by sequence numbers, and inbound
    connections linked to the sidecar's local leg (`pod_ips`: the pod's own addresses). When there are any,
    their owners (`ss`) and the redirect rule (iptables/nftables) are named from the same debug container; a
    failure there costs only the names."""
    from kubectl_whose.analysis.pod.connections import connections_json
    from kubectl_whose.analysis.pod.inbound import join_inbound

    connections = connections_json(summary)
    inbound = join_inbound(summary, pod_ips)
    if not (connections or inbound) or not opts.owners or interrupted or opts.node:  # the node cannot read sockets
        return connections, [i.to_dict() for i in inbound]
    from kubectl_whose.analysis.pod.netinfo import build_netinfo
    from kubectl_whose.cluster.session import open_debug_session
    from kubectl_whose.collect import netinfo
    from kubectl_whose.collect.netfilter import collect_rulesets

    debug = opts.debug
    try:
        with open_debug_session(kube, opts.pod, debug.container, debug.image, opts.ttl, say=None,
                                ptrace=debug.ptrace) as session:
            info = build_netinfo(netinfo.run(session).outputs, container=debug.container)
            rulesets = collect_rulesets(session, kube.request_timeout)[0]
    except WhoseError as e:
        say(f"connections are shown without owners and rules ({e.message}); --no-owners skips this step")
        return connections, [i.to_dict() for i in inbound]
    inbound = join_inbound(summary, list(pod_ips) + info.local_addresses(), info.sockets)
    return connections_json(summary, netinfo=info, rules=rulesets, container=debug.container), \
        [i.to_dict() for i in inbound]
