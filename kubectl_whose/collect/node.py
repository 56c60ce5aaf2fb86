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
        enter = bool(node and node.enter and not node_name)
        with open_node_session(kube, None if node_name else pod, debug.image, ttl, node.namespace if node else None,
                               node=node_name, start_timeout=debug.start_timeout, say=say,
                               enter=enter) as (session, target):
            if enter:  # from here on, as inside the pod: its own interfaces, lo included
                pid, why = find_pod_netns(session, target)
                say(f"entered the network namespace of pod {target.pod} from node {target.node}: {why}")
                yield session.entered(pid), None
            else:
                yield session, target
        return
    with open_debug_session(kube, pod, debug.container, debug.image, ttl, min_remaining=min_remaining,
                            start_timeout=debug.start_timeout, say=say, ptrace=debug.ptrace) as session:
        yield session, None


# A fixed script, the pod's address its only argument: one process per network namespace of the node, and the
# namespace whose interfaces hold that address.
_FIND_NETNS = (
    'want="$1"; seen=" "; n=0; '
    'for d in /proc/[0-9]*; do '
    'ns=$(ls -l "$d/ns/net" 2>/dev/null) || continue; ns=${ns##* }; '
    'case "$seen" in *" $ns "*) continue;; esac; seen="$seen$ns "; n=$((n+1)); p=${d#/proc/}; '
    'if nsenter -t "$p" -n ip -o addr show 2>/dev/null | grep -qF " $want/"; then echo "$p $ns"; fi; '
    'done; echo "namespaces $n"'
)


def find_pod_netns(session, target) -> tuple:
    """(host PID of a process in the pod's network namespace, why): the namespace whose interfaces carry the pod's
    address, found among every network namespace of the node (hostPID shows all their processes)."""
    from kubectl_whose.errors import ExitCode, WhoseError

    r = session.run(["sh", "-c", _FIND_NETNS, "sh", target.ip], timeout=60)
    lines = r.stdout.decode("utf-8", "replace").split("\n")
    found = [ln.split() for ln in lines if ln and not ln.startswith("namespaces ")]
    looked = next((ln.split()[1] for ln in lines if ln.startswith("namespaces ")), "0")
    if r.exit_code == 127 or (r.error and "not found" in r.error):
        raise WhoseError(f"the debug image {session.image} lacks sh, ls, grep, nsenter or ip, which --node-nsenter "
                         f"needs; pass --image with one that has them (default nicolaka/netshoot:v0.13)",
                         ExitCode.TOOL_MISSING)
    if len(found) != 1:
        many = ", ".join(f"process {f[0]} ({f[1]})" for f in found)
        raise WhoseError(f"{'no' if not found else len(found)} network namespaces of node {target.node} carry pod "
                         f"{target.pod}'s address {target.ip} (looked at {looked}{': ' + many if many else ''}); "
                         f"drop --node-nsenter to capture on the pod's host-side interface", ExitCode.NOT_FOUND)
    pid, ns = found[0]
    return int(pid), (f"process {pid} is in {ns}, the namespace whose interfaces carry {target.ip} (of {looked} "
                      f"namespaces)")
