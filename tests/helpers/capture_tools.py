"""Recording machinery for tests/helpers/captures.py: real tcpdump started/stopped like a user would, and the
helpers that start programs in namespaces and wire them up.

`--immediate-mode` matters: without it libpcap hands packets over in blocks, and a SIGINT leaves the
last block in the kernel ring ("34 received by filter, 2 captured", measured here).
"""
from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from tests.helpers.netns import NetLab, Netns

CLIENT4, SERVER4 = "10.77.0.1", "10.77.0.2"
CLIENT6, SERVER6 = "fd77::1", "fd77::2"
OVERLAY1, OVERLAY2 = "192.168.42.1", "192.168.42.2"
OVERLAY6_1, OVERLAY6_2 = "fd42::1", "fd42::2"
UNDERLAY1, UNDERLAY2 = "10.99.0.1", "10.99.0.2"  # outer addresses of the replayed tunnels
ROUTER_C, ROUTER_S, SERVER_BEHIND_ROUTER = "10.77.0.254", "10.78.0.254", "10.78.0.2"


@dataclass
class Capture:
    """A recorded file and how the oracle must read it."""

    name: str
    path: Path
    tshark_args: Tuple[str, ...] = ()  # e.g. decode-as for VXLAN on 8472 (tshark does not decode it by default)
    truncated: bool = False
    notes: str = ""
    chunks: Optional[List[bytes]] = None  # `tcpdump -w -` stdout as read, chunk by chunk (pipe scenario)


class Tcpdump:
    """Real tcpdump in a namespace, started and stopped the way a user would (SIGINT)."""

    def __init__(self, ns: Netns, path: Path, iface: str = "eth0", extra: Sequence[str] = (), pipe: bool = False):
        """pipe=True: `-w -` as `kubectl whose capture` runs it; the stdout chunks are kept, in the
        sizes they were read, in `self.chunks`, and written to `path` as they come."""
        self.path = path
        self.chunks: List[bytes] = []
        target = "-" if pipe else str(path)
        argv = ["tcpdump", "--immediate-mode", "-U", "-n", "-B", "32768", "-i", iface, *extra, "-w", target]
        self.proc = ns.popen(argv, stderr=subprocess.PIPE, **({"stdout": subprocess.PIPE} if pipe else {}))
        self._reader = None
        if pipe:
            self._reader = threading.Thread(target=self._drain, daemon=True)
            self._reader.start()
        self._stderr = b""
        deadline = time.time() + 10
        while b"listening on" not in self._stderr:
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"tcpdump did not start: {self._stderr.decode(errors='replace')}")
            ready, _, _ = select.select([self.proc.stderr], [], [], 0.2)
            if ready:
                self._stderr += os.read(self.proc.stderr.fileno(), 4096)

    def stop(self, allow_drops: bool = False) -> str:
        """Wait until the file stops growing (every packet written), then SIGINT and wait.

        A test capture must be complete (a kernel drop would make the oracle compare a different
        conversation than the one that happened); the benchmark may allow drops and report them."""
        last, stable_since = -1, time.time()
        deadline = time.time() + 5
        while time.time() < deadline:
            size = self.path.stat().st_size if self.path.exists() else 0
            if size != last:
                last, stable_since = size, time.time()
            elif time.time() - stable_since > 0.15:
                break
            time.sleep(0.02)
        self.proc.send_signal(signal.SIGINT)
        if self._reader is not None:
            self._reader.join(timeout=10)
        err = self.proc.stderr.read()
        self.proc.wait(timeout=10)
        text = (self._stderr + err).decode(errors="replace")
        if not allow_drops and not re.search(r"^0 packets dropped by kernel", text, re.M):
            raise RuntimeError(f"tcpdump lost packets: {text}")
        return text


    def _drain(self) -> None:
        with open(self.path, "wb") as out:
            while True:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    return
                self.chunks.append(chunk)
                out.write(chunk)
                out.flush()


def start_server(ns: Netns, script: str, *args: str) -> subprocess.Popen:
    """Start a Python script in `ns` and wait for its 'ready' line."""
    proc = ns.popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE)
    line = proc.stdout.readline()
    if line.strip() != b"ready":
        raise RuntimeError(f"server did not start in {ns.name}: {line!r}")
    return proc


def run_client(ns: Netns, script: str, *args: str, timeout: float = 30) -> None:
    ns.run([sys.executable, "-c", script, *args], timeout=timeout)


def veth_pair(lab: NetLab, v6: bool = False) -> Tuple[Netns, Netns]:
    c, s = lab.ns("c"), lab.ns("s")
    lab.link(c, "eth0", CLIENT4 + "/24", s, "eth0", SERVER4 + "/24")
    if v6:
        for ns, addr in ((c, CLIENT6), (s, SERVER6)):
            ns.run(["ip", "-6", "addr", "add", addr + "/64", "dev", "eth0", "nodad"])
    return c, s


def wait_closed(ns: Netns, port: int, timeout: float = 15) -> None:
    """Wait until no socket on `port` in `ns` is still closing (FIN-WAIT, CLOSING, LAST-ACK ...):
    with random loss the server's FIN may need retransmissions (RTO >= 200 ms) before the client
    sees it, and a capture stopped earlier would hold half a close."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        lines = ns.run(["ss", "-Htan"]).stdout.splitlines()
        busy = [ln for ln in lines if f":{port} " in ln and ln.split()[0] not in ("LISTEN", "TIME-WAIT")]
        if not busy:
            return
        time.sleep(0.05)
    raise RuntimeError(f"connections on port {port} in {ns.name} did not finish closing: {busy}")


def curl(ns: Netns, *urls: str, check: bool = True) -> None:
    argv = ["curl", "-sS", "--connect-timeout", "3"]
    for url in urls:
        argv += ["-o", "/dev/null", url]
    ns.run(argv, check=check)


def routed(lab: NetLab) -> Tuple[Netns, Netns, Netns]:
    """client c -- router r -- server s, two subnets, MSS-sized segments on every link (no
    TSO/GSO/GRO super-packets, so per-packet effects hit real segments)."""
    c, r, s = lab.ns("c"), lab.ns("r"), lab.ns("s")
    lab.link(c, "eth0", CLIENT4 + "/24", r, "eth0", ROUTER_C + "/24")
    lab.link(r, "eth1", ROUTER_S + "/24", s, "eth0", SERVER_BEHIND_ROUTER + "/24")
    for ns, ifname in ((c, "eth0"), (r, "eth0"), (r, "eth1"), (s, "eth0")):
        ns.run(["ethtool", "-K", ifname, "tso", "off", "gso", "off", "gro", "off"])
    r.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    c.run(["ip", "route", "add", "default", "via", ROUTER_C])
    s.run(["ip", "route", "add", "default", "via", ROUTER_S])
    return c, r, s
