"""`kubectl whose doctor POD`: can kubectl-whose debug this pod? One row per check: pass/fail/warn and the fix.

The checks are `cluster.preflight`; nothing is changed. Exit code: 0 when nothing fails, else the code of the
first failing check (scripts can branch on it).
"""
from __future__ import annotations

import click

from kubectl_whose.cli.options import debug_flags, kube_flags, node_flags, output_option, pod_argument
from kubectl_whose.errors import ExitCode, WhoseError


@click.command("doctor")
@pod_argument()
@debug_flags(lifetime=False, container_help="The container capture would target (-c).", ptrace=True)
@node_flags
@output_option()
@kube_flags
def doctor(kube, debug, node, pod, output):
    """Preflight: RBAC, ephemeral-container support, PodSecurity and a dry run of the debug container, for POD.

    \b
    Examples:
      kubectl whose doctor my-pod
      kubectl whose doctor my-pod -n shop -o json
      kubectl whose doctor my-pod --node --node-namespace debug-tools
    """
    from kubectl_whose.cluster.preflight import run_checks
    from kubectl_whose.render.doctor_view import render_doctor
    from kubectl_whose.render.output import emit

    report = run_checks(kube, pod, debug.container, debug.image, node, debug.ptrace)
    emit(report, output, render_doctor)
    failed = [c for c in report.checks if c.result == "fail"]
    if failed:
        names = ", ".join(c.name for c in failed)
        raise WhoseError(f"{len(failed)} of {len(report.checks)} checks failed ({names}); the FIX of each says "
                         "what to do", ExitCode(failed[0].code or ExitCode.ERROR))
