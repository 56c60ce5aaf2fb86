"""Reading a bundle (`collect.bundle`) back: its capture for `analyze`, one pod's rules for `rules`/`trace
--from-file`, one pod's `net` outputs for `net --from-file`. A bundle of several pods is named with the pod:
`FILE.tgz#NAMESPACE/POD`; the error lists the pods when the name is needed and missing.
"""
from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from typing import Dict, List, Optional, Tuple

from kubectl_whose.errors import ExitCode, WhoseError


def split(path: str) -> Tuple[str, Optional[str]]:
    """`FILE.tgz#ns/pod` -> (FILE.tgz, "ns/pod"); a path without `#` is returned as it is."""
    if "#" in path and not os.path.exists(path):
        base, _, pod = path.rpartition("#")
        return base, pod or None
    return path, None


def is_bundle(path: str) -> bool:
    base, _ = split(path)
    if not os.path.isfile(base):
        return False
    try:
        with tarfile.open(base, "r:*") as tar:
            first = tar.next()  # collect.bundle writes the manifest first: no need to read the capture
            return first is not None and first.name == "manifest.json"
    except (tarfile.TarError, OSError):
        return False


def _open(path: str) -> tarfile.TarFile:
    try:
        return tarfile.open(split(path)[0], "r:*")
    except (tarfile.TarError, OSError) as e:
        raise WhoseError(f"{split(path)[0]} is not a readable kubectl-whose bundle ({e})", ExitCode.BAD_INPUT) from None


def pods(path: str) -> List[str]:
    with _open(path) as tar:
        return json.loads(tar.extractfile("manifest.json").read())["captured"]


def _pod_dir(path: str, tar: tarfile.TarFile) -> str:
    base, want = split(path)
    have = json.loads(tar.extractfile("manifest.json").read())["captured"]
    if want is None and len(have) == 1:
        want = have[0]
    if want not in have:
        forms = ", ".join(f"{base}#{p}" for p in have) or "none"
        what = f"has no pod {want}" if want else f"holds {len(have)} pods"
        raise WhoseError(f"{base} {what}; name one: {forms}", ExitCode.NOT_FOUND)
    return f"pods/{want}/"


def rules_text(path: str) -> str:
    """The `rules --save` snapshot of one pod of the bundle."""
    with _open(path) as tar:
        member = _pod_dir(path, tar) + "rules.json"
        try:
            return tar.extractfile(member).read().decode("utf-8", "replace")
        except KeyError:
            raise WhoseError(f"{split(path)[0]} has no rules for that pod (they could not be read at bundle time; "
                             f"see manifest.json notes)", ExitCode.NOT_FOUND) from None


def net_files(path: str) -> Dict[str, str]:
    """One pod's saved `net` outputs, file name -> text (the `net --from-file DIR` layout)."""
    with _open(path) as tar:
        base = _pod_dir(path, tar) + "net/"
        return {m.name[len(base):]: tar.extractfile(m).read().decode("utf-8", "replace")
                for m in tar.getmembers() if m.isfile() and m.name.startswith(base)}


def net_outputs(path: str, files: Dict[str, str]) -> Dict[str, Optional[str]]:
    """One pod's `net` outputs by recipe name (`files`: recipe name -> file name); None where absent."""
    have = net_files(path)
    return {name: have.get(f) for name, f in files.items()}


class extracted_capture:
    """`with extracted_capture(path) as pcapng_path:` the bundle's capture as a file of its own, removed after."""

    def __init__(self, path: str):
        self.path, self.dir = path, None

    def __enter__(self) -> str:
        self.dir = tempfile.mkdtemp(prefix="kubectl-whose-bundle-")
        with _open(self.path) as tar:
            try:
                src = tar.extractfile("capture.pcapng")
            except KeyError:
                raise WhoseError(f"{self.path} has no capture.pcapng", ExitCode.BAD_INPUT) from None
            out = os.path.join(self.dir, "capture.pcapng")
            with open(out, "wb") as f:
                shutil.copyfileobj(src, f, 1 << 20)
        return out

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)
        return False
