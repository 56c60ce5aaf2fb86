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

from kubectl_whose.errors import ExitCode, WhoseError

DEFAULT_IMAGE = "nicolaka/netshoot:v0.13"
IMAGE_ENV = "KUBECTL_WHOSE_IMAGE"


def config_path(env: Mapping[str, str]) -> str:
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "kubectl-whose", "config.yaml")


def resolve_image(flag: Optional[str] = None, env: Optional[Mapping[str, str]] = None) -> str:
    env = os.environ if env is None else env
    if flag:
        return flag
    if env.get(IMAGE_ENV):
        return env[IMAGE_ENV]
    path = config_path(env)
    if os.path.isfile(path):
        import yaml

        try:
            with open(path, encoding="utf-8") as f:
                doc = yaml.safe_load(f) or {}
        except (OSError, yaml.YAMLError) as e:
            raise WhoseError(f"cannot read {path} ({str(e).splitlines()[0]})", ExitCode.CONFIG) from None
        if isinstance(doc, dict) and isinstance(doc.get("image"), str) and doc["image"].strip():
            return doc["image"].strip()
    return DEFAULT_IMAGE
