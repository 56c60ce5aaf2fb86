"""The tcpdump recipe, run for real in a throw-away network namespace (no API server involved).

The oracle is real tcpdump: its real stderr for a bad filter, a missing interface and a missing capability is
what `classify_failure` must recognise; the wrapper's PID line must let a second command stop it within 2 s with
the capture flushed; and the pcap must be byte-identical to what tcpdump writes (read back with tshark).
"""
import os
import subprocess
import time

import pytest

from kubectl_whose.collect.tcpdump import (
    CaptureRecipe, capture_argv, classify_failure, parse_pid, stop_argv, summary_counts, tcpdump_argv)
from kubectl_whose.errors import ExitCode
from tests.helpers.netns import NetLab, requires_netns, requires_tools

pytestmark = [requires_netns, requires_tools("tcpdump", "tshark", "setpriv")]


@pytest.fixture(scope="module")
def pod_ns():
    with NetLab("E") as lab:
        a, b = lab.ns("rcpa"), lab.ns("rcpb")
        lab.link(a, "eth0", "10.77.0.1/24", b, "eth0", "10.77.0.2/24")
        yield lab, a


def test_argv_keeps_filter_words_as_separate_elements():
    argv = tcpdump_argv(CaptureRecipe("eth0", 'host 10.0.0.1 and "port 80"; rm -rf /', 5, 96))
    assert argv == ["tcpdump", "-U", "-w", "-", "-i", "eth0", "-B", "32768", "-s", "96", "-c", "5",
                    "--immediate-mode", "--",
                    "host", "10.0.0.1", "and", "port 80;", "rm", "-rf", "/"]
    wrapped = capture_argv(CaptureRecipe("any", None, None, None, 2.5))
    assert wrapped[:2] == ["sh", "-c"] and wrapped[3:5] == ["sh", "3s"] and wrapped[5] == "tcpdump"


def test_stop_by_pid_within_two_seconds_keeps_buffered_packets(pod_ns, tmp_path):
    lab, ns = pod_ns
    proc = ns.popen(capture_argv(CaptureRecipe("eth0", "icmp", None, None, 60)), stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE)
    pid = parse_pid(proc.stderr.readline())
    assert pid is not None
    listening = proc.stderr.readline()
    assert b"listening on eth0" in listening
    ns.run(["ping", "-c", "3", "-i", "0.2", "10.77.0.2"])
    t = time.monotonic()
    ns.run(stop_argv(pid))
    out, err = proc.communicate(timeout=5)
    assert time.monotonic() - t < 2.0
    assert proc.returncode == 0
    # nothing of ours is left in the namespace (ip netns pids lists every process inside it)
    assert subprocess.run(["ip", "netns", "pids", ns.name], capture_output=True, text=True).stdout.split() == []
    path = tmp_path / "c.pcap"
    path.write_bytes(out)
    frames = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "frame.number"], capture_output=True,
                            text=True, check=True).stdout.split()
    assert len(frames) == 6  # 3 echo requests + 3 replies, all flushed on SIGINT
    assert summary_counts(err)["captured"] == 6
    assert classify_failure(CaptureRecipe("eth0", "icmp"), err, proc.returncode, "img") is None


def test_duration_ends_remotely_and_is_not_an_error(pod_ns):
    lab, ns = pod_ns
    t = time.monotonic()
    r = ns.run(capture_argv(CaptureRecipe("eth0", None, None, None, 1)), check=False, text=False)
    assert 0.9 < time.monotonic() - t < 4
    assert r.returncode == 124  # timeout's "time is up"
    assert classify_failure(CaptureRecipe("eth0"), r.stderr, r.returncode, "img") is None
    assert r.stdout[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4")


@pytest.mark.parametrize("recipe,prefix,code,message", [
    (CaptureRecipe("eth0", "tcp port", 1), [], ExitCode.BAD_FILTER,
     "tcpdump rejected the filter 'tcp port': can't parse filter expression: syntax error; -f takes tcpdump's "
     "filter syntax (pcap-filter(7)), e.g. -f \"tcp port 80\""),
    (CaptureRecipe("eth9", None, 1), [], ExitCode.BAD_INTERFACE,
     "pod POD has no interface 'eth9' (tcpdump: No such device exists); "
     "`kubectl whose net POD` lists its interfaces, or -i any captures on all of them"),
    (CaptureRecipe("eth0", None, 1), ["setpriv", "--inh-caps=-all", "--bounding-set=-net_raw,-net_admin"],
     ExitCode.NO_CAPABILITY, None),
], ids=["bad-bpf", "unknown-interface", "no-net-raw"])
def test_real_tcpdump_errors_are_classified(pod_ns, recipe, prefix, code, message):
    lab, ns = pod_ns
    r = ns.run(prefix + capture_argv(recipe), check=False, text=False)
    err = classify_failure(recipe, r.stderr, r.returncode, "img")
    assert err is not None and err.code == code, r.stderr
    if message:
        assert err.message == message
    else:
        assert "NET_RAW/NET_ADMIN are missing" in err.message and "You don't have permission" in err.message


def test_missing_tcpdump_is_tool_missing(pod_ns, tmp_path):
    lab, ns = pod_ns
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("sh", "timeout"):  # an image with a shell but no tcpdump (busybox-like)
        os.symlink(subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip(),
                   bindir / tool)
    r = ns.run(["env", f"PATH={bindir}", *capture_argv(CaptureRecipe("eth0", None, 1))], check=False, text=False)
    err = classify_failure(CaptureRecipe("eth0"), r.stderr, r.returncode, "busybox:1.36")
    assert r.returncode == 127
    assert (err.code, err.message) == (ExitCode.TOOL_MISSING, "the debug image busybox:1.36 has no tcpdump; pass "
                                       "--image with an image that carries it (default nicolaka/netshoot:v0.13)")
