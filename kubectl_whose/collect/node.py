"""What `--node` runs on the pod's node to find the pod's host-side interface (`analysis.pod.host_side`).

The recipes read the node's route to the pod, its links, its ARP table and its bridges' forwarding tables.
When those do not name a port (the node never talked to the pod, or its ARP cache holds a stale MAC of an
earlier pod with the same address), one ARP request from the node asks the pod itself (`arping`, sent on the
bridge before the capture starts); its answer also teaches the bridge the pod's port.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Optional

from kubectl_whose.collect.recipe import Recipe, binary_missing, missing_tool_error, run_all
from kubectl_whose.errors import WhoseError


def recipes(pod_ip: str):
    return (Recipe("route", ("ip", "-j", "route", "get", pod_ip), required=True),
            Recipe("links", ("ip", "-d", "-j", "link", "show"), required=True),
            Recipe("neigh", ("ip", "-j", "neigh", "show", "to", pod_ip)),
            Recipe("fdb", ("bridge", "-j", "fdb", "show")))


def find_pod_interface(session, target, interface: Optional[str] = None):
    """The node-side interface of `target` (`cluster.session.NodeTarget`): `interface` when the user named one
    (-i with --node), else found from the node's tables."""
    from kubectl_whose.analysis.pod.host_side import HostInterface, find_host_interface

    if interface and interface != "any":
        return HostInterface(interface, "given", f"-i {interface} given")

    def read():
        got = run_all(session, recipes(target.ip))
        for out in got.values():
            if out.missing and out.recipe.required:
                raise missing_tool_error(out.recipe.binary, session.image, out.error, out.stderr)
        return {name: out.stdout if out.exit_code == 0 else "" for name, out in got.items()}

    tables = read()
    try:
        return find_host_interface(target.ip, tables["route"], tables["links"], tables["neigh"], tables["fdb"],
                                   target.node)
    except WhoseError as e:
        bridge = bridge_of(tables["route"])
        if bridge is None:
            raise
        reply = session.run(["arping", "-c", "1", "-w", "2", "-I", bridge, target.ip], timeout=5)
        if reply.exit_code != 0 and binary_missing(reply.exit_code, reply.error):
            raise e
        tables = read()
        return find_host_interface(target.ip, tables["route"], tables["links"], tables["neigh"], tables["fdb"],
                                   target.node, arp_reply=reply.stdout.decode("utf-8", "replace"))


def bridge_of(route_get: str) -> Optional[str]:
    """The device of `ip -j route get`'s answer (a bridge when the CNI bridges)."""
    import json

    try:
        return (json.loads(route_get) or [{}])[0].get("dev")
    except (ValueError, AttributeError, IndexError):
        return None


@contextmanager
def debug_session(kube, pod: Optional[str], debug, node=None, node_name: Optional[str] = None,
                  ttl: Optional[float] = None, min_remaining: float = 60.0, say=None):
    """(session, None) in the pod's own debug container, or (session, `cluster.session.NodeTarget`) on its node
    with --node (`node`: `cluster.debug_choice.NodeFlags`) or on `node_name` (a `node/NAME` target)."""
    from kubectl_whose.chatter import say as stderr_say
    from kubectl_whose.cluster.session import open_debug_session, open_node_session

    say = stderr_say if say is None else say
    ttl = ttl if ttl is not None else debug.ttl
    if node_name or (node and node.node):
        with open_node_session(kube, None if node_name else pod, debug.image, ttl, node.namespace if node else None,
                               node=node_name, start_timeout=debug.start_timeout, say=say) as (session, target):
            yield session, target
        return
    with open_debug_session(kube, pod, debug.container, debug.image, ttl, min_remaining=min_remaining,
                            start_timeout=debug.start_timeout, say=say, ptrace=debug.ptrace) as session:
        yield session, None
