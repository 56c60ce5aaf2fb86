import shutil
import subprocess

import pytest

from tests.cli import run


@pytest.mark.parametrize("shell,marker", [("bash", "complete -o nosort"), ("zsh", "compdef"), ("fish", "complete")])
def test_completion_scripts_are_clicks_for_each_shell(shell, marker):
    r = run("completion", shell)
    assert r.code == 0 and marker in r.stdout and "_KUBECTL_WHOSE_COMPLETE" in r.stdout


def test_completion_rejects_unknown_shell_listing_the_choices():
    r = run("completion", "tcsh")
    assert r.code == 2 and "bash" in r.stderr and "fish" in r.stderr


@pytest.mark.skipif(not shutil.which("kubectl_complete-whose"), reason="needs `pip install -e .` (scripts/test.sh does it)")
def test_real_kubectl_completes_plugin_subcommands_through_kubectl_complete_whose():
    out = subprocess.run(["kubectl", "__complete", "whose", "vers"], capture_output=True, text=True, timeout=30)
    lines = out.stdout.splitlines()
    assert any(line.startswith("version") for line in lines), out.stdout + out.stderr
    assert lines[-1] == ":4"
