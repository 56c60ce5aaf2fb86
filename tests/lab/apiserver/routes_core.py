"""Namespaces, pods (get/list/watch/create/delete), pods/log, nodes, services, endpoints."""
from __future__ import annotations

import base64
import json
import os
import threading
import time

from . import tables
from .admission import admit_pod
from .ephemeral import default_container
from .http import Request
from .patch import apply_patch
from .selectors import matcher
from .status import ApiError, already_exists, bad_request, conflict, field_error, invalid
from .store import now

_KINDS = {"pods": ("Pod", "PodList"), "namespaces": ("Namespace", "NamespaceList"), "nodes": ("Node", "NodeList"),
          "services": ("Service", "ServiceList"), "endpoints": ("Endpoints", "EndpointsList")}


def list_or_watch(req: Request, resource: str, namespace: str = "", kinds=None, api_version: str = "v1"):
    verb = "watch" if req.flag("watch") else "list"
    req.authorize(verb, resource, namespace=namespace)
    match = matcher(req.q("fieldSelector"), req.q("labelSelector"))
    store = req.api.store
    if req.flag("watch"):
        return _watch(req, resource, namespace, match, kinds or _KINDS[resource], api_version)
    meta: dict = {}
    if req.q("limit").isdigit() and int(req.q("limit")) > 0 or req.q("continue"):
        start, at = _continue_from(req.q("continue"))
        limit = int(req.q("limit")) if req.q("limit").isdigit() and int(req.q("limit")) > 0 else 1 << 30
        items, rv, last, remaining = store.list_page(resource, namespace or None, match, limit, start, at)
        if last is not None:
            meta = {"continue": _continue_token(int(rv), last), "remainingItemCount": remaining}
    else:
        items, rv = store.list(resource, namespace or None, match)
    meta["resourceVersion"] = rv
    if req.wants_table():
        table = tables.table(resource, items, rv, req.q("includeObject", "Metadata"))
        table["metadata"].update(meta)
        return 200, table
    kind, list_kind = kinds or _KINDS[resource]
    for it in items:
        it.setdefault("kind", kind)
        it.setdefault("apiVersion", api_version)
    return 200, {"kind": list_kind, "apiVersion": api_version, "metadata": meta, "items": items}


def _continue_token(rv: int, last: tuple) -> str:
    """The apiserver's continue token: base64 of {"v": "meta.k8s.io/v1", "rv": N, "start": KEY + "\\x00"}."""
    key = f"{last[0]}/{last[1]}" if last[0] else last[1]
    return base64.urlsafe_b64encode(json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": key + "\x00"},
                                               separators=(",", ":")).encode()).decode().rstrip("=")


def _continue_from(token: str):
    if not token:
        return ("", ""), None
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        key = data["start"].rstrip("\x00")
        ns, _, name = key.rpartition("/")
        return (ns, name), int(data["rv"])
    except (ValueError, KeyError, TypeError):
        raise bad_request("continue key is not valid: illegal base64 data at input byte 0") from None


def _watch(req: Request, resource: str, namespace: str, match, kinds, api_version: str):
    timeout = float(req.q("timeoutSeconds") or 1800)
    events = req.api.store.watch(resource, namespace or None, match, req.q("resourceVersion"), timeout,
                                 send_initial=req.flag("sendInitialEvents"))
    h = req.handler
    h.start_chunked("application/json")
    try:
        for etype, obj in events:
            obj.setdefault("kind", kinds[0])
            obj.setdefault("apiVersion", api_version)
            h.chunk(json.dumps({"type": etype, "object": obj}, separators=(",", ":")).encode() + b"\n")
        h.end_chunked()
    except ApiError as e:
        h.chunk(json.dumps({"type": "ERROR", "object": e.body()}).encode() + b"\n")
        h.end_chunked()
    except OSError:
        h.close_connection = True
    return None


def get_one(req: Request, resource: str, namespace: str, name: str):
    req.authorize("get", resource, namespace=namespace, name=name)
    obj = req.api.store.get(resource, namespace, name)
    if req.wants_table():
        return 200, tables.table(resource, [obj], obj["metadata"]["resourceVersion"], req.q("includeObject",
                                                                                          "Metadata"))
    return 200, obj


