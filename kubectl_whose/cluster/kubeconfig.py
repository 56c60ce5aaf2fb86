"""Resolve the kubeconfig exactly as kubectl does (client-go `tools/clientcmd/loader.go`).

- `--kubeconfig FILE`: that one file, no merging; a missing file is an error.
- else `$KUBECONFIG`: a path list (`:`, `;` on Windows) merged with "the first file to set a value or a map key
  wins" -- *including* `current-context`. Missing files in the list are skipped, as client-go does.
- else `~/.kube/config`.
- `--context` picks the context, else the merged `current-context`; the namespace is `-n`, else the context's
  namespace, else `default`.

The Python client is not used for this: `config.load_kube_config()` lets the *last* file's `current-context` win
(KUBECONFIG=a:b gives kubectl `ctx-a` but Python `ctx-b`), and it has no namespace resolver. We merge ourselves
and hand the client the merged dict and the context name. Relative certificate/key/token paths are made absolute
against the file that declared them, as client-go's `ResolvePaths` does, because the merged dict no longer has
one base directory.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from kubectl_whose.errors import ExitCode, WhoseError

# Path-valued fields client-go resolves relative to the declaring file.
_PATH_FIELDS = {
    "clusters": ("certificate-authority",),
    "users": ("client-certificate", "client-key", "tokenFile"),
}
_NAMED_LISTS = ("clusters", "users", "contexts")

# --request-timeout's default. Why 30 s and not kubectl's 0 (no limit): the plugin is run against clusters that may
# be in trouble, and a black-holed API server should end in one sentence and exit code 15 (TIMEOUT), not in a
# hang; `--request-timeout=0` gives kubectl's behaviour. It bounds each API answer and the exec handshake, never a
# capture's length (that is --duration).
DEFAULT_REQUEST_TIMEOUT = 30.0
_TIMEOUT_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_TIMEOUT_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


@dataclass(frozen=True)
class KubeFlags:
    """kubectl's connection flags as the user gave them (the CLI fills it; `cluster.client.connect` takes it)."""

    namespace: Optional[str]
    context: Optional[str]
    kubeconfig: Optional[str]
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT  # seconds for each API answer; 0: no limit
    verbosity: int = 0  # kubectl's -v: 1 the debug container and the exec transport, 6 every API request

    # kubectl's global flags, accepted before the subcommand (`kubectl whose -n shop capture POD`) and after it
    FLAGS = ("namespace", "context", "kubeconfig", "request_timeout", "verbosity")

    @classmethod
    def from_layers(cls, layers: Sequence[Mapping]) -> "KubeFlags":
        """The first layer that sets a flag wins (the subcommand's, then the group's)."""
        got = {k: next((layer[k] for layer in layers if layer.get(k) is not None), None) for k in cls.FLAGS}
        timeout = got["request_timeout"]
        return cls(got["namespace"], got["context"], got["kubeconfig"],
                   DEFAULT_REQUEST_TIMEOUT if timeout is None else float(timeout), int(got["verbosity"] or 0))


def parse_request_timeout(text: str) -> float:
    """Seconds, as client-go's `ParseTimeout` reads --request-timeout: a whole number is seconds, else a Go
    duration (`30s`, `1m30s`, `500ms`); 0 means no limit. Anything else raises ValueError with the forms."""
    text = text.strip()
    if text.isdigit():
        return float(text)
    parts = _TIMEOUT_PART.findall(text)
    if parts and "".join(n + u for n, u in parts) == text:
        return sum(float(n) * _TIMEOUT_UNITS[u] for n, u in parts)
    raise ValueError(f"{text!r} is not a timeout: give a whole number of seconds, or a number with a unit "
                     f"(e.g. 30s, 1m, 1m30s; 0 waits forever)")


@dataclass(frozen=True)
class ResolvedConfig:
    """What one kubectl invocation would use: the context, its cluster and user, and the namespace."""

    context: str
    namespace: str
    cluster: str
    user: str
    server: str
    files: Tuple[str, ...]
    merged: dict = field(repr=False, compare=False, default_factory=dict)
    namespace_from: str = "default"  # "flag" | "context" | "default": for messages


def kubeconfig_files(explicit: Optional[str], env: Mapping[str, str], home: Optional[str] = None) -> List[str]:
    """The files kubectl would read, in precedence order."""
    if explicit:
        if not os.path.isfile(explicit):
            raise WhoseError(f"--kubeconfig {explicit}: no such file", ExitCode.CONFIG)
        return [explicit]
    listed = env.get("KUBECONFIG", "")
    if listed:
        paths = [p for p in listed.split(os.pathsep) if p]
        present = [p for p in _dedupe(paths) if os.path.isfile(p)]
        if not present:
            raise WhoseError(f"none of the files in KUBECONFIG exists ({listed}); "
                             f"point KUBECONFIG or --kubeconfig at a kubeconfig file", ExitCode.CONFIG)
        return present
    default = os.path.join(home or os.path.expanduser("~"), ".kube", "config")
    if not os.path.isfile(default):
        raise WhoseError(f"no kubeconfig found: {default} does not exist and KUBECONFIG is not set; "
                         f"pass --kubeconfig FILE or set KUBECONFIG", ExitCode.CONFIG)
    return [default]


