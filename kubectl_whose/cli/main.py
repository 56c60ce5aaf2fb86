"""The `kubectl whose` command group.

Subcommands are imported only when invoked (click's lazy-group pattern), so `--help` and
`analyze` never import the Kubernetes client. `main` is the one place that maps failures to
a single `kubectl-whose: error: ...` line and an exit code (see `kubectl_whose.errors`).
"""
from __future__ import annotations

import importlib
import importlib.util  # not implied by `import importlib` (runpy, behind `python -m`, happened to load it)
import os
import sys

import click

from kubectl_whose import __version__
from kubectl_whose.cli.options import global_options
from kubectl_whose.errors import ExitCode, WhoseError

ISSUES_URL = "https://github.com/kubectl-whose/kubectl-whose/issues"  # krew-manifest.yaml's homepage

# name -> (module, attribute, one-line help). The only list of subcommands.
SUBCOMMANDS = {
    "analyze": ("kubectl_whose.cli.analyze", "analyze", "Summarise a pcap/pcapng file per stream, offline."),
    "capture": ("kubectl_whose.cli.capture", "capture", "Capture a pod's traffic from an ephemeral debug container."),
    "bundle": ("kubectl_whose.cli.capture", "bundle", "Capture pods and save all about them in one file."),
    "rules": ("kubectl_whose.cli.rules", "rules", "Show a pod's netfilter rules, explained."),
    "trace": ("kubectl_whose.cli.trace", "trace", "Trace a packet through a pod's netfilter rules."),
    "net": ("kubectl_whose.cli.net", "net", "Interfaces, routes, neighbours and sockets of a pod."),
    "doctor": ("kubectl_whose.cli.doctor", "doctor", "Preflight: can kubectl-whose debug this pod?"),
    "ps": ("kubectl_whose.cli.ps", "ps", "List the debug containers kubectl-whose added to a pod."),
    "completion": ("kubectl_whose.cli.completion", "completion", "Print a shell completion script (bash, zsh, fish)."),
    "version": ("kubectl_whose.cli.version", "version", "Print the version."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return [name for name, (mod, _, _) in SUBCOMMANDS.items() if _module_exists(mod)]

    def get_command(self, ctx, name):
        if name not in SUBCOMMANDS or not _module_exists(SUBCOMMANDS[name][0]):
            return None
        module, attr, _ = SUBCOMMANDS[name]
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx, formatter):
        # Short help without importing every subcommand module.
        rows = [(n, SUBCOMMANDS[n][2]) for n in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _module_exists(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    epilog="""\b
Examples:
  # Capture 10 s on every interface of a pod and summarise each TCP/UDP stream
  kubectl whose capture my-pod -i any --duration 10s
  # Save the raw capture too, byte-identical, or pipe it into Wireshark
  kubectl whose capture my-pod -i eth0 -w out.pcap
  kubectl whose capture my-pod -w - | wireshark -k -i -
  # The same summary offline, and one stream's TCP flag table
  kubectl whose analyze out.pcap
  kubectl whose analyze out.pcap --stream 3
  # Where does a packet to a Service go from this pod?
  kubectl whose trace my-pod --to 10.96.0.10:53 --proto udp
""",
)
@click.version_option(__version__, "--version", prog_name="kubectl-whose")
@global_options
def cli(**_global_flags):
    """Whose packet is it? Capture, summarise and explain a pod's traffic and netfilter rules.

    kubectl's flags (-n, --context, --kubeconfig, --request-timeout, -v) may come before the command, as with
    kubectl, or after it."""


def main(argv=None) -> None:
    """Console-script entry: run the group, turn every failure into one line and an exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    traceback = "--traceback" in args or os.environ.get("KUBECTL_WHOSE_TRACEBACK") == "1"
    if "--traceback" in args:
        args.remove("--traceback")
    try:
        # obj: the command line as typed, for the bundle's manifest
        code = cli.main(args=args, prog_name=_prog_name(), standalone_mode=False, obj={"argv": list(args)})
    except WhoseError as e:
        _print_error(str(e))
        code = e.code
    except SystemExit as e:
        # click turns EPIPE into exit 1 after wrapping stdout; `| head` closing the pipe is
        # a normal end for a command whose output was cut short on purpose.
        if isinstance(sys.stdout, click.utils.PacifyFlushWrapper):
            _silence_stdout()
            code = ExitCode.OK
        else:
            code = e.code
    except click.exceptions.Abort:
        code = ExitCode.INTERRUPTED
    except click.ClickException as e:
        e.show()
        code = e.exit_code
    except KeyboardInterrupt:
        code = ExitCode.INTERRUPTED
    except BrokenPipeError:
        # `| head` closed the pipe: end quietly, as cat and grep do.
        _silence_stdout()
        code = ExitCode.OK
    except Exception as e:  # noqa: BLE001 - the last line of defence against tracebacks
        if traceback:
            raise
        _print_error(f"kubectl-whose failed unexpectedly ({str(e) or type(e).__name__}); please report it at "
                     f"{ISSUES_URL} with the output of the same command rerun with --traceback")
        code = ExitCode.ERROR
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    sys.exit(int(code or 0))


def _prog_name() -> str:
    # kubectl runs plugins as kubectl-whose; users type "kubectl whose".
    return "kubectl whose"


def _print_error(message: str) -> None:
    from kubectl_whose.chatter import fit

    click.echo(fit(f"kubectl-whose: error: {message}", sys.stderr), err=True)


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
