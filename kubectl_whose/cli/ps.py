"""`kubectl whose ps POD`: the debug containers kubectl-whose added to a pod, and which one the next run reuses.

Ephemeral containers can never be removed, so this is where a user sees what we left: each one's image, target,
state, start time, lifetime left, and whether `capture`/`rules`/`net` would reuse it (running, ours, same shape).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import List, Optional

import click

from kubectl_whose.cli.options import kube_flags, output_option, pod_argument


@dataclass
class Row:
    name: str
    image: str
    target: Optional[str]
    state: str
    reason: str
    started: Optional[str]
    ttl_seconds: Optional[int]
    remaining_seconds: Optional[int]
    reusable: bool
    capabilities: List[str]

    def to_dict(self):
        return dict(self.__dict__)


@dataclass
class Listing:
    pod: str
    namespace: str
    containers: List[Row]

    def to_dict(self):
        return {"pod": self.pod, "namespace": self.namespace, "containers": [r.to_dict() for r in self.containers]}


@click.command("ps")
@pod_argument()
@click.option("--image", metavar="IMAGE", help="Judge reusability for this debug image (default as capture).")
@output_option()
@kube_flags
def ps(kube, pod, image, output):
    """List the debug containers kubectl-whose added to POD.

    \b
    Examples:
      kubectl whose ps my-pod
      kubectl whose ps my-pod -o json
    """
    from kubectl_whose.cluster.client import connect
    from kubectl_whose.cluster.ephemeral import read_pod
    from kubectl_whose.render.output import emit

    cluster = connect(kube)
    listing = build_listing(read_pod(cluster, pod), cluster.namespace, image, time.time())
    if not listing.containers and output in ("table", "wide"):
        click.echo(f"kubectl-whose: no kubectl-whose debug containers in pod {pod} (namespace {cluster.namespace})",
                   err=True)
        return
    emit(listing, output, _table)


def build_listing(pod_obj: dict, namespace: str, image: Optional[str], now: float) -> Listing:
    from kubectl_whose.cluster.debug_container import DebugSpec, debug_containers
    from kubectl_whose.cluster.image import resolve_image

    spec = DebugSpec(image=resolve_image(image))
    rows = []
    for v in debug_containers(pod_obj):
        left = v.remaining(now)
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(v.started_at)) if v.started_at else None
        rows.append(Row(name=v.name, image=v.image, target=v.target, state=v.state, reason=v.reason,
                        started=started, ttl_seconds=v.ttl_seconds,
                        remaining_seconds=int(left) if left is not None and left > 0 else (0 if left else None),
                        reusable=bool(v.matches(spec) and left is not None and left > 60),
                        capabilities=list(v.capabilities)))
    return Listing((pod_obj.get("metadata") or {}).get("name", "?"), namespace, rows)


def _age(seconds: Optional[int]) -> str:
    if seconds is None:
        return "-"
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


def _table(listing: Listing, wide: bool) -> None:
    from rich.table import Table

    from kubectl_whose.render.output import make_console

    table = Table(box=None, pad_edge=False, header_style="bold")
    cols = ["NAME", "IMAGE", "TARGET", "STATE", "STARTED", "LEFT", "REUSABLE"] + (["CAPABILITIES"] if wide else [])
    for c in cols:
        table.add_column(c, no_wrap=True)
    for r in listing.containers:
        state = f"{r.state} ({r.reason})" if r.reason else r.state
        row = [r.name, r.image, r.target or "-", state, r.started or "-", _age(r.remaining_seconds),
               "yes" if r.reusable else "no"]
        if wide:
            row.append(",".join(r.capabilities))
        table.add_row(*row)
    # wide adds a column: give it the room instead of cropping names (kubectl's -o wide does not wrap either)
    make_console(width=200 if wide else None).print(table)
