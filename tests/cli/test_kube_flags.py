"""kubectl's habits: its global flags before the subcommand as well as after, -v/--v=N, --request-timeout's forms."""
from __future__ import annotations

import click
import pytest

from kubectl_whose.cli.options import DEFAULT_REQUEST_TIMEOUT, KubeFlags, RequestTimeoutType, VerbosityType
from kubectl_whose.errors import ExitCode
from tests.helpers.cli import run


@pytest.mark.parametrize("text, seconds", [("0", 0.0), ("30", 30.0), ("30s", 30.0), ("1m", 60.0), ("1m30s", 90.0),
                                            ("500ms", 0.5), ("1h", 3600.0), ("1.5s", 1.5)])
def test_request_timeout_takes_kubectls_forms(text, seconds):
    assert RequestTimeoutType().convert(text, None, None) == seconds


@pytest.mark.parametrize("text", ["1.5", "-1", "abc", "30x", "1m 30s", ""])
def test_request_timeout_refuses_what_kubectl_refuses(text):
    """The oracle is kubectl 1.3x: `kubectl --request-timeout=1.5 get pods` says "Invalid timeout value"."""
    with pytest.raises(click.BadParameter):
        RequestTimeoutType().convert(text, None, None)


def test_a_bad_request_timeout_is_a_usage_error_naming_the_forms():
    r = run("--request-timeout=1.5", "ps", "p")
    assert r.code == ExitCode.USAGE
    assert ("Invalid value for '--request-timeout': '1.5' is not a timeout: give a whole number of seconds, or a "
            "number with a unit (e.g. 30s, 1m, 1m30s; 0 waits forever)") in r.stderr


@pytest.mark.parametrize("text, level", [("6", 6), ("=6", 6), ("0", 0), ("10", 10)])
def test_verbosity_forms(text, level):
    assert VerbosityType().convert(text, None, None) == level


def _kube_of(*args):
    """The KubeFlags a command would get, from a real click parse of the whole command line (the group's global
    flags are the ones `kubectl whose` declares)."""
    from kubectl_whose.cli.options import global_options, kube_flags

    seen = {}

    @click.group()
    @global_options
    def group(**_):
        pass

    @group.command("probe")
    @kube_flags
    def probe(kube):
        seen["kube"] = kube

    group.main(list(args), standalone_mode=False)
    return seen["kube"]


@pytest.mark.parametrize("args, want", [
    (["-n", "shop", "probe"], KubeFlags("shop", None, None, DEFAULT_REQUEST_TIMEOUT, 0)),
    (["probe", "-n", "shop"], KubeFlags("shop", None, None, DEFAULT_REQUEST_TIMEOUT, 0)),
    (["--context", "c", "--kubeconfig", "k", "probe"], KubeFlags(None, "c", "k", DEFAULT_REQUEST_TIMEOUT, 0)),
    (["-n", "a", "probe", "-n", "b"], KubeFlags("b", None, None, DEFAULT_REQUEST_TIMEOUT, 0)),  # nearest wins
    (["--request-timeout", "1m", "-v=6", "probe"], KubeFlags(None, None, None, 60.0, 6)),
    (["probe", "--v=1", "--request-timeout=0"], KubeFlags(None, None, None, 0.0, 1)),
    (["-v6", "probe"], KubeFlags(None, None, None, DEFAULT_REQUEST_TIMEOUT, 6)),
], ids=["ns-before", "ns-after", "context-kubeconfig-before", "after-wins", "timeout-v-before", "after",
        "v-attached"])
def test_global_flags_before_or_after_the_subcommand(args, want):
    assert _kube_of(*args) == want


def test_global_flags_before_the_subcommand_reach_the_cluster(tmp_path):
    """`kubectl whose --kubeconfig K rules POD` used to exit 2; now the flag is used (here: K is missing)."""
    r = run("--kubeconfig", str(tmp_path / "nope"), "rules", "p")
    assert r.code == ExitCode.CONFIG
    assert r.stderr == f"kubectl-whose: error: --kubeconfig {tmp_path / 'nope'}: no such file\n"
