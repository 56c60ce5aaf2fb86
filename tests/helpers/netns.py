"""Throw-away network namespaces for tests: real veth, real addresses, real processes.

Every namespace and link is named with a prefix unique to this process (`kw<tag><pid>-`), so
parallel test runs never touch each other's state; `close()` ends only the processes this lab
started (by PID) and deletes only its own namespaces. `sweep_stale()` removes what a killed
run left behind (namespaces whose creating PID no longer exists).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from typing import Dict, List, Optional, Sequence

import pytest


def netns_unavailable_reason() -> Optional[str]:
    if os.geteuid() != 0:
        return "needs root for network namespaces (CI runs it as root)"
    if not shutil.which("ip"):
        return "needs iproute2 ('ip')"
    return None


requires_netns = pytest.mark.skipif(netns_unavailable_reason() is not None,
                                    reason=netns_unavailable_reason() or "")


def requires_tools(*tools: str):
    missing = [t for t in tools if not shutil.which(t)]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)} installed (.ci/run installs it)")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


class Netns:
    """One network namespace: run commands in it, start processes in it."""

    def __init__(self, lab: "NetLab", name: str):
        self.lab = lab
        self.name = name

    def argv(self, argv: Sequence[str]) -> List[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, argv: Sequence[str], check: bool = True, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        return subprocess.run(self.argv(argv), check=check, timeout=timeout, **kw)

    def popen(self, argv: Sequence[str], **kw) -> subprocess.Popen:
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        proc = subprocess.Popen(self.argv(argv), start_new_session=True, **kw)
        self.lab.processes.append(proc)
        return proc

    def sh(self, script: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a fixed shell script (test code only, never user input)."""
        return self.run(["sh", "-c", script], check=check, timeout=timeout)


class NetLab:
    """A set of namespaces and links owned by one test (or one module)."""

    def __init__(self, tag: str):
        assert tag.isalnum() and len(tag) <= 4, "tag: up to 4 letters/digits"
        self.prefix = f"kw{tag}{os.getpid() % 100000}-"
        self.namespaces: Dict[str, Netns] = {}
        self.processes: List[subprocess.Popen] = []
        self._links = 0

    def __enter__(self) -> "NetLab":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def ns(self, short: str) -> Netns:
        if short in self.namespaces:
            return self.namespaces[short]
        name = self.prefix + short
        _ip("netns", "del", name, check=False)
        _ip("netns", "add", name)
        ns = Netns(self, name)
        ns.run(["ip", "link", "set", "lo", "up"])
        self.namespaces[short] = ns
        return ns

    def link(self, a: Netns, a_if: str, a_addr: Optional[str], b: Netns, b_if: str, b_addr: Optional[str],
             mtu: Optional[int] = None) -> None:
        """A veth pair a_if (in a) <-> b_if (in b), created inside the namespaces directly."""
        _ip("link", "add", a_if, "netns", a.name, "type", "veth", "peer", "name", b_if, "netns", b.name)
        for ns, ifname, addr in ((a, a_if, a_addr), (b, b_if, b_addr)):
            if mtu:
                ns.run(["ip", "link", "set", ifname, "mtu", str(mtu)])
            if addr:
                ns.run(["ip", "-6" if ":" in addr else "-4", "addr", "add", addr, "dev", ifname, *(["nodad"] if ":" in addr else [])])
            ns.run(["ip", "link", "set", ifname, "up"])

    def close(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.time() + 3
        for proc in self.processes:
            try:
                proc.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        self.processes.clear()
        for ns in self.namespaces.values():
            _ip("netns", "del", ns.name, check=False)
        self.namespaces.clear()


def sweep_stale(tag: str) -> None:
    """Delete `kw<tag><pid>-*` namespaces whose creating process is gone (a killed earlier run)."""
    out = _ip("netns", "list", check=False).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith("kw" + tag):
            continue
        pid = name[len("kw" + tag):].split("-", 1)[0]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}") and int(pid) != os.getpid() % 100000:
            _ip("netns", "del", name, check=False)
