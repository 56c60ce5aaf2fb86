"""Shell completion: `kubectl whose completion bash|zsh|fish`, and kubectl's plugin completion.

Two ways in, one engine (click's):
- `kubectl-whose` typed directly: the script printed by `completion SHELL`, sourced by the shell.
- `kubectl whose <TAB>`: kubectl (1.26+) runs `kubectl_complete-whose ARGS... INCOMPLETE` from
  PATH and expects cobra's protocol: one candidate per line (`value<TAB>help`), then a line
  `:<directive>` (4 = no file completion, 0 = let the shell complete file names).
"""
from __future__ import annotations

import sys

import click

SHELLS = ("bash", "zsh", "fish")
_COMPLETE_VAR = "_KUBECTL_WHOSE_COMPLETE"


@click.command(epilog="""\b
Examples:
  # bash, for this shell and every new one
  source <(kubectl-whose completion bash)
  echo 'source <(kubectl-whose completion bash)' >> ~/.bashrc
  # zsh
  kubectl-whose completion zsh > "${fpath[1]}/_kubectl-whose"
  # fish
  kubectl-whose completion fish > ~/.config/fish/completions/kubectl-whose.fish
  # `kubectl whose <TAB>` (kubectl 1.26+): put kubectl_complete-whose on PATH
  # (pip installs it; with krew: ln -s "$(command -v kubectl-whose)" ~/.krew/bin/kubectl_complete-whose)
""")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell):
    """Print the shell completion script for SHELL (bash, zsh or fish)."""
    from click.shell_completion import get_completion_class

    from kubectl_whose.cli.main import cli

    comp_cls = get_completion_class(shell)
    click.echo(comp_cls(cli, {}, "kubectl-whose", _COMPLETE_VAR).source())


def kubectl_complete(argv=None) -> None:
    """Entry point of `kubectl_complete-whose` (cobra's __complete protocol)."""
    from click.shell_completion import ShellComplete

    from kubectl_whose.cli.main import cli

    args = list(sys.argv[1:] if argv is None else argv)
    incomplete = args.pop() if args else ""
    try:
        items = ShellComplete(cli, {}, "kubectl-whose", _COMPLETE_VAR).get_completions(args, incomplete)
    except Exception:  # noqa: BLE001 - completion must never print a traceback into the shell
        items = []
    directive = 4
    for item in items:
        if item.type in ("file", "dir"):
            directive = 0
            continue
        help_text = (item.help or "").splitlines()[0] if item.help else ""
        sys.stdout.write(f"{item.value}\t{help_text}\n" if help_text else f"{item.value}\n")
    sys.stdout.write(f":{directive}\n")
