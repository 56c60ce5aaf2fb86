"""`meta.k8s.io/v1` Table answers, which `kubectl get` asks for (the columns of kubectl's pod printer)."""
from __future__ import annotations

import datetime
from typing import List

_POD_COLUMNS = [
    ("Name", "name", 0, "Name must be unique within a namespace."),
    ("Ready", "", 0, "The aggregate readiness state of this pod for accepting traffic."),
    ("Status", "", 0, "The aggregate status of the containers in this pod."),
    ("Restarts", "", 0, "The number of times the containers in this pod have been restarted and when the last "
                        "container in this pod has restarted."),
    ("Age", "", 0, "CreationTimestamp is a timestamp representing the server time when this object was created."),
    ("IP", "", 1, "The IP address assigned to the pod"),
    ("Node", "", 1, "The name of the node assigned to the pod"),
    ("Nominated Node", "", 1, "The name of the node where the pod is nominated to run"),
    ("Readiness Gates", "", 1, "The readiness gates of the pod"),
]


def age(ts: str) -> str:
    try:
        t = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return "<unknown>"
    s = int((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds())
    if s < 120:
        return f"{max(s, 0)}s"
    if s < 600:
        return f"{s // 60}m{s % 60}s" if s % 60 else f"{s // 60}m"
    if s < 3 * 3600:
        return f"{s // 60}m"
    return f"{s // 3600}h"


def pod_status_text(pod: dict) -> str:
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    status = pod.get("status") or {}
    reason = status.get("phase", "Pending")
    for cs in status.get("containerStatuses") or []:
        st = cs.get("state") or {}
        if st.get("waiting", {}).get("reason"):
            reason = st["waiting"]["reason"]
        elif st.get("terminated", {}).get("reason"):
            reason = st["terminated"]["reason"]
    return reason


def pod_row(pod: dict) -> List[str]:
    status = pod.get("status") or {}
    css = status.get("containerStatuses") or []
    total = len(pod["spec"].get("containers") or [])
    ready = sum(1 for c in css if c.get("ready"))
    restarts = sum(c.get("restartCount", 0) for c in css)
    return [pod["metadata"]["name"], f"{ready}/{total}", pod_status_text(pod), str(restarts),
            age(pod["metadata"].get("creationTimestamp")), status.get("podIP") or "<none>",
            pod["spec"].get("nodeName") or "<none>", "<none>", "<none>"]


def _partial(obj: dict) -> dict:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def table(resource: str, items: List[dict], resource_version: str, include_object: str = "Metadata") -> dict:
    if resource == "pods":
        cols, rows = _POD_COLUMNS, [pod_row(p) for p in items]
    elif resource == "namespaces":
        cols = [("Name", "name", 0, ""), ("Status", "", 0, ""), ("Age", "", 0, "")]
        rows = [[o["metadata"]["name"], (o.get("status") or {}).get("phase", "Active"),
                 age(o["metadata"].get("creationTimestamp"))] for o in items]
    elif resource == "services":
        cols = [("Name", "name", 0, ""), ("Type", "", 0, ""), ("Cluster-IP", "", 0, ""), ("External-IP", "", 0, ""),
                ("Port(s)", "", 0, ""), ("Age", "", 0, ""), ("Selector", "", 1, "")]
        rows = [[o["metadata"]["name"], o["spec"].get("type", "ClusterIP"), o["spec"].get("clusterIP", ""),
                 "<none>", ",".join(f'{p["port"]}/{p.get("protocol", "TCP")}' for p in o["spec"].get("ports", [])),
                 age(o["metadata"].get("creationTimestamp")),
                 ",".join(f"{k}={v}" for k, v in (o["spec"].get("selector") or {}).items())] for o in items]
    else:
        cols = [("Name", "name", 0, ""), ("Age", "", 0, "")]
        rows = [[o["metadata"]["name"], age(o["metadata"].get("creationTimestamp"))] for o in items]
    out_rows = []
    for obj, cells in zip(items, rows):
        row = {"cells": cells}
        if include_object == "Object":
            row["object"] = obj
        elif include_object != "None":
            row["object"] = _partial(obj)
        out_rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": [{"name": n, "type": "string", "format": f, "description": d, "priority": p}
                                  for n, f, p, d in cols],
            "rows": out_rows}
