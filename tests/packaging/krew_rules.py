"""krew's manifest validation rules, transcribed from kubernetes-sigs/krew
`internal/index/validation/validate.go` (ValidatePlugin, validatePlatform, validateFiles,
validateSelector) so the test judges our manifest by krew's own rules, plus the krew installer's
file placement (`internal/installation`: `files` globs moved into the install dir, `bin` must
exist there)."""
from __future__ import annotations

import glob
import os
import re
import shutil
from pathlib import Path

API_VERSION = "krew.googlecontainertools.github.com/v1alpha2"
SAFE_NAME = re.compile(r"^[\w-]+$")
SHA256 = re.compile(r"^[a-f0-9]{64}$")
# krew's semver: a leading "v" is required (internal/installation/semver)
SEMVER = re.compile(r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
WINDOWS_FORBIDDEN = {"CON", "PRN", "AUX", "NUL"} | {f"COM{i}" for i in range(1, 10)} | {f"LPT{i}" for i in range(1, 10)}


def validate_plugin(name: str, p: dict) -> None:
    if p.get("apiVersion") != API_VERSION:
        raise ValueError(f"plugin manifest has apiVersion={p.get('apiVersion')!r}")
    if p.get("kind") != "Plugin":
        raise ValueError(f"plugin manifest has kind={p.get('kind')!r}, but only 'Plugin' is supported")
    if not SAFE_NAME.match(name) or name.upper() in WINDOWS_FORBIDDEN:
        raise ValueError(f"the plugin name {name!r} is not allowed")
    if p.get("metadata", {}).get("name") != name:
        raise ValueError(f"plugin should be named {name!r}")
    spec = p.get("spec", {})
    short = spec.get("shortDescription", "")
    if not short:
        raise ValueError("should have a short description")
    if "\r" in short or "\n" in short:
        raise ValueError("should not have line breaks in short description")
    if not spec.get("platforms"):
        raise ValueError("should have a platform specified")
    if not spec.get("version"):
        raise ValueError("should have a version specified")
    if not SEMVER.match(spec["version"]):
        raise ValueError(f"failed to parse plugin version {spec['version']!r}")
    for pl in spec["platforms"]:
        validate_platform(pl)


def validate_platform(pl: dict) -> None:
    if not pl.get("uri"):
        raise ValueError("`uri` has to be set")
    if not pl.get("sha256"):
        raise ValueError("`sha256` sum has to be set")
    if not SHA256.match(pl["sha256"]):
        raise ValueError(f"`sha256` value {pl['sha256']} is not valid")
    if not pl.get("bin"):
        raise ValueError("`bin` has to be set")
    files = pl.get("files")
    if files is not None:
        if len(files) == 0:
            raise ValueError("`files` has to be unspecified or non-empty")
        for op in files:
            if not op.get("from") or not op.get("to"):
                raise ValueError("`from` and `to` fields have to be set")
    sel = pl.get("selector")
    if sel is None:
        raise ValueError("nil selector is not supported")
    labels, exprs = sel.get("matchLabels"), sel.get("matchExpressions")
    if labels is None and not exprs:
        raise ValueError("empty selector is not supported")
    keys = list(labels or {}) + [e.get("key") for e in exprs or []]
    for k in keys:
        if k not in ("os", "arch"):
            raise ValueError(f"key {k!r} not supported")
    if labels is not None and len(labels) == 0:
        raise ValueError("`matchLabels` specified but empty")


def install_like_krew(extracted: Path, platform: dict, install_dir: Path, bin_dir: Path, name: str) -> Path:
    """Move `files` globs from the extracted archive into install_dir, link bin into bin_dir."""
    install_dir.mkdir(parents=True)
    ops = platform.get("files") or [{"from": "*", "to": "."}]
    for op in ops:
        matches = sorted(glob.glob(str(extracted / op["from"])))
        if not matches:
            raise ValueError(f"files: {op['from']!r} matches nothing in the archive")
        target = (install_dir / op["to"]).resolve()
        target.mkdir(parents=True, exist_ok=True)
        for m in matches:
            shutil.move(m, target / os.path.basename(m))
    binary = install_dir / platform["bin"]
    if not binary.is_file():
        raise ValueError(f"bin {platform['bin']!r} is not in the installed files")
    bin_dir.mkdir(parents=True, exist_ok=True)
    link = bin_dir / f"kubectl-{name}"
    link.symlink_to(binary)
    return link
