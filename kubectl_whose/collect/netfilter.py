"""What to run in the pod to read its netfilter rules: every save tool of both iptables backends and nft.

The recipes only print; `analysis.netfilter.backends` decides which dumps hold the rules and
`analysis.netfilter` parses them, exactly as it parses a `--from-file` dump.
"""
from __future__ import annotations

import gc
from typing import Dict, List, Optional, Sequence, Tuple

from kubectl_whose.collect.recipe import Output, Recipe, run_all
from kubectl_whose.errors import ExitCode, WhoseError

# recipe name -> (backend, family) of the rules its dump holds
BACKENDS: Dict[str, Tuple[str, str]] = {
    "iptables-legacy-save": ("legacy", "ipv4"),
    "iptables-nft-save": ("nft", "ipv4"),
    "ip6tables-legacy-save": ("legacy", "ipv6"),
    "ip6tables-nft-save": ("nft", "ipv6"),
    "nft": ("nftables", "any"),
}
RULE_RECIPES: Tuple[Recipe, ...] = (
    Recipe("iptables-legacy-save", ("iptables-legacy-save", "-c")),
    Recipe("iptables-nft-save", ("iptables-nft-save", "-c")),
    Recipe("ip6tables-legacy-save", ("ip6tables-legacy-save", "-c")),
    Recipe("ip6tables-nft-save", ("ip6tables-nft-save", "-c")),
    Recipe("nft", ("nft", "-j", "list", "ruleset")),
)
VERSION_RECIPES: Tuple[Recipe, ...] = tuple(
    Recipe(f"{r.name} --version", (r.binary, "--version")) for r in RULE_RECIPES)
ADDRESS_RECIPE = Recipe("addresses", ("ip", "-o", "addr", "show"))


def dump_of(output: Output):
    """A rule recipe's output as `analysis.netfilter.backends.Dump`."""
    from kubectl_whose.analysis.netfilter.backends import Dump

    backend, family = BACKENDS[output.recipe.name]
    return Dump(output.recipe.name, output.recipe.binary, backend, family, output.stdout, output.stderr,
                output.exit_code, output.missing)


def collect_rulesets(session, timeout: float) -> Tuple[list, list, List[str]]:
    """Every rule recipe in the session's debug container: (rulesets with rules, findings, pod addresses)."""
    from kubectl_whose.analysis.netfilter.backends import decide_backends
    from kubectl_whose.analysis.pod.netinfo import pod_addresses

    versions = {o.recipe.binary: o.stdout.strip() for o in run_all(session, VERSION_RECIPES, timeout).values()
                if o.exit_code == 0}
    outputs = list(run_all(session, RULE_RECIPES, timeout).values())
    addr = run_all(session, (ADDRESS_RECIPE,), timeout)[ADDRESS_RECIPE.name]
    if all(o.missing for o in outputs):
        from kubectl_whose.cluster.image import DEFAULT_IMAGE

        raise WhoseError(f"the debug image {session.image} has none of iptables-legacy-save, iptables-nft-save, "
                         f"nft; pass --image with an image that carries them (e.g. {DEFAULT_IMAGE})",
                         ExitCode.TOOL_MISSING)
    rulesets, findings = decide_backends([dump_of(o) for o in outputs], versions)
    return rulesets, findings, pod_addresses(addr.stdout) if addr.exit_code == 0 else []


def _long_lived(parse):
    """Parse rule dumps with the cyclic collector paused, then freeze what they built: a 55,000-rule dump is
    ~400,000 objects that live until the command ends, and the collector walked them again and again while they
    were made and while the report and JSON were. The model holds no reference cycles (a parsed 55,000-rule dump
    leaves none to collect), so reference counting still frees it once the command lets go of it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return parse()
    finally:
        if enabled:
            gc.enable()
        gc.freeze()


def load_rules(kube, pod: Optional[str], from_files: Sequence[str], table: Optional[str], debug, node=None,
               node_name: Optional[str] = None) -> Tuple[list, list, List[str], object]:
    """The rules of `--from-file` dumps, else of the pod (`debug`: `cluster.debug_choice.DebugFlags`), else of its
    node (`node`: `cluster.debug_choice.NodeFlags` with --node) or of `node_name` (`node/NAME`); with the namespace's
    addresses and its routing (`trace.routing.Routing`, None when unknown): `ip -j` dumps or a bundle among the
    files, or read in the same session."""
    if from_files:
        from kubectl_whose.analysis.netfilter import read_dump_file
        from kubectl_whose.analysis.netfilter.trace.routing import routing_from_files
        from kubectl_whose.analysis.pod.netinfo import own_addresses

        rule_files, routing = routing_from_files(from_files)
        addresses = own_addresses(ip for _, ip, _ in routing.addresses) if routing is not None else []
        return _long_lived(lambda: [rs for path in rule_files for rs in read_dump_file(path, table)]), [], \
            addresses, routing
    from kubectl_whose.collect.node import debug_session

    with debug_session(kube, pod, debug, node, node_name) as (session, _target):
        rulesets, findings, addresses = collect_rulesets(session, kube.request_timeout)
        return rulesets, findings, addresses, collect_routing(session)


def collect_routing(session):
    """The session's addresses, routes and policy rules (`net`'s recipes), for `trace`'s routing decision."""
    from kubectl_whose.analysis.netfilter.trace.routing import Routing
    from kubectl_whose.analysis.pod.netinfo import build_netinfo
    from kubectl_whose.collect.netinfo import RECIPES

    wanted = [RECIPES[n] for n in ("addr", "route", "rule", "rule6")]
    outputs = {name: o.stdout for name, o in run_all(session, wanted).items() if o.exit_code == 0}
    return Routing.from_netinfo(build_netinfo(outputs)) if outputs.get("addr") and outputs.get("route") else None


def load_trace_inputs(kube, pod: Optional[str], from_files: Sequence[str], debug, node=None,
                      node_name: Optional[str] = None):
    """(rulesets, the namespace's addresses, its routing or None) for `trace`, from files or from one session."""
    if from_files:
        from kubectl_whose.analysis.netfilter import read_dump_file
        from kubectl_whose.analysis.netfilter.trace.routing import routing_from_files
        from kubectl_whose.analysis.pod.netinfo import own_addresses

        rule_files, routing = routing_from_files(from_files)
        # an `ip -j addr` dump among the files (a bundle holds one) says the namespace's own addresses
        addresses = own_addresses(ip for _, ip, _ in routing.addresses) if routing is not None else []
        return _long_lived(lambda: [rs for path in rule_files for rs in read_dump_file(path)]), addresses, routing
    from kubectl_whose.collect.node import debug_session

    with debug_session(kube, pod, debug, node, node_name) as (session, _target):
        rulesets, _findings, addresses = collect_rulesets(session, kube.request_timeout)
        return rulesets, addresses, collect_routing(session)
