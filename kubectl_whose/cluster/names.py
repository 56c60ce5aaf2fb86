"""Names for shell completion: running pods, namespaces, kubeconfig contexts, a pod's containers.

Each asks with a short timeout and returns [] on any failure: completion must never print an error into the
shell. `kube` is `cli.options.KubeFlags` (its request timeout is replaced by 3 s).
"""
from __future__ import annotations

import os
from dataclasses import replace
from typing import List

COMPLETION_TIMEOUT = 3.0


def _cluster(kube):
    from kubectl_whose.cluster.client import connect

    return connect(replace(kube, request_timeout=COMPLETION_TIMEOUT, verbosity=0))


def running_pods(kube) -> List[str]:
    try:
        cluster = _cluster(kube)
        pods = cluster.rest.get(f"/api/v1/namespaces/{cluster.namespace}/pods",
                                {"fieldSelector": "status.phase=Running"})
    except Exception:  # noqa: BLE001 - no cluster, no completion
        return []
    return [item["metadata"]["name"] for item in pods.get("items", [])]


def namespaces(kube) -> List[str]:
    try:
        listed = _cluster(kube).rest.get("/api/v1/namespaces")
    except Exception:  # noqa: BLE001 - no cluster (or no right to list namespaces), no completion
        return []
    return [item["metadata"]["name"] for item in listed.get("items", [])]


def contexts(kube) -> List[str]:
    """The contexts of the kubeconfig kubectl would read (no API call)."""
    try:
        from kubectl_whose.cluster.kubeconfig import kubeconfig_files, merge_kubeconfigs

        merged = merge_kubeconfigs(kubeconfig_files(kube.kubeconfig, os.environ))
    except Exception:  # noqa: BLE001 - no kubeconfig, no completion
        return []
    return [c["name"] for c in merged.get("contexts") or [] if c.get("name")]


def containers(kube, pod: str) -> List[str]:
    """The containers and init containers of `pod` (what -c takes)."""
    if not pod:
        return []
    try:
        cluster = _cluster(kube)
        spec = cluster.rest.get(f"/api/v1/namespaces/{cluster.namespace}/pods/{pod}").get("spec") or {}
    except Exception:  # noqa: BLE001 - no cluster, no completion
        return []
    return [c.get("name", "") for key in ("containers", "initContainers") for c in spec.get(key) or []]