# -- namespaces ----------------------------------------------------------------------------------------------------
def namespaces(req: Request):
    if req.method == "GET":
        return list_or_watch(req, "namespaces")
    req.authorize("create", "namespaces")
    dry = req.dry_run()
    body = req.json()
    name = (body.get("metadata") or {}).get("name") or ""
    if not name:
        raise invalid(name, [field_error("metadata.name", "FieldValueRequired", "name or generateName is required")],
                      kind="Namespace")
    labels = dict((body.get("metadata") or {}).get("labels") or {}, **{"kubernetes.io/metadata.name": name})
    if dry:
        if req.api.store.exists("namespaces", "", name):
            raise already_exists("namespaces", name)
        return 201, {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": name, "labels": labels},
                     "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
    return 201, req.api.create_namespace(name, (body.get("metadata") or {}).get("labels") or {})


def namespace(req: Request):
    name = req.params["name"]
    if req.method == "GET":
        return get_one(req, "namespaces", "", name)
    if req.method == "DELETE":
        req.authorize("delete", "namespaces", name=name)
        if req.dry_run():
            obj = req.api.store.get("namespaces", "", name)
            obj.setdefault("status", {})["phase"] = "Terminating"
            return 200, obj
        return 200, req.api.delete_namespace(name)
    verb = "patch" if req.method == "PATCH" else "update"
    req.authorize(verb, "namespaces", name=name)
    dry = req.dry_run()
    store = req.api.store
    cur = store.get("namespaces", "", name)
    new = apply_patch(req.content_type, cur, req.body()) if req.method == "PATCH" else req.json()
    expect_rv = _precondition(new, cur, "namespaces", name)
    labels = (new.get("metadata") or {}).get("labels") or {}
    labels["kubernetes.io/metadata.name"] = name

    def mutate(o):
        o["metadata"]["labels"] = labels
        o["metadata"]["annotations"] = (new.get("metadata") or {}).get("annotations") or {}
    if dry:
        mutate(cur)
        return 200, cur
    return 200, store.update("namespaces", "", name, mutate, expect_rv=expect_rv)


def _precondition(new: dict, cur: dict, resource: str, name: str):
    """A resourceVersion in the body (a PUT, or inside a patch: `kubectl label --resource-version`) must be the
    current one, else 409; it then also guards the write against a change in between."""
    rv = (new.get("metadata") or {}).get("resourceVersion") or None
    if rv and rv != cur["metadata"].get("resourceVersion"):
        raise conflict(resource, name)
    return rv


# -- pods ----------------------------------------------------------------------------------------------------------
def pods_all(req: Request):
    return list_or_watch(req, "pods")


def pods(req: Request):
    ns = req.params["ns"]
    if req.method == "GET":
        return list_or_watch(req, "pods", ns)
    req.authorize("create", "pods", namespace=ns)
    return _create_pod(req, ns, req.json())


def _create_pod(req: Request, ns: str, body: dict):
    from . import schema

    api = req.api
    field_warnings = schema.decode_pod(body, req.q("fieldValidation"))
    nsobj = api.store.get("namespaces", "", ns)
    meta = body.setdefault("metadata", {})
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = meta["generateName"] + os.urandom(3).hex()[:5]
    name = meta.get("name") or ""
    meta["namespace"] = ns
    spec = body.setdefault("spec", {})
    errors = []
    if not name:
        errors.append(field_error("metadata.name", "FieldValueRequired", "name or generateName is required"))
    if not spec.get("containers"):
        errors.append(field_error("spec.containers", "FieldValueRequired"))
    if spec.get("ephemeralContainers"):
        errors.append(field_error("spec.ephemeralContainers", "FieldValueForbidden", "cannot be set on create"))
    for i, c in enumerate(spec.get("containers") or []):
        if not c.get("image"):
            errors.append(field_error(f"spec.containers[{i}].image", "FieldValueRequired"))
    if errors:
        raise invalid(name, errors)
    for c in spec.get("containers") or []:
        default_container(c)
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    warnings = (schema.warning_header(field_warnings) or []) + admit_pod(nsobj, body, api.server_version.pod_security)
    body["kind"], body["apiVersion"] = "Pod", "v1"
    body["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    if req.dry_run():
        return 201, body, {"Warning": warnings} if warnings else None
    created = api.store.create("pods", body)
    threading.Thread(target=api.run_pod, args=(created,), daemon=True).start()
    return 201, created, {"Warning": warnings} if warnings else None


def pod(req: Request):
    ns, name = req.params["ns"], req.params["name"]
    if req.method == "GET":
        return get_one(req, "pods", ns, name)
    if req.method == "DELETE":
        req.authorize("delete", "pods", namespace=ns, name=name)
        if req.dry_run():  # the pod as the delete would leave it, graceful deletion begun; nothing changes
            obj = req.api.store.get("pods", ns, name)
            obj["metadata"].update(deletionTimestamp=now(), deletionGracePeriodSeconds=0)
            return 200, obj
        return 200, req.api.delete_pod(ns, name)
    verb = "patch" if req.method == "PATCH" else "update"
    req.authorize(verb, "pods", namespace=ns, name=name)
    dry = req.dry_run()
    cur = req.api.store.get("pods", ns, name)
    new = apply_patch(req.content_type, cur, req.body()) if req.method == "PATCH" else req.json()
    expect_rv = _precondition(new, cur, "pods", name)
    if (new.get("spec") or {}).get("ephemeralContainers") != cur["spec"].get("ephemeralContainers"):
        raise invalid(name, [field_error("spec", "FieldValueForbidden", "pod updates may not change fields other "
                                         "than `spec.containers[*].image`,`spec.initContainers[*].image`,"
                                         "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to "
                                         "existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to "
                                         "be set to 1 if it was previously negative)")])

    def mutate(o):  # only metadata labels/annotations are mutable here
        o["metadata"]["labels"] = (new.get("metadata") or {}).get("labels") or {}
        o["metadata"]["annotations"] = (new.get("metadata") or {}).get("annotations") or {}
    if dry:
        mutate(cur)
        return 200, cur
    return 200, req.api.store.update("pods", ns, name, mutate, expect_rv=expect_rv)


def pod_status(req: Request):
    ns, name = req.params["ns"], req.params["name"]
    req.authorize("get", "pods", "status", namespace=ns, name=name)
    return 200, req.api.store.get("pods", ns, name)


def pod_log(req: Request):
    ns, name = req.params["ns"], req.params["name"]
    req.authorize("get", "pods", "log", namespace=ns, name=name)
    pod = req.api.store.get("pods", ns, name)
    from .execstream import validate_exec
    cname = validate_exec(pod, req.q("container"))
    rt = req.api.kubelet.get(ns, name)
    c = rt.containers.get(cname) if rt else None
    if c is None or c.proc is None:
        reason = "ContainerCreating"
        for field in ("containerStatuses", "ephemeralContainerStatuses"):
            for s in (pod.get("status") or {}).get(field) or []:
                if s["name"] == cname and "waiting" in s.get("state", {}):
                    reason = s["state"]["waiting"].get("reason", reason)
        # kubelet validateContainerLogStatus: two reasons get their own words.
        why = {"ErrImagePull": "image can't be pulled",
               "ImagePullBackOff": "trying and failing to pull image"}.get(reason, reason)
        raise bad_request(f'container "{cname}" in pod "{name}" is waiting to start: {why}')
    data = c.log.read_bytes() if c.log.exists() else b""
    stamped = req.flag("timestamps") and c.io is not None
    lines = _log_lines(data, c.io.stamps if stamped else None)
    tail = req.q("tailLines")
    if tail.isdigit():
        lines = lines[-int(tail):] if int(tail) else []
    data = b"".join(lines)
    limit = req.q("limitBytes")
    if limit.isdigit():
        data = data[: int(limit)]
    if not req.flag("follow"):
        req.handler.send_bytes(200, data, "text/plain")
        return None
    h = req.handler
    h.start_chunked("text/plain")
    h.chunk(data)
    pos = c.log.stat().st_size if c.log.exists() else 0
    try:
        while True:
            with open(c.log, "rb") as f:
                f.seek(pos)
                more = f.read()
            if stamped:  # whole lines only, each with the time its first byte was written
                more = more[:more.rfind(b"\n") + 1]
                h.chunk(b"".join(_log_lines(more, c.io.stamps, pos)))
            else:
                h.chunk(more)
            pos += len(more)
            if not c.running:
                break
            time.sleep(0.2)
        h.end_chunked()
    except OSError:
        h.close_connection = True
    return None


def _log_lines(data: bytes, stamps, start: int = 0) -> list:
    """The log's lines; with `stamps` ((offset, time) of each chunk written) each gets the kubelet's
    `--timestamps` prefix: RFC 3339 with nanoseconds, trailing zeros dropped (Go's time.RFC3339Nano), a space."""
    import bisect
    import datetime

    lines = data.splitlines(keepends=True)
    if stamps is None:
        return lines
    offsets = [o for o, _ in stamps]
    out, pos = [], start
    for line in lines:
        i = max(0, bisect.bisect_right(offsets, pos) - 1)
        t = stamps[i][1] if stamps else time.time()
        dt = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
        frac = f"{int(round((t % 1) * 1e9)) % 1000000000:09d}".rstrip("0")
        out.append(dt.strftime("%Y-%m-%dT%H:%M:%S").encode() + (b"." + frac.encode() if frac else b"") + b"Z " + line)
        pos += len(line)
    return out


# -- nodes, services, endpoints -------------------------------------------------------------------------------------
def nodes(req: Request):
    return list_or_watch(req, "nodes")


def node(req: Request):
    return get_one(req, "nodes", "", req.params["name"])


def namespaced_list(resource: str):
    def fn(req: Request):
        return list_or_watch(req, resource, req.params.get("ns", ""))
    return fn


def namespaced_get(resource: str):
    def fn(req: Request):
        return get_one(req, resource, req.params["ns"], req.params["name"])
    return fn

