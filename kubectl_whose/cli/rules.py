"""`kubectl whose rules POD`: the pod's netfilter rules (iptables legacy and nft, nftables), explained.

Live: the recipes in `collect.netfilter` run in the debug container; offline: `--from-file DUMP`
(iptables-save text, iptables -S text, `nft -j list ruleset` JSON, or a `--save` snapshot) goes
through the same parsing, recognition and rendering.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import click

from kubectl_whose.cli.options import DurationType, KubeFlags, kube_flags, output_option, pod_argument
from kubectl_whose.errors import ExitCode, WhoseError


def collect_rulesets(kube: KubeFlags, pod: str, container: Optional[str], image: Optional[str],
                     ttl: Optional[float]) -> Tuple[list, list, List[str]]:
    """Run every rule recipe in the pod's debug container: (rulesets with rules, findings, pod addresses)."""
    from kubectl_whose.cluster.session import open_debug_session

    with open_debug_session(kube, pod, container, image, ttl) as session:
        return collect_rulesets_in(session, kube.request_timeout)


def collect_rulesets_in(session, timeout: float) -> Tuple[list, list, List[str]]:
    """The same through a session already open (`capture` reuses its own)."""
    from kubectl_whose.collect.netfilter import (
        ADDRESS_RECIPE, RULE_RECIPES, VERSION_RECIPES, RecipeOutput, decide_backends, pod_addresses,
    )

    outputs, versions = [], {}
    for recipe in VERSION_RECIPES:
        r = session.run(list(recipe.argv), timeout=timeout)
        if r.exit_code == 0:
            versions[recipe.binary] = r.stdout.decode("utf-8", "replace").strip()
    for recipe in RULE_RECIPES:
        r = session.run(list(recipe.argv), timeout=timeout)
        outputs.append(RecipeOutput(recipe, r.stdout.decode("utf-8", "replace"),
                                    r.stderr.decode("utf-8", "replace"), r.exit_code, getattr(r, "error", None)))
    addr = session.run(list(ADDRESS_RECIPE.argv), timeout=timeout)
    if all(o.missing for o in outputs):
        raise WhoseError(f"the debug image {session.image} has none of iptables-legacy-save, iptables-nft-save, "
                         f"nft; pass --image with an image that carries them (e.g. nicolaka/netshoot)",
                         ExitCode.TOOL_MISSING)
    rulesets, findings = decide_backends(outputs, versions)
    ips = pod_addresses(addr.stdout.decode("utf-8", "replace")) if addr.exit_code == 0 else []
    return rulesets, findings, ips


def load_rules(kube: KubeFlags, pod: Optional[str], from_files: Sequence[str], table: Optional[str] = None,
               container: Optional[str] = None, image: Optional[str] = None,
               ttl: Optional[float] = None) -> Tuple[list, list, List[str]]:
    from kubectl_whose.analysis.netfilter import read_dump_file

    if from_files:
        rulesets = [rs for path in from_files for rs in read_dump_file(path, table)]
        return rulesets, [], []
    if not pod:
        raise click.UsageError("give a POD, or --from-file DUMP to read saved rules offline")
    return collect_rulesets(kube, pod, container, image, ttl)


def live_options(f):
    f = click.option("--ttl", type=DurationType(), default="10m", show_default=True,
                     help="How long the debug container idles before it exits (it is reused meanwhile).")(f)
    f = click.option("--image", metavar="IMAGE", help="Debug image carrying iptables/nft "
                                                      "(default: $KUBECTL_WHOSE_IMAGE or nicolaka/netshoot).")(f)
    f = click.option("-c", "--container", metavar="NAME",
                     help="Share this container's process namespace (targetContainerName).")(f)
    return f


@click.command("rules", epilog="""\b
Examples:
  # The pod's rules, with what wrote them and a summary in words
  kubectl whose rules my-pod
  # Only the nat table's OUTPUT path (Istio's ISTIO_OUTPUT -> ISTIO_REDIRECT)
  kubectl whose rules my-pod --table nat --chain OUTPUT
  # Snapshot before a NetworkPolicy, compare after
  kubectl whose rules my-pod --save before.rules
  kubectl whose rules my-pod --diff before.rules
  # A dump someone sent you (iptables-save, iptables -S or `nft -j list ruleset`)
  kubectl whose rules --from-file node-dump.txt -o json
""")
@pod_argument(required=False)
@click.option("--table", "-t", metavar="T", help="Show only this table (nat, filter, mangle, raw; or an nft table).")
@click.option("--chain", metavar="C", help="Show only this chain (and the chains it jumps to).")
@click.option("--save", "save", metavar="FILE", help="Write the rules to FILE (iptables-save text, or a JSON "
                                                     "snapshot when there are several dumps).")
