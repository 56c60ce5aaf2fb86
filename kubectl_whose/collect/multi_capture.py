"""A capture of several pods at once: one debug container (or node debug pod) per pod, opened and streamed in
parallel, each pod's pcap tee'd to its own analyzer and to the one output (a merged pcapng, or one pcap per pod
in a directory). A pod that fails is reported with its own error and the others go on; Ctrl-C and --duration
stop every remote tcpdump.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, List, Optional

from kubectl_whose.chatter import say
from kubectl_whose.collect.capture import NODE_BLIND_SPOTS, RemoteCapture, Tee, name_connections
from kubectl_whose.collect.tcpdump import CaptureRecipe
from kubectl_whose.errors import ExitCode, WhoseError


@dataclass
class PodRun:
    """One pod of the capture: what it captured and how it ended."""

    target: Any  # cluster.targets.PodTarget
    analyzer: Any
    sink: Optional[Tee] = None
    bytes_written: int = 0
    error: Optional[WhoseError] = None
    summary: Any = None
    connections: List[dict] = field(default_factory=list)
    inbound: List[dict] = field(default_factory=list)
    interface: str = ""
    node: str = ""
    pod_ips: tuple = ()
    state: str = "starting"  # starting | capturing | done | failed
    capture_point: Optional[dict] = None
    node_rules: list = field(default_factory=list)  # the node's rulesets, read on the node path (--node)

    @property
    def label(self) -> str:
        return self.target.label

    def snapshot(self):
        return self.sink.snapshot() if self.sink is not None else None


def output_paths(write: Optional[str]):
    """(merged pcapng path, per-pod directory): `-w DIR/` (or an existing directory) writes one pcap per pod."""
    if not write:
        return None, None
    if write.endswith("/") or os.path.isdir(write):
        try:
            os.makedirs(write, exist_ok=True)
        except OSError as e:
            raise WhoseError(f"cannot write into {write} ({e.strerror}); pick another -w directory",
                             ExitCode.BAD_INPUT) from None
        return None, write
    return write, None


@dataclass
class ManyCaptured:
    runs: List[PodRun]
    interrupted: bool
    links: List[dict] = field(default_factory=list)  # connections followed from pod to pod

    @property
    def failed(self) -> List[PodRun]:
        return [r for r in self.runs if r.error is not None]


def run_many(kube, opts, targets, live_view) -> ManyCaptured:
    """Capture every target in parallel; `live_view(runs)` shows them while they run (`render.live.MultiLiveView`).
    Then each pod's summary and joins, and the connections followed from pod to pod."""
    from kubectl_whose.analysis.streams import CaptureAnalyzer
    from kubectl_whose.collect.pcapng_merge import MergedPcapng

    merged_path, directory = output_paths(opts.write)
    merged = MergedPcapng(merged_path) if merged_path else None
    runs = [PodRun(t, CaptureAnalyzer(proto=opts.proto, detail_stream=opts.stream, detail_proto=opts.detail_proto))
            for t in targets]
    stop_all = threading.Event()
    workers = [threading.Thread(target=_capture_one, args=(kube, opts, run, merged, directory, stop_all),
                                name=f"whose-{run.label}", daemon=True) for run in runs]
    t0 = time.monotonic()
    interrupted = False
    try:
        with live_view(runs):
            for w in workers:
                w.start()
            try:
                while any(w.is_alive() for w in workers):
                    for w in workers:
                        w.join(0.1)
            except KeyboardInterrupt:
                interrupted = True
                stop_all.set()
                for w in workers:
                    w.join()  # each stops its remote tcpdump within STOP_GRACE
    finally:
        if merged is not None:
            merged.close()
    if interrupted:
        say(f"interrupted after {time.monotonic() - t0:.1f} s; every pod's capture so far is kept")
    for run in runs:
        if run.sink is not None and run.sink.bytes:
            run.summary = run.analyzer.finish()
            run.connections, run.inbound = name_connections(
                replace(kube, namespace=run.target.namespace), replace(opts, pod=run.target.name), run.summary,
                interrupted or run.error is not None, run.pod_ips)
    return ManyCaptured(runs, interrupted, _links(runs, merged_path))


def captured_from_file(path: str, proto: str = "all") -> ManyCaptured:
    """A merged capture read back (`analyze FILE.pcapng`): each pod's summary and joins, and the links, as the
    capture that wrote it showed them (the pods' addresses and nodes ride in the file's interface blocks)."""
    from kubectl_whose.analysis.pod.connections import connections_json
    from kubectl_whose.analysis.pod.inbound import join_inbound
    from kubectl_whose.analysis.streams.analyzer import analyze_per_pod
    from kubectl_whose.cluster.targets import PodTarget

    runs = []
    for info, summary in analyze_per_pod(path, proto):
        target = PodTarget(info.namespace, info.pod, info.node, info.ips[0] if info.ips else None, "Running", path)
        runs.append(PodRun(target, None, summary=summary, connections=connections_json(summary),
                           inbound=[i.to_dict() for i in join_inbound(summary, info.ips)],
                           interface=",".join(info.interfaces), node=info.node, pod_ips=tuple(info.ips)))
    return ManyCaptured(runs, False, _links(runs, path))


