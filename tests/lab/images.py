"""Image references → the tools a container of that image carries.

No container engine runs here, so an "image" is a PATH: a directory of symlinks to the host's real binaries.
A tool the image does not carry is simply absent, so exec fails for real ("executable file not found in $PATH")
and a binary that is present behaves exactly as the real one does.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

_BASICS = ("sh", "sleep", "ps", "kill", "cat", "echo", "ls", "id", "env", "tee", "head", "tail", "grep", "wc",
           "sha256sum", "md5sum", "true", "false", "date", "hostname", "uname", "mkdir", "rm", "tr", "sed", "seq",
           "sort", "uniq", "cut", "od", "base64", "dd", "touch", "stat", "printf", "expr", "xargs", "basename",
           "dirname", "awk", "find", "ln", "mv", "cp", "chmod", "pidof", "nproc", "free", "df", "mount", "which")
_NET_TOOLS = ("tcpdump", "iptables", "iptables-save", "iptables-restore",
              "iptables-legacy", "iptables-legacy-save", "iptables-legacy-restore",
              "iptables-nft", "iptables-nft-save", "iptables-nft-restore",
              "ip6tables", "ip6tables-save", "ip6tables-restore",
              "ip6tables-legacy", "ip6tables-legacy-save", "ip6tables-nft", "ip6tables-nft-save",
              "nft", "ip", "bridge", "ss", "conntrack", "ethtool", "timeout", "ping", "arping", "curl", "nsenter",
              "capsh", "getpcaps")


@dataclass(frozen=True)
class Image:
    """What the lab knows about one image: its tools and the command it runs when the pod gives none."""
    kind: str
    tools: Tuple[str, ...]
    default_command: Tuple[str, ...] = ()


IMAGES: Dict[str, Image] = {
    "netshoot": Image("netshoot", _BASICS + _NET_TOOLS, ("sh",)),
    # busybox's applets (no tcpdump, no iptables, no ss; `timeout`, `ping`, `wget` and friends are there).
    "busybox": Image("busybox", _BASICS + ("wget", "timeout", "ping", "nc", "netstat", "ifconfig", "route",
                                           "traceroute", "nslookup", "vi", "less", "more", "top", "watch",
                                           "usleep"), ("sh",)),
    "distroless": Image("distroless", ()),
    # The lab's own workloads (echo server, traffic generator, proxy) need a Python interpreter.
    "lab": Image("lab", _BASICS + ("python3", "curl"), ("sh",)),
}

_PATTERNS = (
    (re.compile(r"^(docker\.io/)?nicolaka/netshoot([:@].*)?$"), "netshoot"),
    (re.compile(r"^ghcr\.io/kubectl-whose/netshoot-lite([:@].*)?$"), "netshoot"),
    (re.compile(r"^(docker\.io/)?(library/)?busybox([:@].*)?$"), "busybox"),
    (re.compile(r"^gcr\.io/distroless/static[^/]*([:@].*)?$"), "distroless"),
    (re.compile(r"^kubectl-whose-lab/[a-z0-9-]+([:@].*)?$"), "lab"),
)


def resolve(image: str) -> Optional[Image]:
    """The image a reference names, or None when no registry would have it (→ ErrImagePull)."""
    for pattern, kind in _PATTERNS:
        if pattern.match(image):
            return IMAGES[kind]
    return None


def normalize(image: str) -> str:
    """`nicolaka/netshoot:v0.13` → `docker.io/nicolaka/netshoot:v0.13`, as the kubelet reports `status.image`."""
    name = image
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = "docker.io/library/" + name
    elif "." not in first and ":" not in first and first != "localhost":
        name = "docker.io/" + name
    if ":" not in name.rsplit("/", 1)[-1] and "@" not in name:
        name += ":latest"
    return name


def image_id(image: str) -> str:
    """A stable digest-style imageID (the lab pulls nothing, so the digest is derived from the name)."""
    repo = normalize(image).rsplit(":", 1)[0] if "@" not in image else normalize(image).split("@")[0]
    return f"{repo}@sha256:{hashlib.sha256(normalize(image).encode()).hexdigest()}"


def tool_dir(root: Path, img: Image) -> Path:
    """Create (once) `root/<kind>/bin` with one symlink per tool the host has; return it."""
    # Named by the tool list, so a changed list never reuses a stale directory.
    digest = hashlib.sha256("\n".join(img.tools).encode()).hexdigest()[:10]
    d = root / f"{img.kind}-{digest}" / "bin"
    if d.is_dir():
        return d
    tmp = root / f".{img.kind}.{os.getpid()}.{threading.get_ident()}"
    tmp.mkdir(parents=True, exist_ok=True)
    host_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for tool in img.tools:
        target = sys.executable if tool == "python3" else shutil.which(tool, path=host_path)
        if target:
            os.symlink(target, tmp / tool)
    try:
        d.parent.mkdir(parents=True, exist_ok=True)
        os.rename(tmp, d)
    except OSError:  # another thread made it first
        shutil.rmtree(tmp, ignore_errors=True)
    return d
