import shutil
import subprocess

import pytest

from tests.helpers.cli import run


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


def test_real_kubectl_completes_pod_names_from_the_cluster(lab):
    env = {**__import__("os").environ, "KUBECONFIG": str(lab.kubeconfig)}
    out = subprocess.run(["kubectl", "__complete", "whose", "capture", "echo-"], capture_output=True, text=True,
                         timeout=60, env=env)
    names = [line.split("\t")[0] for line in out.stdout.splitlines()[:-1]]
    expected = sorted(p for p in lab.pods if p.startswith("echo-"))
    assert names == expected and len(expected) == 3, out.stdout + out.stderr
    assert out.stdout.splitlines()[-1] == ":4"


def test_pod_completion_is_silent_without_a_cluster(tmp_path):
    env = {"PATH": __import__("os").environ["PATH"], "KUBECONFIG": str(tmp_path / "missing"), "HOME": str(tmp_path)}
    out = subprocess.run(["kubectl_complete-whose", "capture", ""], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0 and out.stdout == ":4\n" and out.stderr == ""