def merge_kubeconfigs(files: Sequence[str]) -> dict:
    """Merge like client-go: for every key and every named cluster/user/context, the first file wins."""
    merged: dict = {"clusters": [], "users": [], "contexts": [], "current-context": ""}
    seen: Dict[str, set] = {k: set() for k in _NAMED_LISTS}
    for path in files:
        doc = _load(path)
        base = os.path.dirname(os.path.abspath(path))
        if not merged["current-context"] and doc.get("current-context"):
            merged["current-context"] = doc["current-context"]
        for key in _NAMED_LISTS:
            for item in doc.get(key) or []:
                name = item.get("name") if isinstance(item, dict) else None
                if not name or name in seen[key]:
                    continue
                seen[key].add(name)
                merged[key].append(_resolve_paths(key, item, base))
        for key, value in doc.items():
            if key not in merged and key not in _NAMED_LISTS:
                merged[key] = value
    return merged


def resolve(namespace: Optional[str] = None, context: Optional[str] = None, kubeconfig: Optional[str] = None,
            env: Optional[Mapping[str, str]] = None, home: Optional[str] = None) -> ResolvedConfig:
    """Resolve `-n/--context/--kubeconfig` into the context, cluster, user and namespace kubectl would use."""
    files = kubeconfig_files(kubeconfig, os.environ if env is None else env, home)
    merged = merge_kubeconfigs(files)
    where = ", ".join(files)
    contexts = {c["name"]: (c.get("context") or {}) for c in merged["contexts"]}
    name = context or merged["current-context"]
    if not name:
        raise WhoseError(f"no current-context in {where}; pass --context NAME "
                         f"(contexts: {_names(contexts)})", ExitCode.CONFIG)
    if name not in contexts:
        flag = "--context" if context else "current-context"
        raise WhoseError(f"context {name!r} ({flag}) not found in {where} (contexts: {_names(contexts)})",
                         ExitCode.CONFIG)
    ctx = contexts[name]
    clusters = {c["name"]: (c.get("cluster") or {}) for c in merged["clusters"]}
    cluster_name = ctx.get("cluster", "")
    if cluster_name not in clusters:
        raise WhoseError(f"context {name!r} refers to cluster {cluster_name!r}, which is not defined in {where}; "
                         f"fix the context or pick another with --context (contexts: {_names(contexts)})",
                         ExitCode.CONFIG)
    server = clusters[cluster_name].get("server", "")
    if not server:
        raise WhoseError(f"cluster {cluster_name!r} in {where} has no server URL; set its server: "
                         f"(kubectl config set-cluster {cluster_name} --server=https://HOST:PORT)", ExitCode.CONFIG)
    users = {u["name"] for u in merged["users"]}
    user = ctx.get("user", "")
    if user and user not in users:
        raise WhoseError(f"context {name!r} refers to user {user!r}, which is not defined in {where}; "
                         f"fix the context or pick another with --context (contexts: {_names(contexts)})",
                         ExitCode.CONFIG)
    if namespace:
        ns, source = namespace, "flag"
    elif ctx.get("namespace"):
        ns, source = ctx["namespace"], "context"
    else:
        ns, source = "default", "default"
    return ResolvedConfig(context=name, namespace=ns, cluster=cluster_name, user=user, server=server,
                          files=tuple(files), merged=merged, namespace_from=source)


def _load(path: str) -> dict:
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except OSError as e:
        raise WhoseError(f"cannot read kubeconfig {path} ({e.strerror})", ExitCode.CONFIG) from None
    except yaml.YAMLError as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise WhoseError(f"kubeconfig {path} is not valid YAML ({first})", ExitCode.CONFIG) from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise WhoseError(f"kubeconfig {path} is not a kubeconfig (top level is not a mapping)", ExitCode.CONFIG)
    return doc


def _resolve_paths(key: str, item: dict, base: str) -> dict:
    inner_key = key[:-1]  # clusters -> cluster, users -> user, contexts -> context
    fields = _PATH_FIELDS.get(key, ())
    inner = item.get(inner_key)
    if not fields or not isinstance(inner, dict):
        return item
    fixed = dict(inner)
    for f in fields:
        value = fixed.get(f)
        if isinstance(value, str) and value and not os.path.isabs(value):
            fixed[f] = os.path.join(base, value)
    return {**item, inner_key: fixed}


def _dedupe(paths: Sequence[str]) -> List[str]:
    out: List[str] = []
    for p in paths:
        if p not in out:
            out.append(p)
    return out


def _names(contexts: Mapping[str, object]) -> str:
    return ", ".join(sorted(contexts)) or "none"