def _links(runs: List[PodRun], merged_path: Optional[str]) -> List[dict]:
    from kubectl_whose.analysis.pod.pod_to_pod import PodCapture, join_pods_of_file

    captures = [PodCapture(r.label, r.node, r.pod_ips, list(r.summary.iter_streams()), r.connections, r.inbound)
                for r in runs if r.summary is not None]
    if len(captures) < 2:
        return []
    return join_pods_of_file(captures, merged_path, {r.node: r.node_rules for r in runs if r.node_rules})


def _capture_one(kube, opts, run: PodRun, merged, directory: Optional[str], stop_all: threading.Event) -> None:
    from kubectl_whose.collect.node import debug_session, find_pod_interface

    target = run.target
    pod_kube = replace(kube, namespace=target.namespace)
    prefix = f"{target.label}: "
    tell = lambda text: say(prefix + text)  # noqa: E731
    if target.phase != "Running":
        run.error = WhoseError(f"pod {target.label} is not running (phase {target.phase}); its capture was skipped",
                               ExitCode.POD_NOT_RUNNING)
        return
    try:
        min_left = opts.duration + 15 if opts.duration else max(75.0, opts.ttl / 2)
        with debug_session(pod_kube, target.name, opts.debug, opts.node_flags, ttl=opts.ttl, min_remaining=min_left,
                           say=tell) as (session, node_target):
            interface = opts.interface
            run.pod_ips = session.pod_ips
            run.node = target.node
            if node_target is not None:
                host = find_pod_interface(session, node_target, opts.interface)
                interface = host.name
                run.capture_point = {"where": "node", "node": node_target.node, "pod_ip": node_target.ip,
                                     **host.to_dict(), "not_seen": list(NODE_BLIND_SPOTS)}
                tell(f"capturing on node {node_target.node}, interface {host.name}: {host.why}")
            run.interface = interface
            name = f"{target.label}:{interface}" + (f"@{node_target.node}" if node_target is not None else "")
            out = merged.interface(name, run.pod_ips, target.node) if merged is not None else None
            path = os.path.join(directory, f"{target.namespace}_{target.name}.pcap") if directory else None
            run.sink = Tee(path, run.analyzer, out=out)
            seconds = opts.duration or max(30.0, (session.remaining() or opts.ttl) - 5)
            runner = RemoteCapture(session, CaptureRecipe(interface, opts.bpf, opts.count, opts.snaplen, seconds),
                                   run.sink, time.monotonic(), tell=tell)
            run.state = "capturing"
            runner.start()
            runner.wait(opts.duration, stop_all)
            runner.finish(user_stopped=stop_all.is_set())
            run.error = run.sink.write_error or runner.failure()
            if node_target is not None:  # the node's rules name the kube-proxy rule behind each Service hop
                run.node_rules = _node_rules(session, kube.request_timeout, tell)
    except WhoseError as e:
        run.error = e
    except Exception as e:  # noqa: BLE001 - one pod's failure must not end the others
        run.error = WhoseError(f"capture of {target.label} failed ({type(e).__name__}: {e})", ExitCode.ERROR)
    finally:
        if run.sink is not None:
            run.sink.close()
            run.bytes_written = run.sink.written
            run.error = run.error or run.sink.write_error
        run.state = "failed" if run.error is not None else "done"


def _node_rules(session, timeout: float, tell) -> list:
    from kubectl_whose.collect.netfilter import collect_rulesets

    try:
        return collect_rulesets(session, timeout)[0]
    except WhoseError as e:
        tell(f"the node's rules could not be read ({e.message}); Service hops are shown without their rule")
        return []


def conclude_many(captured: ManyCaptured, write: Optional[str]) -> None:
    """After the output: what was written, then the exit: PARTIAL when some pods failed, the failure itself when
    all did, 130 after Ctrl-C."""
    failed = captured.failed
    full = next((r.error for r in failed if r.error.code == ExitCode.WRITE_FAILED), None)
    if full is not None:
        raise full  # the file (or a pod's file in -w DIR/) could take no more: it says what it holds
    total = sum(r.bytes_written for r in captured.runs)
    if write and total:
        say(f"wrote {total} bytes of {sum(1 for r in captured.runs if r.bytes_written)} pods to {write}")
    if failed and len(failed) == len(captured.runs):
        first = failed[0].error
        raise WhoseError(f"no pod could be captured; {failed[0].label}: {first.message}", first.code)
    if failed:
        names = ", ".join(r.label for r in failed)
        raise WhoseError(f"{len(failed)} of {len(captured.runs)} pods could not be captured ({names}); the others' "
                         f"results are above", ExitCode.PARTIAL)
    if captured.interrupted:
        raise SystemExit(int(ExitCode.INTERRUPTED))
