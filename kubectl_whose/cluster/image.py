"""Which debug image to use: `--image` > $KUBECTL_WHOSE_IMAGE > `image:` in ~/.config/kubectl-whose/config.yaml >
the default.

Why `nicolaka/netshoot:v0.13` by default: it is published in public registries today (Docker Hub, also mirrored
on ghcr.io), it is the image the `kubectl debug` documentation and most debugging guides already use, and one
image carries every tool the plugin execs -- tcpdump, iptables with *both* backends (`iptables-legacy-save` and
`iptables-nft-save`, so a pod's rules are read with the backend that wrote them), nft, iproute2 (`ip -j`), ss,
conntrack, plus `sh`, `timeout`, `kill` and `sleep` for the capture wrapper and the idle process. It runs as root
(`USER root`), which NET_ADMIN/NET_RAW need. A tag, not `latest`: a pinned tag defaults `imagePullPolicy` to
IfNotPresent (no pull on every run) and makes "same image" mean the same thing when a debug container is reused.
Air-gapped clusters point `--image`/KUBECTL_WHOSE_IMAGE at a mirror.
"""
from __future__ import annotations

import os
from typing import Mapping, Optional

from kubectl_whose.cluster.config_file import config_value

DEFAULT_IMAGE = "nicolaka/netshoot:v0.13"
IMAGE_ENV = "KUBECTL_WHOSE_IMAGE"


def resolve_image(flag: Optional[str] = None, env: Optional[Mapping[str, str]] = None) -> str:
    env = os.environ if env is None else env
    if flag:
        return flag
    if env.get(IMAGE_ENV):
        return env[IMAGE_ENV]
    return config_value("image", env) or DEFAULT_IMAGE


def normalize_image(image: str) -> str:
    """The name a node reports for `image` (`status.images`, `containerStatuses[].image`): docker.io/ and
    library/ made explicit, `:latest` when no tag or digest is given, as containerd names it."""
    name = image
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = "docker.io/library/" + name
    elif "." not in first and ":" not in first and first != "localhost":
        name = "docker.io/" + name
    if ":" not in name.rsplit("/", 1)[-1] and "@" not in name:
        name += ":latest"
    return name
