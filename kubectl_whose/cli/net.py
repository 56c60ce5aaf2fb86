"""`kubectl whose net POD`: interfaces, routes, rules, neighbours and sockets of a pod, with socket owners.

Live: runs the `collect.netinfo` recipes (`ip -j ...`, `ss -H -tuanpe`) in the debug container, which
shares the pod's network namespace. Offline: `--from-file DIR` reads the same outputs saved as files,
through the same parser. `--save DIR` writes a live run's raw outputs in that layout.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import click

from kubectl_whose.cli.options import kube_flags, output_option, pod_argument
from kubectl_whose.collect.netinfo import RECIPES
from kubectl_whose.errors import ExitCode, WhoseError

_FILES = "\n".join(f"  {r.file:<11} {' '.join(r.argv)}" for r in RECIPES.values())


@dataclass
class NetOptions:
    pod: Optional[str]
    container: Optional[str]
    from_dir: Optional[str]
    save_dir: Optional[str]
    image: Optional[str]
    output: str

    def validate(self) -> None:
        if self.pod and self.from_dir:
            raise click.UsageError("give a POD or --from-file DIR, not both")
        if not self.pod and not self.from_dir:
            raise click.UsageError("give a POD, or --from-file DIR with saved outputs (see --help)")
        if self.save_dir and self.from_dir:
            raise click.UsageError("--save writes a live run's outputs; it cannot be combined with --from-file")


@dataclass
class Collected:
    outputs: Dict[str, Optional[str]] = field(default_factory=dict)
    missing: List[str] = field(default_factory=list)
    sources: Dict[str, str] = field(default_factory=dict)  # recipe name -> file, for error messages


@click.command("net", epilog=f"""\b
Files read by --from-file DIR (and written by --save DIR), each the stdout of:
{_FILES}
Missing files are reported and skipped; at least one must be there.
\b
Examples:
  kubectl whose net my-pod                 # as the debug container sees the pod's network namespace
  kubectl whose net my-pod -c app -o wide  # -c: that container's processes own the sockets they show
  kubectl whose net --from-file ./saved -o json
""")
@pod_argument(required=False)
@click.option("-c", "--container", metavar="NAME",
              help="Share this container's process namespace, so its sockets show their processes.")
@click.option("--from-file", "from_dir", metavar="DIR", help="Read saved outputs from DIR (offline; file names below).")
@click.option("--save", "save_dir", metavar="DIR", help="Also write the raw outputs to DIR (for --from-file later).")
@click.option("--image", metavar="IMAGE", help="Debug image (default: $KUBECTL_WHOSE_IMAGE, config file, "
                                               "nicolaka/netshoot:v0.13).")
@output_option()
@kube_flags
def net(kube, pod, container, from_dir, save_dir, image, output):
    """Interfaces, routes, rules, neighbours and sockets of POD, and who owns each socket.

    The veth peer index of eth0@ifNN is the node-side interface index; socket owners are named by
    process (with -c) or by uid: 1337 is Istio's proxy, 2102 Linkerd's.
    """
    opts = NetOptions(pod, container, from_dir, save_dir, image, output)
    opts.validate()
    collected = read_saved(from_dir) if from_dir else collect_live(kube, opts)
    from kubectl_whose.analysis.pod.netinfo import build_netinfo
    from kubectl_whose.render.net_view import render_net
    from kubectl_whose.render.output import emit

    info = build_netinfo(collected.outputs, container=container, missing=collected.missing,
                         sources=collected.sources)
    emit(info, output, lambda data, wide: render_net(data, wide))


def read_saved(directory: str) -> Collected:
    if not os.path.exists(directory):
        raise WhoseError(f"--from-file {directory}: no such directory", ExitCode.NOT_FOUND)
    if not os.path.isdir(directory):
        raise WhoseError(f"--from-file {directory} is a file; give the directory holding "
                         f"{', '.join(r.file for r in RECIPES.values())}", ExitCode.BAD_INPUT)
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
        raise WhoseError(f"{directory} holds none of the files net reads "
                         f"({', '.join(r.file for r in RECIPES.values())}); see --help", ExitCode.BAD_INPUT)
    return got


def collect_live(kube, opts: NetOptions) -> Collected:
    from kubectl_whose.cluster.session import open_debug_session

    with open_debug_session(kube, opts.pod, opts.container, opts.image) as session:
        got = run_recipes(session)
    if opts.save_dir:
        save_outputs(opts.save_dir, got)
    return got


def run_recipes(session) -> Collected:
    """Every recipe through `session.run` (a `cluster.session.DebugSession`); required ones must work."""
    from kubectl_whose.cluster.session import tool_missing

    got = Collected()
    for name, recipe in RECIPES.items():
        result = session.run(list(recipe.argv), timeout=30)
        missing = tool_missing(result, recipe.binary, session.image)
        if missing is not None:
            if recipe.required:
                raise missing
            got.outputs[name] = None
            got.missing.append(f"{recipe.binary} is not in the debug image {session.image} ({name}); "
                               f"pass --image with one that has it")
            continue
        if result.exit_code != 0:
            words = (result.stderr.decode("utf-8", "replace").strip() or result.error or "").splitlines()
            why = words[0] if words else f"exit code {result.exit_code}"
            if recipe.required:
                # `ip link show` itself does not fail; an `ip` that rejects -j/-d is busybox's applet or an
                # iproute2 older than 4.13 (2017), which had no JSON output
                raise WhoseError(f"`{' '.join(recipe.argv)}` failed in the debug image {session.image} ({why}); "
                                 f"it needs iproute2's ip with JSON output (-j): pass --image with one",
                                 ExitCode.TOOL_MISSING)
            got.outputs[name] = None
            got.missing.append(f"{name}: `{' '.join(recipe.argv)}` failed: {why}")
            continue
        got.outputs[name] = result.stdout.decode("utf-8", "replace")
    return got


def save_outputs(directory: str, got: Collected) -> None:
    try:
        os.makedirs(directory, exist_ok=True)
        for name, text in got.outputs.items():
            if text is not None:
                with open(os.path.join(directory, RECIPES[name].file), "w", encoding="utf-8") as f:
                    f.write(text)
    except OSError as e:
        raise WhoseError(f"--save {directory}: cannot write there ({e.strerror})", ExitCode.BAD_INPUT) from None
