"""`kubectl whose rules POD`: the pod's netfilter rules (iptables legacy and nft, nftables), explained.

Live: the recipes in `collect.netfilter` run in the debug container; offline: `--from-file DUMP`
(iptables-save text, iptables -S text, `nft list ruleset` text or `-j` JSON, or a `--save` snapshot) goes
through the same parsing, recognition, summary and rendering.
"""
from __future__ import annotations

import click

from kubectl_whose.cli.options import (EndpointType, debug_flags, kube_flags, node_flags, output_option,
                                       pod_argument, split_target)


def require_pod_or_files(pod, from_files) -> None:
    if not pod and not from_files:
        raise click.UsageError("give a POD, or --from-file DUMP to read saved rules offline")


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
  # The node's kube-proxy and CNI rules, from a short-lived node debug pod
  kubectl whose rules my-pod --node
  kubectl whose rules node/worker-2 --table nat
""")
@pod_argument(required=False)
@click.option("--table", "-t", metavar="T", help="Show only this table (nat, filter, mangle, raw; or an nft table).")
@click.option("--chain", metavar="C", help="Show only this chain (and the chains it jumps to).")
@click.option("--save", "save", metavar="FILE", help="Write the rules to FILE (iptables-save text, or a JSON "
                                                     "snapshot when there are several dumps).")
@click.option("--diff", "diff", metavar="FILE", help="Compare the rules against a --save snapshot, chain by chain.")
@click.option("--from-file", "from_files", multiple=True, metavar="DUMP",
              help="Read rules from a dump instead of the pod (repeatable; '-' for stdin).")
@click.option("--local-ip", "--pod-ip", "pod_ips", multiple=True, type=EndpointType(), metavar="IP",
              help="The addresses of this host (the pod's or node's), which the summary's probes use (repeatable).")
@output_option()
@debug_flags()
@node_flags
@kube_flags
def rules(kube, debug, node, pod, table, chain, save, diff, from_files, pod_ips, output):
    """Show a pod's netfilter rules (iptables legacy and nft, nftables), explained; with --node or node/NAME,
    the node's (kube-proxy, CNI).

    Custom chains are nested under the rule that jumps to them; the mesh, kube-proxy or CNI that
    wrote them is named; warnings iptables printed (legacy tables present, [unsupported revision])
    are shown as findings.
    """
    from kubectl_whose.analysis.netfilter.diff import diff_rules
    from kubectl_whose.analysis.netfilter.load import check_filters, read_dump_file, write_snapshot
    from kubectl_whose.analysis.netfilter.report import build_report
    from kubectl_whose.chatter import say
    from kubectl_whose.collect.netfilter import load_rules
    from kubectl_whose.render.diff_view import render_diff
    from kubectl_whose.render.output import emit
    from kubectl_whose.render.rules_view import render_rules

    require_pod_or_files(pod, from_files)
    pod, node_name = split_target(pod)
    rulesets, findings, live_ips, routing = load_rules(kube, pod, from_files, table, debug, node, node_name)
    check_filters(rulesets, table, chain)
    if save:
        say(f"saved {write_snapshot(save, rulesets)} rules to {save}")
    if diff:
        emit(diff_rules(read_dump_file(diff), rulesets), output, lambda d, wide: render_diff(d, diff))
        return
    report = build_report(rulesets, findings, table, chain, tuple(e.ip for e in pod_ips) or live_ips, routing)
    emit(report, output, lambda r, wide: render_rules(r, wide))
