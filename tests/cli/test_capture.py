"""`capture` flag mistakes and local failures: caught before any API call, one line, the right exit code."""
import pytest

from kubectl_whose.errors import ExitCode
from tests.helpers.cli import run


@pytest.mark.parametrize("args,fragment", [
    (["-w", "-", "-o", "json"], "-w - sends the pcap to stdout; it cannot be combined with -o json/yaml"),
    (["--ttl", "30s"], "--ttl must be at least 60s"),
    (["--duration", "0s"], "'0s' must be greater than zero"),
    (["--count", "0"], "0 is not in the range x>=1"),
    (["--proto", "icmp"], "'icmp' is not one of 'tcp', 'udp', 'all'"),
], ids=["pcap-and-json-on-stdout", "ttl-too-short", "zero-duration", "zero-count", "bad-proto"])
def test_usage_errors(args, fragment):
    r = run("capture", "some-pod", *args, env={"KUBECONFIG": "/nonexistent"})
    assert r.code == ExitCode.USAGE
    assert fragment in r.stderr
    assert "Traceback" not in r.stderr


def test_unwritable_output_fails_before_touching_the_cluster(tmp_path):
    target = tmp_path / "no-such-dir" / "out.pcap"
    r = run("capture", "some-pod", "-w", str(target), env={"KUBECONFIG": "/nonexistent"})
    assert r.code == ExitCode.BAD_INPUT
    assert r.stderr.strip() == (f"kubectl-whose: error: cannot write {target} (No such file or directory); "
                                f"pick another -w path")


def test_missing_kubeconfig_is_a_config_error(tmp_path):
    r = run("capture", "some-pod", "--count", "1", env={"KUBECONFIG": str(tmp_path / "nope"), "HOME": str(tmp_path)})
    assert r.code == ExitCode.CONFIG
    assert r.stderr.strip().startswith("kubectl-whose: error: none of the files in KUBECONFIG exists")
