"""What `net` runs in the debug container: one recipe per view, the file each is saved as, and its runner.

Parsing lives in `analysis.pod.netinfo` / `analysis.pod.sockets`. The file names are the
`--from-file DIR` contract: a directory holding these files goes through the same parser as a
live run, so `for r in RECIPES.values(): open(r.file, "w").write(run(r.argv))` on a node (or in
any debug shell) produces an offline input.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from kubectl_whose.collect.recipe import Recipe, missing_tool_error, run_all
from kubectl_whose.errors import ExitCode, WhoseError

# `ip -d` adds linkinfo.info_kind (veth, bridge, vxlan...). `table all` lists every routing table of
# both families (policy routing for TPROXY uses table 133); `ip rule` is per family, hence two runs.
# ss: -H no header, -t/-u TCP and UDP, -a listening and connected, -n numeric, -p processes (only
# those the debug container may see: with -c it shares that container's process namespace), -e uid,
# inode and socket cookie. Everything stays on one line per socket without -i/-m, so no -O: older
# ss builds lack it.
RECIPES: Dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("link", ("ip", "-d", "-j", "link", "show"), required=True, file="link.json"),
        Recipe("addr", ("ip", "-j", "addr", "show"), required=True, file="addr.json"),
        Recipe("route", ("ip", "-j", "route", "show", "table", "all"), file="route.json"),
        Recipe("rule", ("ip", "-j", "-4", "rule", "show"), file="rule.json"),
        Recipe("rule6", ("ip", "-j", "-6", "rule", "show"), file="rule6.json"),
        Recipe("neigh", ("ip", "-j", "neigh", "show"), file="neigh.json"),
        Recipe("sockets", ("ss", "-H", "-t", "-u", "-a", "-n", "-p", "-e"), file="ss.txt"),
    )
}
FILES = ", ".join(r.file for r in RECIPES.values())


@dataclass
class Collected:
    outputs: Dict[str, Optional[str]] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)
    sources: Dict[str, str] = field(default_factory=dict)  # recipe name -> file, for error messages
    view: Any = None  # analysis.pod.netinfo.ProcessView of a live run


def run(session) -> Collected:
    """Every recipe through `session.run` (a `cluster.session.DebugSession`); required ones must work."""
    got = Collected()
    for name, out in run_all(session, RECIPES.values()).items():
        recipe = out.recipe
        if out.missing:
            if recipe.required:
                raise missing_tool_error(recipe.binary, session.image, out.error, out.stderr)
            got.outputs[name] = None
            got.missing.append(f"{recipe.binary} is not in the debug image {session.image} ({name}); "
                               f"pass --image with one that has it")
            continue
        if out.exit_code != 0:
            if recipe.required:
                # `ip link show` itself does not fail; an `ip` that rejects -j/-d is busybox's applet or an
                # iproute2 older than 4.13 (2017), which had no JSON output
                raise WhoseError(f"`{' '.join(recipe.argv)}` failed in the debug image {session.image} "
                                 f"({out.why()}); it needs iproute2's ip with JSON output (-j): pass --image with "
                                 f"one", ExitCode.TOOL_MISSING)
            got.outputs[name] = None
            got.missing.append(f"{name}: `{' '.join(recipe.argv)}` failed: {out.why()}")
            continue
        got.outputs[name] = out.stdout
    return got


def read_saved(directory: str) -> Collected:
    """The outputs saved in DIR (`--from-file DIR`) or in one pod of a bundle (`FILE.tgz[#NS/POD]`); missing files
    are noted, not fatal, unless all are."""
    from kubectl_whose.analysis import bundle_file

    if bundle_file.is_bundle(directory):
        got = Collected()
        got.outputs = bundle_file.net_outputs(directory, {name: r.file for name, r in RECIPES.items()})
        got.sources = {name: f"{directory}:{RECIPES[name].file}" for name, v in got.outputs.items() if v is not None}
        got.missing = [f"{RECIPES[n].file} is not in {directory}" for n, v in got.outputs.items() if v is None]
        return got
    if not os.path.exists(directory):
        raise WhoseError(f"--from-file {directory}: no such directory", ExitCode.NOT_FOUND)
    if not os.path.isdir(directory):
        raise WhoseError(f"--from-file {directory} is a file; give the directory holding {FILES}",
                         ExitCode.BAD_INPUT)
    got = Collected()
    for name, recipe in RECIPES.items():
        path = os.path.join(directory, recipe.file)
        try:
            with open(path, encoding="utf-8") as f:
                got.outputs[name] = f.read()
            got.sources[name] = path
        except FileNotFoundError:
            got.outputs[name] = None
            got.missing.append(f"{recipe.file} is not in {directory}")
        except (OSError, UnicodeDecodeError) as e:
            raise WhoseError(f"{path}: cannot read it ({getattr(e, 'strerror', None) or e})",
                             ExitCode.BAD_INPUT) from None
    if all(v is None for v in got.outputs.values()):
        raise WhoseError(f"{directory} holds none of the files net reads ({FILES}); see --help",
                         ExitCode.BAD_INPUT)
    return got


def save(directory: str, got: Collected) -> None:
    """Write a live run's outputs in the `--from-file DIR` layout."""
    try:
        os.makedirs(directory, exist_ok=True)
        for name, text in got.outputs.items():
            if text is not None:
                with open(os.path.join(directory, RECIPES[name].file), "w", encoding="utf-8") as f:
                    f.write(text)
    except OSError as e:
        raise WhoseError(f"--save {directory}: cannot write there ({e.strerror})", ExitCode.BAD_INPUT) from None


def collect_live(kube, pod: Optional[str], debug, save_dir: Optional[str] = None, node=None,
                 node_name: Optional[str] = None):
    """Run every recipe in the pod's debug container (`debug`: `cluster.debug_choice.DebugFlags`), or on its node with
    --node (`node`: `cluster.debug_choice.NodeFlags`) or on `node_name`, saving them if asked. Returns (Collected,
    where it was seen from: None in the pod, else {"where": "node", "node", and the pod's host interface})."""
    from kubectl_whose.collect.node import debug_session, find_pod_interface

    from kubectl_whose.analysis.pod.netinfo import ProcessView

    seen_from = None
    with debug_session(kube, pod, debug, node, node_name) as (session, target):
        got = run(session)
        if target is not None:
            seen_from = {"where": "node", "node": target.node, "pod": target.pod}
            if target.pod:
                seen_from["host_interface"] = find_pod_interface(session, target).to_dict()
        else:
            c = session.container
            got.view = ProcessView(pod, c.pod_shares_processes, "SYS_PTRACE" in c.capabilities, c.pod_containers)
    if save_dir:
        save(save_dir, got)
    return got, seen_from
