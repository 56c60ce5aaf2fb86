#!/usr/bin/env python3
"""Build the krew archives and fill krew-manifest.yaml from plugin.yaml.

    python3 scripts/dist.py [--out dist] [--manifest krew-manifest.yaml]

Two archives, one launcher and the dependencies bundled under lib/ in both:
* kubectl-whose-vX-linux-amd64.tar.gz ships the native analysis engine
  (lib/kubectl_whose/analysis/streams/native/_engine.abi3.so). It is built against the limited API, so the one
  file serves every CPython >= 3.9 on linux/amd64; it is only built on a linux/x86_64 machine.
* kubectl-whose-vX.tar.gz is pure Python, for every other platform krew serves: it runs the same
  analysis with the pure-Python engine.
The dependencies are the releases pip picks for setup.cfg's oldest Python (python_requires), not
for the Python running this. Every other compiled module (PyYAML's libyaml binding,
charset-normalizer's mypyc build) is dropped from both: those are built for one CPython version,
and both packages fall back to their pure-Python code. The tarballs are deterministic for a given
set of files (sorted entries, fixed mtimes and owners, gzip without a timestamp), so a sha256 only
changes when the content does.
"""
from __future__ import annotations

import argparse
import configparser
import gzip
import hashlib
import io
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
RELEASES = "https://github.com/kubectl-whose/kubectl-whose/releases/download"
EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "1700000000"))
NATIVE_ENGINE = Path("kubectl_whose") / "analysis" / "streams" / "native" / "_engine.abi3.so"  # relative to lib/
NATIVE_SUFFIX = "-linux-amd64"  # the one platform the native archive is built for


def version() -> str:
    ns: dict = {}
    exec((ROOT / "kubectl_whose" / "__init__.py").read_text(), ns)
    return ns["__version__"]


def native_skip_reason(system: str, machine: str, pointer_bits: int) -> Optional[str]:
    """Why this machine cannot build the linux/amd64 native archive, or None when it can."""
    if system == "linux" and machine.lower() in ("x86_64", "amd64") and pointer_bits == 64:
        return None
    return (f"this machine is {system}/{machine} ({pointer_bits}-bit Python); the native engine archive is built "
            "only on linux/x86_64, so linux/amd64 gets the pure-Python archive in the manifest")


def is_compiled(path: Path) -> bool:
    return path.suffix in (".so", ".pyd") or ".so." in path.name


def oldest_python() -> str:
    """The oldest CPython the archives must run on: setup.cfg's python_requires (">=3.9")."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    spec = cfg["options"]["python_requires"].strip()
    if not spec.startswith(">="):
        raise SystemExit(f"dist.py: error: setup.cfg python_requires {spec!r} is not of the form >=X.Y")
    return spec[2:].strip()


def requirements(wheel: Path) -> list:
    """The wheel's own Requires-Dist lines, extras left out."""
    with zipfile.ZipFile(wheel) as whl:
        name = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
        meta = whl.read(name).decode()
    reqs = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    return [r for r in reqs if "extra ==" not in r]


def pip(command: str, *args: str) -> None:
    rc = subprocess.run([sys.executable, "-m", "pip", command, "-q", "--disable-pip-version-check", *args]).returncode
    if rc:
        raise SystemExit(f"dist.py: error: `pip {command}` failed (exit {rc}); pip's own message is above")


def install(lib: Path) -> None:
    """pip-install kubectl-whose and its dependencies into lib/ (builds the native engine if it can).

    The dependencies are resolved for the oldest supported CPython, not for the one running this:
    resolved for 3.11, pip picks click and python-dateutil releases that need 3.10 / 3.11, and the
    archive would break on the 3.9 the manifest promises.
    """
    lib.mkdir(parents=True)
    wheels, deps = lib.parent / "wheel", lib.parent / "deps"
    # pip builds in-tree: setuptools' build/ would carry modules deleted since the last build
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    pip("wheel", "--no-deps", "-w", str(wheels), str(ROOT))
    wheel = next(wheels.glob("kubectl_whose-*.whl"))
    pip("install", "--no-compile", "--no-deps", "--target", str(lib), str(wheel))
    # `pip download` honours --python-version where `pip install --target` (pip 23.2) picked click 8.5
    # for 3.9 all the same; the downloaded wheels are then installed as they are, no second resolve.
    target = ["--python-version", oldest_python(), "--only-binary=:all:"]
    pip("download", *target, "-d", str(deps), *requirements(wheel))
    pip("install", *target, "--no-compile", "--no-deps", "--no-index", "--target", str(lib),
        *map(str, sorted(deps.glob("*.whl"))))
    shutil.rmtree(wheels)
    shutil.rmtree(deps)
    # direct_url.json records where this build kept the wheels (a temporary path): drop it, and its
    # line in RECORD, so the archive does not depend on --out
    for info in sorted(lib.glob("*.dist-info")):
        (info / "direct_url.json").unlink(missing_ok=True)
        record = info / "RECORD"
        if record.exists():
            lines = record.read_text().splitlines(keepends=True)
            record.write_text("".join(line for line in lines if not line.split(",")[0].endswith("/direct_url.json")))
    shutil.rmtree(lib / "bin", ignore_errors=True)
    for path in sorted(lib.rglob("__pycache__")):
        shutil.rmtree(path, ignore_errors=True)


