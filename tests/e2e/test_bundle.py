"""`bundle` and `capture --bundle`, in the lab: one file that holds the capture, and each pod's YAML, rules,
net outputs and doctor report; read back offline by analyze, rules, trace and net.

Oracles: tshark on the bundle's capture for the per-pod figures; the pod's own network namespace
(`iptables-save` and `ip -j` run there by the test) for the rules and net outputs the bundle holds; the API
server (kubectl get -o yaml) for the pod YAML.
"""
from __future__ import annotations

import json
import subprocess
import tarfile

import pytest
import yaml

from kubectl_whose.errors import ExitCode
from tests.helpers.cli import run
from tests.helpers.netns import requires_tools

pytestmark = [requires_tools("tcpdump", "tshark")]


@pytest.fixture(scope="module")
def two_pod_bundle(lab, tmp_path_factory):
    path = tmp_path_factory.mktemp("bundle") / "ticket.tgz"
    r = lab.whose("bundle", "app-sidecar", "echo-0", "--duration", "3s", "-f", "tcp", "--bundle", str(path),
                  "-o", "json")
    assert r.code == 0, r.stderr
    return path, r


def members(path) -> dict:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_the_bundle_holds_the_capture_and_each_pods_files(lab, two_pod_bundle, tmp_path):
    path, r = two_pod_bundle
    files = members(path)
    manifest = json.loads(files["manifest.json"])
    assert manifest["captured"] == ["default/app-sidecar", "default/echo-0"] and not manifest["failed"]
    typed = ["bundle", "app-sidecar", "echo-0", "--duration", "3s", "-f", "tcp", "--bundle", str(path), "-o", "json"]
    assert manifest["command"][:2] == ["kubectl", "whose"] and manifest["command"][2:13] == typed
    for pod in ("app-sidecar", "echo-0"):
        for name in ("pod.yaml", "rules.json", "doctor.json", "net/addr.json", "net/ss.txt"):
            assert f"pods/default/{pod}/{name}" in files, (pod, name, sorted(files))
    assert sorted(manifest["files"]) == sorted(n for n in files if n != "manifest.json")
    # the capture: tshark counts each pod's frames on its own interface
    (tmp_path / "c.pcapng").write_bytes(files["capture.pcapng"])
    for pod in json.loads(files["summary.json"])["pods"]:
        out = subprocess.run(["tshark", "-r", str(tmp_path / "c.pcapng"), "-Y",
                              f'frame.interface_name == "default/{pod["pod"]}:any"', "-T", "fields", "-e",
                              "frame.number"], capture_output=True, text=True, check=True).stdout.split()
        assert len(out) == pod["packets"] > 0
    assert json.loads(files["summary.json"]) == r.json  # the file holds what the command printed
    # the pod as the API server has it
    live = yaml.safe_load(lab.kubectl("get", "pod", "echo-0", "-o", "yaml").stdout)
    saved = yaml.safe_load(files["pods/default/echo-0/pod.yaml"])
    assert saved["metadata"]["uid"] == live["metadata"]["uid"] and saved["spec"]["containers"] == \
        live["spec"]["containers"]


def test_rules_and_trace_read_one_pod_of_the_bundle(lab, two_pod_bundle):
    path, _ = two_pod_bundle
    r = lab.whose("rules", "--from-file", f"{path}#default/app-sidecar", "-o", "json")
    assert r.code == 0, r.stderr
    # the kernel's own dump of the pod's namespace: every rule of the nat table is in the bundle's view
    saved = "".join(lab.netns_run("app-sidecar", [tool, "-t", "nat"], capture_output=True, text=True).stdout
                    for tool in ("iptables-legacy-save", "iptables-nft-save"))
    kernel_rules = [line for line in saved.splitlines() if line.startswith("-A ")]
    ours = [rule for rs in r.json["rulesets"] for t in rs["tables"] if t["name"] == "nat" for c in t["chains"]
            for rule in c["rules"]]
    assert len(ours) == len(kernel_rules) > 0
    # trace takes the routing and addresses from the bundle's net outputs: the source the kernel picks
    t = lab.whose("trace", "--from-file", f"{path}#default/echo-0", "--to", "10.1.2.3:80", "-o", "json")
    assert t.code == 0, t.stderr
    route = json.loads(lab.netns_run("echo-0", ["ip", "-j", "route", "get", "10.1.2.3"], capture_output=True,
                                     text=True).stdout)[0]
    assert [o["source"] for o in t.json["outcomes"]] == [route["prefsrc"]]


def test_net_reads_one_pod_of_the_bundle_as_the_pods_namespace_says(lab, two_pod_bundle):
    path, _ = two_pod_bundle
    r = lab.whose("net", "--from-file", f"{path}#default/echo-0", "-o", "json")
    assert r.code == 0, r.stderr
    kernel = json.loads(lab.netns_run("echo-0", ["ip", "-j", "addr", "show"], capture_output=True,
                                      text=True).stdout)
    want = {(a["ifname"], i["local"]) for a in kernel for i in a["addr_info"]}
    got = {(i["name"], a["local"]) for i in r.json["interfaces"] for a in i["addresses"]}
    assert want == got


def test_a_bundle_of_several_pods_asks_which_one(lab, two_pod_bundle):
    path, _ = two_pod_bundle
    r = lab.whose("rules", "--from-file", str(path))
    assert r.code == ExitCode.NOT_FOUND
    assert f"{path}#default/app-sidecar" in r.stderr and f"{path}#default/echo-0" in r.stderr
    assert "Traceback" not in r.stderr
    r = lab.whose("net", "--from-file", f"{path}#default/nope")
    assert r.code == ExitCode.NOT_FOUND and "has no pod default/nope" in r.stderr


def test_analyze_reads_the_bundle_as_the_capture_it_holds(lab, two_pod_bundle):
    path, live = two_pod_bundle
    r = run("analyze", str(path), "-o", "json")  # offline: no cluster flags
    assert r.code == 0, r.stderr
    got = {p["pod"]: (p["packets"], len(p["streams"])) for p in r.json["pods"]}
    assert got == {p["pod"]: (p["packets"], len(p["streams"])) for p in live.json["pods"]}


def test_capture_bundle_of_one_pod_keeps_w_and_refuses_a_directory(lab, tmp_path):
    path, pcap = tmp_path / "one.tgz", tmp_path / "one.pcapng"
    r = lab.whose("capture", "echo-1", "--duration", "2s", "--bundle", str(path), "-w", str(pcap))
    assert r.code == 0, r.stderr
    assert pcap.stat().st_size > 0 and members(path)["capture.pcapng"] == pcap.read_bytes()
    r = lab.whose("capture", "echo-1", "--duration", "2s", "--bundle", str(path), "-w", str(tmp_path) + "/")
    assert r.code == ExitCode.USAGE and "-w FILE.pcapng" in r.stderr
