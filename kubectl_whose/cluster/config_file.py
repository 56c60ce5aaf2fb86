"""kubectl-whose's own settings file, `~/.config/kubectl-whose/config.yaml` (or under $XDG_CONFIG_HOME).

Keys: `image` (the debug image) and `node_namespace` (where `--node` creates its node debug pod). A flag
wins over the environment, which wins over this file.
"""
from __future__ import annotations

import os
from typing import Mapping, Optional

from kubectl_whose.errors import ExitCode, WhoseError


def config_path(env: Mapping[str, str]) -> str:
    base = env.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "kubectl-whose", "config.yaml")


def config_value(key: str, env: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """A string setting of the file, None when the file or the key is absent."""
    path = config_path(os.environ if env is None else env)
    if not os.path.isfile(path):
        return None
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as e:
        raise WhoseError(f"cannot read {path} ({str(e).splitlines()[0]}); fix or remove it", ExitCode.CONFIG) from None
    value = doc.get(key) if isinstance(doc, dict) else None
    return value.strip() if isinstance(value, str) and value.strip() else None