@click.option("--diff", "diff", metavar="FILE", help="Compare the rules against a --save snapshot, chain by chain.")
@click.option("--from-file", "from_files", multiple=True, metavar="DUMP",
              help="Read rules from a dump instead of the pod (repeatable; '-' for stdin).")
@output_option()
@live_options
@kube_flags
def rules(kube, pod, table, chain, save, diff, from_files, output, container, image, ttl):
    """Show a pod's netfilter rules (iptables legacy and nft, nftables), explained.

    Custom chains are nested under the rule that jumps to them; the mesh, kube-proxy or CNI that
    wrote them is named; warnings iptables printed (legacy tables present, [unsupported revision])
    are shown as findings.
    """
    from kubectl_whose.analysis.netfilter import read_dump_file, save_snapshot
    from kubectl_whose.analysis.netfilter.diff import diff_rules
    from kubectl_whose.analysis.netfilter.report import build_report
    from kubectl_whose.render.output import emit
    from kubectl_whose.render.rules_view import render_rules

    rulesets, findings, _ = load_rules(kube, pod, from_files, table, container, image, ttl)
    _check_filters(rulesets, table, chain)
    if save:
        try:
            with open(save, "w") as f:
                f.write(save_snapshot(rulesets))
        except OSError as e:
            raise WhoseError(f"--save {save}: {e.strerror or e}", ExitCode.BAD_INPUT) from None
        click.echo(f"kubectl-whose: saved {sum(rs.rule_count() for rs in rulesets)} rules to {save}", err=True)
    if diff:
        before = read_dump_file(diff)
        result = diff_rules(before, rulesets)
        emit(result, output, lambda d, wide: _render_diff(d, diff))
        return
    report = build_report(rulesets, findings, table, chain)
    emit(report, output, lambda r, wide: render_rules(r, wide))


def _check_filters(rulesets, table: Optional[str], chain: Optional[str]) -> None:
    from kubectl_whose.analysis.netfilter.nft_json import NftRuleset

    tables, chains = set(), set()
    for rs in rulesets:
        if isinstance(rs, NftRuleset):
            for t in rs.tables:
                if table in (None, t.name, f"{t.family} {t.name}"):
                    tables.update({t.name, f"{t.family} {t.name}"})
                    chains.update(t.chains)
        else:
            for t in rs.tables.values():
                if table in (None, t.name):
                    tables.add(t.name)
                    chains.update(t.chains)
    if table and table not in tables:
        names = sorted({t.name for rs in rulesets for t in (rs.tables.values() if hasattr(rs.tables, "values")
                                                             else rs.tables)})
        raise WhoseError(f"--table {table}: no such table in these rules (tables: {', '.join(names) or 'none'})",
                         ExitCode.NOT_FOUND)
    if chain and chain not in chains:
        raise WhoseError(f"--chain {chain}: no such chain{' in table ' + table if table else ''} "
                         f"({len(chains)} chains; list them with `kubectl whose rules` without --chain)",
                         ExitCode.NOT_FOUND)


def _render_diff(result, path: str) -> None:
    from rich.markup import escape

    from kubectl_whose.render.output import make_console

    console = make_console()
    if result.identical:
        console.print(f"no difference from {escape(path)} (counters and ordering noise ignored)", soft_wrap=True)
        return
    console.print(f"[bold]{len(result.chains)} chain(s) differ from {escape(path)}[/bold]", soft_wrap=True)
    for c in result.chains:
        console.print(f"[bold]{escape(c.ruleset)} {escape(c.table)}/{escape(c.chain)}[/bold]: {c.status}"
                      + (f" (policy {c.policy[0]} -> {c.policy[1]})" if c.policy else ""))
        if c.status == "reordered":
            console.print("  rule order changed (same rules)")
            continue
        for r in c.removed:
            console.print(f"  [red]- {escape(r)}[/red]", soft_wrap=True)
        for r in c.added:
            console.print(f"  [green]+ {escape(r)}[/green]", soft_wrap=True)
