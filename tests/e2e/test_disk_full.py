"""`-w` onto a disk that fills mid-capture: a real tmpfs of 256 KiB, real tcpdump, real traffic.

Oracles: capinfos (Wireshark's reader) on the file the capture left (it must read to the end without an error and
hold the packets the message names), the file's size on disk, and `ps` inside the pod (tcpdump was stopped).
"""
import json
import subprocess
import threading

import pytest

from kubectl_whose.errors import ExitCode
from tests.helpers.netns import requires_netns, requires_tools

pytestmark = [requires_netns, requires_tools("tcpdump", "capinfos", "ping")]

POD = "app-sidecar"
LINE = ("kubectl-whose: error: writing {path} failed (No space left on device); the file is cut back to its last "
        "whole packet (packet {packets}, ending at byte {size}), and the capture was stopped; free space (or pick "
        "another -w path) and capture again")


@pytest.fixture
def small_disk(tmp_path):
    where = tmp_path / "disk"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "kwtest-full", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def flood(lab, stop: threading.Event):
    while not stop.is_set():  # 1 kB echo requests on the pod's lo: far more than 256 KiB in a few seconds
        lab.netns_run(POD, ["ping", "-q", "-i", "0.002", "-s", "1000", "-c", "200", "127.0.0.1"], timeout=30)


def capinfos(path):
    r = subprocess.run(["capinfos", "-c", "-M", "-T", str(path)], capture_output=True, text=True)
    return int(r.stdout.strip().splitlines()[-1].split("\t")[1]), r.returncode == 0 and not r.stderr.strip()


@pytest.mark.parametrize("name", ["one.pcap", "many.pcapng"])
def test_a_full_disk_cuts_the_file_at_a_whole_packet_and_still_summarises(lab, small_disk, name):
    path = small_disk / name
    stop = threading.Event()
    traffic = threading.Thread(target=flood, args=(lab, stop), daemon=True)
    traffic.start()
    try:
        targets = [POD] if name.endswith(".pcap") else [POD, "client"]
        r = lab.whose("capture", *targets, "-i", "lo" if len(targets) == 1 else "any", "--duration", "20s",
                      "-w", str(path), "-o", "json")
    finally:
        stop.set()
        traffic.join()
    assert r.code == ExitCode.WRITE_FAILED, r.stderr
    packets, clean = capinfos(path)
    assert clean, "the file reads to its end without an error"
    size = path.stat().st_size
    assert r.stderr.strip().splitlines()[-1] == LINE.format(path=path, packets=packets, size=size)
    assert 200 * 1024 < size <= 256 * 1024
    summary = json.loads(r.stdout)  # the summary of everything that arrived, still printed
    total = summary["packets"] if "packets" in summary else sum(p.get("packets", 0) for p in summary["pods"])
    assert total >= packets > 100
    assert "capture running" in r.stderr
    ps = lab.pod_run(POD, ["ps", "-eo", "args"]).stdout
    assert "tcpdump" not in ps, ps
