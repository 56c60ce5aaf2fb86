"""The API steps around the debug container: read the pod, reuse or add ours, wait until it runs.

The pure shapes live in `debug_container`; this module only talks to the API server, and turns every answer that
will not get better into one WhoseError (kubectl's `waitForContainer` waits forever on a pod that never pulls its
image; we fail fast and print the kubelet's `waiting.message` as it appears).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional
from urllib.parse import quote

from kubectl_whose.cluster.client import Cluster, translate_api_error
from kubectl_whose.cluster.debug_container import (
    DebugSpec, build_debug_container, build_patch, check_container_start, check_pod_running, debug_containers,
    find_reusable, find_starting, random_suffix, validate_target)
from kubectl_whose.errors import ExitCode, WhoseError

Say = Callable[[str], None]


@dataclass(frozen=True)
class DebugContainer:
    name: str
    image: str
    reused: bool
    expires_at: Optional[float]  # epoch seconds when its idle `sleep` ends
    capabilities: tuple = ()
    pod_shares_processes: bool = False  # the pod's shareProcessNamespace: every container's processes are visible
    pod_containers: tuple = ()  # the pod's containers, for messages that suggest -c


def read_pod(cluster: Cluster, pod: str) -> dict:
    """GET the pod as plain JSON; a 404 says whether the pod or the whole namespace is missing."""
    ns = cluster.namespace
    try:
        return cluster.rest.get(pod_path(ns, pod))
    except Exception as e:  # noqa: BLE001 - ApiException or a connection failure, translated below
        err = translate_api_error(e, action="read the pod", namespace=ns, pod=pod)
    if err.code == ExitCode.NOT_FOUND and _namespace_missing(cluster, ns):
        raise WhoseError(f'namespace "{ns}" not found; pass -n with an existing namespace '
                         f"(kubectl get namespaces lists them)", ExitCode.NOT_FOUND)
    raise err


def _namespace_missing(cluster: Cluster, ns: str) -> bool:
    try:
        cluster.rest.get(f"/api/v1/namespaces/{quote(ns)}")
    except Exception as e:  # noqa: BLE001
        return getattr(e, "status", None) == 404
    return False


class PodChanged(Exception):
    """409: the pod changed since it was read (another run may just have added its container)."""


def patch_debug_container(cluster: Cluster, pod: str, container: dict, dry_run: bool = False,
                          resource_version: Optional[str] = None) -> dict:
    query = {"dryRun": "All"} if dry_run else None
    try:
        return cluster.rest.patch(pod_path(cluster.namespace, pod) + "/ephemeralcontainers",
                                  build_patch(container, resource_version), "application/strategic-merge-patch+json",
                                  query)
    except Exception as e:  # noqa: BLE001
        if resource_version and getattr(e, "status", None) == 409:
            raise PodChanged() from None
        raise translate_api_error(e, action="add the debug container", namespace=cluster.namespace, pod=pod,
                                  subresource="ephemeralcontainers", verb="patch") from None


def ensure_debug_container(cluster: Cluster, pod: str, spec: DebugSpec, *, min_remaining: float = 60.0,
                           timeout: float = 120.0, suffix_fn: Callable[[], str] = random_suffix,
                           say: Optional[Say] = None, pod_obj: Optional[dict] = None) -> DebugContainer:
    """Reuse a running debug container of ours (same image, capabilities, target, enough lifetime left), or one
    another run has just added, or add one and wait until it runs. Ephemeral containers can never be removed,
    hence the reuse; the add is conditional on the pod as read, so runs started together add one container."""
    obj = pod_obj if pod_obj is not None else read_pod(cluster, pod)
    for _ in range(20):
        check_pod_running(obj)
        validate_target(obj, spec.target)
        now = time.time()
        found = find_reusable(obj, spec, now, min_remaining)
        if found is not None:
            cluster.log(1, f"reusing debug container {found.name} of pod {pod} (image {found.image}, "
                           f"{'+'.join(found.capabilities)}, target {found.target or 'none'}, "
                           f"{found.remaining(now):.0f} s of its lifetime left)")
            return DebugContainer(found.name, found.image, True, found.started_at + found.ttl_seconds,
                                  found.capabilities, *_process_facts(obj))
        starting = find_starting(obj, spec, min_remaining)
        if starting is not None:
            if say:
                say(f"waiting for debug container {starting.name}, which another run just added to pod {pod}")
            started = wait_for_running(cluster, pod, starting.name, spec.image, timeout, say, obj)
            return DebugContainer(starting.name, spec.image, True, started + (starting.ttl_seconds or 0),
                                  starting.capabilities, *_process_facts(obj))
        try:
            return _add(cluster, pod, obj, spec, timeout, suffix_fn, say)
        except PodChanged:
            cluster.log(1, f"pod {pod} changed while adding the debug container; reading it again")
            obj = read_pod(cluster, pod)
    raise WhoseError(f"pod {pod} kept changing while the debug container was being added (20 tries); run the "
                     f"command again", ExitCode.ERROR)


def _add(cluster: Cluster, pod: str, obj: dict, spec: DebugSpec, timeout: float, suffix_fn: Callable[[], str],
         say: Optional[Say]) -> DebugContainer:
    container = None
    for _ in range(10):  # a name collision is rare enough; retry with a new suffix, as kubectl does not
        try:
            container = build_debug_container(obj, spec, suffix_fn())
            break
        except ValueError:
            continue
    if container is None:
        raise WhoseError(f"10 random debug container names were all taken in pod {pod}; run the command again",
                         ExitCode.ERROR)
    patched = patch_debug_container(cluster, pod, container,
                                    resource_version=(obj.get("metadata") or {}).get("resourceVersion"))
    if say:  # said once the add landed: a run whose add lost a race to another's adds nothing
        say(f"added debug container {container['name']} (image {spec.image}, {'+'.join(spec.capabilities)}, "
            f"idle for {spec.ttl_seconds}s) to pod {pod}")
    started = wait_for_running(cluster, pod, container["name"], spec.image, timeout, say, patched)
    return DebugContainer(container["name"], spec.image, False, started + spec.ttl_seconds, spec.capabilities,
                          *_process_facts(obj))


def _process_facts(pod: dict) -> tuple:
    spec = pod.get("spec") or {}
    return bool(spec.get("shareProcessNamespace")), tuple(c.get("name", "") for c in spec.get("containers") or [])


def wait_for_running(cluster: Cluster, pod: str, name: str, image: str, timeout: float,
                     say: Optional[Say] = None, first: Optional[dict] = None) -> float:
    """Watch the pod until container `name` runs; returns when it started (epoch). Fails fast on image-pull and
    config errors, a finished pod or a terminated container; TIMEOUT after `timeout` s."""
    deadline = time.monotonic() + timeout
    seen_messages = set()

    def check(obj: dict) -> bool:
        for view in debug_containers(obj):
            if (view.name == name and view.state == "waiting" and view.message and say
                    and view.message not in seen_messages):
                seen_messages.add(view.message)
                say(f"container {name}: {view.reason}: {view.message}")
        return check_container_start(obj, name, image)

    obj = first
    if obj is not None and check(obj):
        return _started_at(obj, name)
    rv = ((obj or {}).get("metadata") or {}).get("resourceVersion")
    watch_ok = True
    while time.monotonic() < deadline:
        if watch_ok:
            try:
                got = _watch_once(cluster, pod, rv, deadline, check)
                if got is not None:
                    return _started_at(got, name)
                rv = None  # the watch ended (server timeout, 410 Gone): start again from a fresh read
            except WhoseError:
                raise
            except Exception:  # noqa: BLE001 - no watch permission or no watch support: poll instead
                watch_ok = False
        obj = read_pod(cluster, pod)
        if check(obj):
            return _started_at(obj, name)
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if not watch_ok:
            time.sleep(0.2)
    raise WhoseError(f"debug container {name} did not start within {timeout:g} s (image {image}); "
                     f"`kubectl whose ps {pod}` shows its state, --start-timeout waits longer", ExitCode.TIMEOUT)


def _watch_once(cluster: Cluster, pod: str, rv: Optional[str], deadline: float, check) -> Optional[dict]:
    """One watch on the pod (kubectl's `waitForContainer`: list+watch restricted to one name)."""
    left = max(1, int(deadline - time.monotonic()))
    query = {"fieldSelector": f"metadata.name={pod}", "timeoutSeconds": str(left)}
    if rv:
        query["resourceVersion"] = rv
    for event in cluster.rest.watch(f"/api/v1/namespaces/{quote(cluster.namespace)}/pods", query, left + 5):
        obj = event.get("object") or {}
        if event.get("type") == "ERROR":
            return None
        if event.get("type") == "DELETED":
            raise WhoseError(f'pod "{pod}" was deleted while the debug container was starting; pick a running pod '
                             f"(kubectl get pods -n {cluster.namespace})", ExitCode.NOT_FOUND)
        if event.get("type") in ("ADDED", "MODIFIED") and check(obj):
            return obj
        if time.monotonic() > deadline:
            return None
    return None


def pod_path(namespace: str, pod: str) -> str:
    return f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(pod)}"


def _started_at(obj: dict, name: str) -> float:
    for view in debug_containers(obj):
        if view.name == name and view.started_at:
            return view.started_at
    return time.time()
