"""`kubectl whose capture POD`: tcpdump in an ephemeral debug container, streamed, saved and summarised.

Flow: open the output file (fail before touching the cluster) -> open a debug session (reuse or add the
NET_ADMIN/NET_RAW container) -> exec the tcpdump recipe (`collect.tcpdump`) -> every stdout chunk goes, unchanged
and in order, to the file (`-w`) and to the analysis engine -> stop on --duration/--count/Ctrl-C by signalling the
remote tcpdump (closing the WebSocket would not stop it) -> print the engine's summary. Captured data is never
lost: the file is flushed and named on every error, and the summary covers what arrived.
Default image and why: `kubectl_whose.cluster.image`.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Optional

import click

from kubectl_whose.cli.options import DurationType, kube_flags, output_option, pod_argument
from kubectl_whose.errors import ExitCode, WhoseError

STOP_GRACE = 2.0  # seconds tcpdump gets to flush after SIGINT before we abandon the stream


@dataclass
class CaptureOptions:
    pod: str
    container: Optional[str]
    interface: str
    bpf: Optional[str]
    duration: Optional[float]
    count: Optional[int]
    snaplen: Optional[int]
    write: Optional[str]
    stream: Optional[int]
    proto: str
    output: str
    image: Optional[str]
    ttl: float
    start_timeout: float = 120.0
    owners: bool = True  # name owners and the redirect rule of joined connections (issue 6)

    def validate(self) -> None:
        if self.write == "-" and self.output in ("json", "yaml"):
            raise click.UsageError("-w - sends the pcap to stdout; it cannot be combined with -o json/yaml")
        if self.ttl < 60:
            raise click.UsageError("--ttl must be at least 60s (the debug container idles that long)")
        if self.duration and self.duration + 15 > self.ttl:
            self.ttl = self.duration + 60  # a capture must fit in the container's lifetime


class PcapSink:
    """Writes the stream unchanged to a file or stdout, and feeds the analysis engine."""

    def __init__(self, path: Optional[str], analyzer):
        self.path = path
        self.analyzer = analyzer
        self.lock = threading.Lock()
        self.bytes = 0
        self.broken_pipe = False
        self.feed_error: Optional[Exception] = None
        self._file = None
        if path == "-":
            self._file = sys.stdout.buffer
        elif path:
            try:
                self._file = open(path, "wb")
            except OSError as e:
                raise WhoseError(f"cannot write {path} ({e.strerror}); pick another -w path",
                                 ExitCode.BAD_INPUT) from None

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
            self._file.flush()
            if self.path != "-":
                self._file.close()
        except BrokenPipeError:
            self.broken_pipe = True
        self._file = None
        if self.path not in (None, "-") and self.bytes == 0:
            try:  # tcpdump never started: an empty file is not data
                os.unlink(self.path)
            except OSError:
                pass


def say(message: str) -> None:
    click.echo(f"kubectl-whose: {message}", err=True)


@click.command("capture")
@pod_argument()
@click.option("-c", "--container", metavar="NAME",
              help="Share this container's process namespace (targetContainerName).")
@click.option("-i", "--interface", default="any", show_default=True, help="Interface in the pod: any, lo, eth0, ...")
@click.option("-f", "--filter", "bpf", metavar="BPF", help='tcpdump filter, e.g. "tcp port 80".')
@click.option("--duration", type=DurationType(), help="Stop after this long (30s, 2m). Default: until Ctrl-C.")
@click.option("--count", type=click.IntRange(min=1), help="Stop after N packets.")
@click.option("--snaplen", type=click.IntRange(min=0, max=262144), help="Bytes kept per packet (tcpdump -s).")
@click.option("-w", "--write", metavar="FILE|-", help="Save the raw pcap, byte-identical; '-' writes it to stdout.")
@click.option("--stream", type=click.IntRange(min=0),
              help="Show this TCP stream's packet-by-packet flag table (as analyze --stream).")
@click.option("--proto", type=click.Choice(("tcp", "udp", "all")), default="all", show_default=True,
              help="Which streams the summary lists.")
@output_option()
@click.option("--image", metavar="IMAGE", help="Debug image (default: $KUBECTL_WHOSE_IMAGE, config file, "
              "nicolaka/netshoot:v0.13).")
@click.option("--ttl", type=DurationType(), default="10m", show_default=True,
              help="How long the debug container idles before it exits (it is reused meanwhile).")
@click.option("--start-timeout", type=DurationType(), default="2m", show_default=True,
              help="How long to wait for a new debug container to run (image pulls can be slow).")
@click.option("--owners/--no-owners", default=True, show_default=True,
              help="When streams were joined, read the pod's sockets and rules to name each connection's owners "
                   "and the rule that redirected it.")
@kube_flags
def capture(kube, pod, container, interface, bpf, duration, count, snaplen, write, stream, proto, output, image,
            ttl, start_timeout, owners):
    """Capture a pod's traffic from an ephemeral NET_ADMIN/NET_RAW container and summarise every stream.

    \b
    Examples:
      kubectl whose capture my-pod -i any --duration 10s
      kubectl whose capture my-pod -i eth0 -f "tcp port 80" -w out.pcap
      kubectl whose capture my-pod --count 200 --stream 0
      kubectl whose capture my-pod -w - | wireshark -k -i -
    """
    opts = CaptureOptions(pod, container, interface, bpf, duration, count, snaplen, write, stream, proto, output,
                          image, ttl, start_timeout, owners)
    opts.validate()
    run_capture(kube, opts)


def run_capture(kube, opts: CaptureOptions) -> None:
    from kubectl_whose.analysis.streams.summary import CaptureAnalyzer
    from kubectl_whose.cluster.session import open_debug_session
    from kubectl_whose.collect import tcpdump

    t0 = time.monotonic()
    analyzer = CaptureAnalyzer(proto=opts.proto, detail_stream=opts.stream, detail_proto=_detail_proto(opts.proto))
    sink = PcapSink(opts.write, analyzer)
    pending: Optional[WhoseError] = None
    interrupted = False
    try:
        # a reused container must outlive the capture; without --duration, ask for half a fresh one's lifetime
        min_left = opts.duration + 15 if opts.duration else max(75.0, opts.ttl / 2)
        with open_debug_session(kube, opts.pod, opts.container, opts.image, opts.ttl, min_remaining=min_left,
                                start_timeout=opts.start_timeout, say=say) as session:
            seconds = opts.duration or max(30.0, (session.remaining() or opts.ttl) - 5)
            recipe = tcpdump.CaptureRecipe(opts.interface, opts.bpf, opts.count, opts.snaplen, seconds)
            runner = RemoteCapture(session, tcpdump.capture_argv(recipe), sink, t0)
            if not opts.duration and not opts.count:
                say(f"capturing until Ctrl-C (at most {seconds:.0f} s, the debug container's remaining lifetime)")
            where = f"pod/{opts.pod} -i {opts.interface}"
            from kubectl_whose.render.live import LiveView

            with LiveView(sink.snapshot, lambda: sink.bytes, where):
                interrupted = runner.run(opts.duration)
            pending = runner.failure(opts, session.image)
            dropped = tcpdump.summary_counts(bytes(runner.stderr)).get("dropped")
            if dropped:
                say(f"tcpdump reports {dropped} packets dropped by the kernel (capture buffer full); "
                    f"narrow the capture with -f or --snaplen")
    except KeyboardInterrupt:
        interrupted = True
    except WhoseError as e:
        pending = e
    finally:
        sink.close()
    if sink.broken_pipe:
        return  # the reader went away (wireshark closed): end quietly
    if pending is not None and sink.bytes == 0:
        raise pending
    if interrupted and sink.bytes == 0:
        raise WhoseError("interrupted before the capture started; nothing was captured", ExitCode.INTERRUPTED)
    summary = analyzer.finish()
    _render(summary, opts, _connections(kube, opts, summary, interrupted))
    if sink.feed_error is not None:
        say(f"the analysis stopped early ({sink.feed_error}); the raw capture is complete")
    if opts.write not in (None, "-") and sink.bytes:
        say(f"wrote {sink.bytes} bytes to {opts.write}")
    if pending is not None:
        if opts.write not in (None, "-"):
            pending = WhoseError(f"{pending.message}; the {sink.bytes} bytes captured so far are in {opts.write}",
                                 pending.code)
        raise pending
    if interrupted:
        raise SystemExit(int(ExitCode.INTERRUPTED))


class RemoteCapture:
    """Runs the tcpdump recipe in a thread and stops it remotely (Ctrl-C, local deadline)."""

    def __init__(self, session, argv, sink: PcapSink, t0: float):
        self.session, self.argv, self.sink, self.t0 = session, argv, sink, t0
        self.stop = threading.Event()  # abandon the stream (only after the remote stop failed)
        self.reader_gone = threading.Event()  # `-w -` reader closed: stop the remote tcpdump, then end
        self.stderr = bytearray()
        self.pid: Optional[int] = None
        self.result = None
        self.error: Optional[WhoseError] = None
        self.running_said = False
        # Thread.join() interrupted by Ctrl-C marks a live thread as stopped (CPython 3.11 _wait_for_tstate_lock),
        # so the main thread waits on this event instead.
        self.done = threading.Event()

    def _on_stderr(self, chunk: bytes) -> None:
        from kubectl_whose.collect.tcpdump import parse_pid

        self.stderr += chunk
        if self.pid is None and b"\n" in self.stderr:
            self.pid = parse_pid(bytes(self.stderr.split(b"\n", 1)[0]))
        if not self.running_said and b"listening on" in self.stderr:
            self.running_said = True
            how = "reused" if self.session.reused else "new"
            say(f"capture running in {self.session.container_name} ({how} debug container) after "
                f"{time.monotonic() - self.t0:.2f} s")

    def _on_stdout(self, chunk: bytes) -> None:
        self.sink.write(chunk)
        if self.sink.broken_pipe:
            self.reader_gone.set()

    def _work(self) -> None:
        try:
            self.result = self.session.stream(self.argv, on_stdout=self._on_stdout, on_stderr=self._on_stderr,
                                              stop=self.stop, label="tcpdump")
        except WhoseError as e:
            self.error = e
        except Exception as e:  # noqa: BLE001 - surfaced in the main thread as one line
            self.error = WhoseError(f"capture stream failed ({type(e).__name__}: {e})", ExitCode.ERROR)
        finally:
            self.done.set()

    def run(self, duration: Optional[float]) -> bool:
        """Returns True when interrupted by Ctrl-C."""
        worker = threading.Thread(target=self._work, name="whose-capture", daemon=True)
        worker.start()
        # The remote `timeout` ends the capture on time; the local deadline only guards a remote that hangs.
        deadline = time.monotonic() + duration + 10 if duration else None
        interrupted = False
        try:
            while not self.done.wait(0.1):
                if self.reader_gone.is_set() or (deadline and time.monotonic() > deadline):
                    break
        except KeyboardInterrupt:
            interrupted = True
        if self.error is not None and self.error.code == ExitCode.CONNECTION_LOST and self.pid is not None:
            self._stop_remote()  # best effort: the API may be back; else the remote `timeout` ends it
        if not self.done.is_set():
            self._stop_remote()
            if not self.done.wait(STOP_GRACE):
                self.stop.set()
                self.done.wait(1.0)
        return interrupted

    def _stop_remote(self) -> None:
        from kubectl_whose.collect.tcpdump import stop_argv

        if self.pid is None:
            self.stop.set()
            return
        try:
            self.session.run(stop_argv(self.pid), timeout=STOP_GRACE)
        except (WhoseError, KeyboardInterrupt):
            self.stop.set()

    def failure(self, opts: CaptureOptions, image: str) -> Optional[WhoseError]:
        from kubectl_whose.cluster.session import tool_missing
        from kubectl_whose.collect.tcpdump import classify_failure

        if self.error is not None:
            return self.error
        if self.result is None or self.result.stopped:
            return None
        if self.result.error and not self.stderr:
            missing = tool_missing(self.result, "sh/tcpdump", image)
            return missing or WhoseError(f"tcpdump could not run ({self.result.error})", ExitCode.ERROR)
        return classify_failure(bytes(self.stderr), self.result.exit_code, opts.interface, opts.bpf, image)


def _connections(kube, opts: CaptureOptions, summary, interrupted: bool) -> list:
    """The joined connections; when there are any, name their owners (`ss`) and the rule that redirected
    them (iptables/nftables) from the same debug container. A failure there costs only the names."""
    from kubectl_whose.render.capture_summary import connections_of

    connections = connections_of(summary)
    if not connections or not opts.owners or interrupted:
        return connections
    from kubectl_whose.analysis.pod.netinfo import build_netinfo
    from kubectl_whose.cli.net import run_recipes
    from kubectl_whose.cli.rules import collect_rulesets_in
    from kubectl_whose.cluster.session import open_debug_session

    try:
        with open_debug_session(kube, opts.pod, opts.container, opts.image, opts.ttl, say=None) as session:
            netinfo = build_netinfo(run_recipes(session).outputs, container=opts.container)
            rulesets = collect_rulesets_in(session, kube.request_timeout)[0]
    except WhoseError as e:
        say(f"connections are shown without owners and rules ({e.message}); --no-owners skips this step")
        return connections
    return connections_of(summary, netinfo=netinfo, rules=rulesets, container=opts.container)


def _render(summary, opts: CaptureOptions, connections: list) -> None:
    """Exactly what `analyze FILE` prints for the saved file; on stderr when stdout is the pcap."""
    from kubectl_whose.analysis.streams.summary import check_stream_index
    from kubectl_whose.render.capture_summary import print_summary

    detail = opts.stream is not None
    if detail:
        proto = _detail_proto(opts.proto)
        check_stream_index(proto, opts.stream, summary.stream_count(proto))
    if opts.write == "-":
        saved, sys.stdout = sys.stdout, sys.stderr
        try:
            print_summary(summary, connections, "wide" if opts.output == "wide" else "table", detail)
        finally:
            sys.stdout = saved
    else:
        print_summary(summary, connections, opts.output, detail)


def _detail_proto(proto: str) -> str:
    return "udp" if proto == "udp" else "tcp"


