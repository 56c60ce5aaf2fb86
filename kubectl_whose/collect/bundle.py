"""One file a colleague or a support ticket can take: `bundle TARGETS` and `capture ... --bundle FILE.tgz`.

A gzipped tar holding:
    manifest.json             versions (kubectl-whose, Python, analysis engine, the API server), the exact
                              command, when, which pods, and what could not be collected
    capture.pcapng            every pod's capture, an interface per pod (`collect.pcapng_merge`)
    summary.json              what `capture -o json` printed
    pods/NS/POD/pod.yaml      the pod as the API server returned it
    pods/NS/POD/rules.json    its rules (`rules --save` snapshot: every backend's dump, whole)
    pods/NS/POD/net/*         its `net` outputs, in the `net --from-file DIR` layout
    pods/NS/POD/doctor.json   `doctor -o json`
`analyze FILE.tgz`, `rules --from-file FILE.tgz[#NS/POD]` and `net --from-file FILE.tgz[#NS/POD]` read it
back (`analysis.bundle_file`).
"""
from __future__ import annotations

import io
import json
import platform
import tarfile
import tempfile
import time
from typing import Dict, List, Optional

from kubectl_whose.chatter import say
from kubectl_whose.errors import ExitCode, WhoseError


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
    tar.addfile(info, io.BytesIO(data))


def pod_extras(kube, opts, run) -> Dict[str, bytes]:
    """The files of one pod: its YAML, rules, net outputs and doctor report, each best effort."""
    from dataclasses import replace

    import yaml

    from kubectl_whose.analysis.netfilter import save_snapshot
    from kubectl_whose.cluster.client import connect
    from kubectl_whose.cluster.ephemeral import read_pod
    from kubectl_whose.cluster.preflight import run_checks
    from kubectl_whose.collect import netinfo
    from kubectl_whose.collect.netfilter import collect_rulesets
    from kubectl_whose.collect.node import debug_session

    t = run.target
    base = f"pods/{t.namespace}/{t.name}/"
    pod_kube = replace(kube, namespace=t.namespace)
    files: Dict[str, bytes] = {}
    notes: List[str] = []
    try:
        files[base + "pod.yaml"] = yaml.safe_dump(read_pod(connect(pod_kube), t.name), sort_keys=False).encode()
        with debug_session(pod_kube, t.name, opts.debug, opts.node_flags, ttl=opts.ttl, say=None) as (session, _):
            got = netinfo.run(session)
            for name, text in got.outputs.items():
                if text is not None:
                    files[base + "net/" + netinfo.RECIPES[name].file] = text.encode()
            files[base + "rules.json"] = save_snapshot(collect_rulesets(session, kube.request_timeout)[0]).encode()
        report = run_checks(pod_kube, t.name, opts.debug.container, opts.debug.image, opts.node_flags)
        files[base + "doctor.json"] = json.dumps(report.to_dict(), indent=2).encode()
    except WhoseError as e:
        notes.append(f"{t.label}: {e.message}")
    files[base + "notes.json"] = json.dumps(notes).encode()
    return files


def run_many_with_bundle(kube, opts, pods, live_view, bundle: Optional[str], show, summary_json, command: List[str]):
    """`multi_capture.run_many`, then `show(captured)`, then the bundle when one is asked for: its capture is the
    -w FILE.pcapng, or a scratch file removed after."""
    from kubectl_whose.collect.multi_capture import run_many

    written = opts.write
    scratch = tempfile.TemporaryDirectory(prefix="kubectl-whose-") if bundle and not written else None
    if scratch is not None:
        opts.write = scratch.name + "/capture.pcapng"
    try:
        captured = run_many(kube, opts, pods, live_view)
        show(captured)
        if bundle:
            write_bundle(bundle, kube, opts, captured, opts.write, summary_json(captured), command)
    finally:
        opts.write = written
        if scratch is not None:
            scratch.cleanup()
    return captured


def write_bundle(path: str, kube, opts, captured, capture_file: str, summary_json: str, command: List[str]) -> None:
    from kubectl_whose import __version__
    from kubectl_whose.analysis.streams.engine import choose

    pods = [r for r in captured.runs if r.summary is not None]
    extras: Dict[str, bytes] = {}
    for run in pods:
        extras.update(pod_extras(kube, opts, run))
    notes = [n for name, data in extras.items() if name.endswith("notes.json") for n in json.loads(data)]
    manifest = {"kubectl_whose": __version__, "python": platform.python_version(), "engine": choose(),
                "server": _server_version(kube), "command": command, "created": time.strftime(
                    "%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "pods": [r.label for r in captured.runs], "captured": [r.label for r in pods],
                "failed": [{"pod": r.label, "error": r.error.message} for r in captured.failed], "notes": notes,
                "files": ["capture.pcapng", "summary.json"] + sorted(n for n in extras if not n.endswith("notes.json"))}
    try:
        with tarfile.open(path, "w:gz") as tar:
            _add(tar, "manifest.json", json.dumps(manifest, indent=2).encode())
            tar.add(capture_file, arcname="capture.pcapng")
            _add(tar, "summary.json", summary_json.encode())
            for name, data in sorted(extras.items()):
                if not name.endswith("notes.json"):
                    _add(tar, name, data)
    except OSError as e:
        raise WhoseError(f"cannot write the bundle {path} ({e.strerror or e}); pick another --bundle path",
                         ExitCode.BAD_INPUT) from None
    say(f"wrote bundle {path}: the capture of {len(pods)} pod(s), their rules, net, doctor and YAML"
        + (f"; not collected: {'; '.join(notes)}" if notes else ""))


def _server_version(kube) -> str:
    try:
        from kubectl_whose.cluster.client import connect

        return connect(kube).rest.get("/version").get("gitVersion", "?")
    except Exception:  # noqa: BLE001 - a version we cannot read is only missing from the manifest
        return "?"