def stage(staging: Path, lib: Path, keep: Sequence[Path] = ()) -> None:
    """The archive's tree: launcher, docs and a copy of lib/ without compiled modules except `keep`."""
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    shutil.copytree(lib, staging / "lib", symlinks=True)
    kept = {staging / "lib" / k for k in keep}
    for path in sorted((staging / "lib").rglob("*")):
        if path.is_file() and is_compiled(path) and path not in kept:
            path.unlink()
    shutil.copy2(ROOT / "scripts" / "kubectl-whose.sh", staging / "kubectl-whose")
    (staging / "kubectl-whose").chmod(0o755)
    for name in ("README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, staging / name)


def deterministic_tar_gz(src: Path, dest: Path) -> None:
    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mtime = EPOCH
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mode = 0o755 if (info.isdir() or info.mode & 0o111) else 0o644
        return info

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        paths = [src] + sorted(src.rglob("*"))
        for path in paths:
            tar.add(path, arcname=str(path.relative_to(src.parent)), recursive=False, filter=normalise)
    with open(dest, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        gz.write(buf.getvalue())


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def render_manifest(ver: str, pure: tuple, native: Optional[tuple]) -> str:
    """plugin.yaml filled in: {{URI}}/{{SHA256}} = the pure archive (uri, sha256), the
    {{LINUX_AMD64_*}} pair = the native one (the pure one again when it was not built)."""
    native = native or pure
    text = (ROOT / "plugin.yaml").read_text()
    body = text[text.index("apiVersion:"):]  # drop the template's own header comment
    header = f"# Generated by scripts/dist.py from plugin.yaml for v{ver}; do not edit by hand.\n"
    for key, value in (("{{VERSION}}", ver), ("{{LINUX_AMD64_URI}}", native[0]),
                       ("{{LINUX_AMD64_SHA256}}", native[1]), ("{{URI}}", pure[0]), ("{{SHA256}}", pure[1])):
        body = body.replace(key, value)
    if "{{" in body:
        raise SystemExit(f"dist.py: error: plugin.yaml has a placeholder dist.py does not fill: "
                         f"{body[body.index('{{'):].split(chr(10))[0]}")
    return header + body


def build(path: Path, staging: Path, lib: Path, keep: Sequence[Path] = ()) -> tuple:
    stage(staging, lib, keep)
    deterministic_tar_gz(staging, path)
    shutil.rmtree(staging)
    digest = sha256(path)
    print(f"{path} {digest}")
    return path, digest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "dist"), help="directory for the archives")
    ap.add_argument("--manifest", default=str(ROOT / "krew-manifest.yaml"), help="where to write the manifest")
    args = ap.parse_args(argv)
    ver = version()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = out / "staging"
    shutil.rmtree(work, ignore_errors=True)
    install(work / "lib")
    skip = native_skip_reason(sys.platform, platform.machine(), 64 if sys.maxsize > 2**32 else 32)
    native = None
    if skip:
        print(f"dist.py: skipping kubectl-whose-v{ver}{NATIVE_SUFFIX}.tar.gz: {skip}", file=sys.stderr)
    elif not (work / "lib" / NATIVE_ENGINE).is_file():
        shutil.rmtree(work)
        print(f"dist.py: error: pip did not build {NATIVE_ENGINE} (the build is optional, so pip succeeded "
              "without it): install a C compiler and the Python headers (Debian: apt-get "
              "install gcc python3-dev) and run dist.py again", file=sys.stderr)
        return 3
    else:
        native = build(out / f"kubectl-whose-v{ver}{NATIVE_SUFFIX}.tar.gz", work / "native" / "kubectl-whose",
                       work / "lib", keep=[NATIVE_ENGINE])
    pure = build(out / f"kubectl-whose-v{ver}.tar.gz", work / "pure" / "kubectl-whose", work / "lib")
    shutil.rmtree(work)
    uri = lambda archive: f"{RELEASES}/v{ver}/{archive[0].name}"  # noqa: E731
    text = render_manifest(ver, (uri(pure), pure[1]), native and (uri(native), native[1]))
    Path(args.manifest).write_text(text)
    print(args.manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
