"""Reading a bundle back (`analysis.bundle_file`) without a cluster: which pod a path names, the errors that
list the pods to pick, and a tar that is not a bundle. The bundle's writer is judged in tests/e2e/test_bundle.py."""
from __future__ import annotations

import io
import json
import tarfile

import pytest

from kubectl_whose.analysis import bundle_file
from kubectl_whose.errors import ExitCode, WhoseError


def make(path, captured, files=None, manifest_first=True):
    entries = [("manifest.json", json.dumps({"captured": captured}).encode())] + list((files or {}).items())
    if not manifest_first:
        entries.reverse()
    with tarfile.open(path, "w:gz") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def test_a_single_pod_bundle_needs_no_name(tmp_path):
    path = make(tmp_path / "b.tgz", ["ns/a"], {"pods/ns/a/rules.json": b"{}", "pods/ns/a/net/ss.txt": b"x"})
    assert bundle_file.is_bundle(path) and bundle_file.rules_text(path) == "{}"
    assert bundle_file.net_files(path) == {"ss.txt": "x"}
    assert bundle_file.net_outputs(path, {"sockets": "ss.txt", "addr": "addr.json"}) == {"sockets": "x", "addr": None}


def test_several_pods_are_listed_with_the_exact_form(tmp_path):
    path = make(tmp_path / "b.tgz", ["ns/a", "ns/b"], {"pods/ns/b/rules.json": b"B"})
    with pytest.raises(WhoseError) as e:
        bundle_file.rules_text(path)
    assert e.value.code == ExitCode.NOT_FOUND and f"{path}#ns/a, {path}#ns/b" in e.value.message
    assert bundle_file.rules_text(path + "#ns/b") == "B"
    with pytest.raises(WhoseError) as e:
        bundle_file.rules_text(path + "#ns/a")  # captured, but its rules could not be read
    assert "manifest.json notes" in e.value.message


def test_other_files_are_not_bundles(tmp_path):
    assert not bundle_file.is_bundle(make(tmp_path / "t.tgz", [], {"x": b"1"}, manifest_first=False))
    (tmp_path / "p.pcap").write_bytes(b"\xd4\xc3\xb2\xa1" + bytes(20))
    assert not bundle_file.is_bundle(str(tmp_path / "p.pcap"))
    assert not bundle_file.is_bundle(str(tmp_path / "missing.tgz"))
    assert bundle_file.split(str(tmp_path / "x.tgz#ns/p")) == (str(tmp_path / "x.tgz"), "ns/p")


def test_the_second_rule_dump_is_the_ipv6_one(tmp_path):
    from kubectl_whose.analysis.netfilter.trace.routing import routing_from_files

    v4 = tmp_path / "rule.json"
    v4.write_text('[{"priority":0,"src":"all","table":"local"},{"priority":100,"src":"10.0.0.0/8","table":"7"}]')
    v6 = tmp_path / "rule6.json"
    v6.write_text('[{"priority":0,"src":"all","table":"local"},{"priority":50,"dst":"fd00::/8","table":"9"}]')
    _, routing = routing_from_files([str(v6), str(v4)])  # the IPv6 prefix says which is which, whatever the order
    families = {(r.priority, r.table): r.family for r in routing.rules}
    assert families[(100, "7")] == "inet" and families[(50, "9")] == "inet6"
