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


def _complete(lab, *words):
    env = {**__import__("os").environ, "KUBECONFIG": str(lab.kubeconfig)}
    out = subprocess.run(["kubectl", "__complete", "whose", *words], capture_output=True, text=True, timeout=60,
                         env=env)
    lines = out.stdout.splitlines()
    assert lines[-1] == ":4", out.stdout + out.stderr
    return [line.split("\t")[0] for line in lines[:-1]]


def test_real_kubectl_completes_namespaces_contexts_and_containers(lab):
    """-n from the API's namespaces, --context from the kubeconfig, -c from the pod's containers: the answers of
    real kubectl (`kubectl get namespaces`, `config get-contexts`, the pod's spec) are the oracle."""
    namespaces = lab.kubectl("get", "namespaces", "-o", "jsonpath={.items[*].metadata.name}").stdout.split()
    assert _complete(lab, "capture", "-n", "") == sorted(namespaces) and "kube-system" in namespaces
    assert _complete(lab, "-n", "kube-") == sorted(n for n in namespaces if n.startswith("kube-"))
    contexts = lab.kubectl("config", "get-contexts", "-o", "name").stdout.split()
    assert _complete(lab, "--context", "") == sorted(contexts) and contexts
    containers = lab.kubectl("get", "pod", "app-sidecar", "-o", "jsonpath={.spec.containers[*].name}").stdout.split()
    assert _complete(lab, "net", "app-sidecar", "-c", "") == sorted(containers) == ["app", "istio-proxy"]
    assert _complete(lab, "capture", "app-sidecar", "-c", "ist") == ["istio-proxy"]


def test_pod_completion_reads_global_flags_before_the_subcommand(lab):
    with lab.isolated_namespace() as ns:
        lab.create_pod(ns, "lonely")
        assert _complete(lab, "-n", ns, "capture", "") == ["lonely"]
        assert _complete(lab, "capture", "-n", ns, "lo") == ["lonely"]
