"""`capture` of several pods at once, in the lab: by selector, workload and Service; one merged pcapng with an
interface per pod; per-pod summaries; and connections followed from pod to pod through the Service's DNAT.

Oracles: tshark on the merged file (per interface) for the per-pod figures; the app's own log for which echo
pod answered each request and from which source port the echo pod saw it (`pod=echo-1 ... peer=IP:PORT`,
written by tests/lab/echo_server.py into the reply) for the pod-to-pod links; the API for what a target
names.
"""
from __future__ import annotations

import json
import re
import subprocess

import pytest

from kubectl_whose.errors import ExitCode
from tests.helpers.cli import run
from tests.helpers.netns import requires_tools

pytestmark = [requires_tools("tcpdump", "tshark")]
ECHO = ["default/echo-0", "default/echo-1", "default/echo-2"]


def pods_of(r) -> list:
    return sorted(f"{p['namespace']}/{p['pod']}" for p in r.json["pods"])


def test_a_selector_captures_every_pod_into_one_pcapng_with_an_interface_each(lab, tmp_path):
    merged = tmp_path / "echo.pcapng"
    r = lab.whose("capture", "-l", "app=echo", "--duration", "3s", "-w", str(merged), "-o", "json")
    assert r.code == 0, r.stderr
    assert pods_of(r) == ECHO
    names = subprocess.run(["tshark", "-r", str(merged), "-T", "fields", "-e", "frame.interface_name"],
                           capture_output=True, text=True, check=True).stdout.split()
    assert set(names) == {f"{p}:any" for p in ECHO}
    for pod in r.json["pods"]:
        iface = f"{pod['namespace']}/{pod['pod']}:any"
        def frames(extra: str = "") -> list:
            return subprocess.run(["tshark", "-r", str(merged), "-Y", f'frame.interface_name == "{iface}"{extra}',
                                   "-T", "fields", "-e", "frame.len"], capture_output=True, text=True,
                                  check=True).stdout.split()

        assert pod["packets"] == len(frames()) > 0, iface  # every frame of that pod, and only those
        in_streams = frames(" && (tcp || udp) && !icmp")
        assert sum(p["bytes"] for p in pod["streams"]) == sum(map(int, in_streams))


def test_workload_and_service_targets_resolve_as_kubectl_does(lab):
    r = lab.whose("capture", "svc/echo", "deploy/sidecar-demo", "--count", "1", "--duration", "3s", "-o", "json")
    assert r.code == 0, r.stderr
    assert pods_of(r) == ["default/app-sidecar", "default/app-sidecar-nft"] + ECHO
    via = {f"{p['namespace']}/{p['pod']}": p["via"] for p in r.json["pods"]}
    assert via["default/echo-0"] == "svc/echo" and via["default/app-sidecar"] == "deploy/sidecar-demo"
    # the oracle: kubectl's own resolution of the same targets
    kubectl = lab.kubectl("get", "pods", "-l", "app in (echo,sidecar-demo)", "-o", "name").stdout.split()
    assert sorted("default/" + n.split("/", 1)[1] for n in kubectl) == pods_of(r)


def test_connections_are_followed_from_the_client_pod_to_the_echo_pod_that_answered(lab, tmp_path):
    merged = tmp_path / "chain.pcapng"
    r = lab.whose("capture", "pod/app-sidecar", "sts/echo", "--duration", "4s", "-f", "tcp", "-o", "json",
                  "-w", str(merged))
    assert r.code == 0, r.stderr
    links = r.json["links"]
    assert links, r.stderr
    # the truth: what the echo pods told the app about each request: who answered, from where they saw it
    log = lab.kubectl("logs", "app-sidecar", "-c", "app").stdout
    seen_by_echo = {m.group(2): f"default/{m.group(1)}" for m in re.finditer(r"pod=(echo-\d) addr=\S+ peer=(\S+)", log)}
    relayed = {x["upstream_local"]: x["peer"] for x in map(json.loads, filter(
        lambda line: line.startswith("{"), lab.kubectl("logs", "app-sidecar", "-c", "istio-proxy").stdout.splitlines()))
        if x["relay"] == "outbound"}
    app_syns = {s["client"] for p in r.json["pods"] if p["pod"] == "app-sidecar" for s in p["streams"]
                if s["client_isn"] is not None and s["server"] == "127.0.0.1:15001"}
    for link in links:
        assert link["from"]["pod"] == "default/app-sidecar"
        assert seen_by_echo.get(link["to"]["client"]) == link["to"]["pod"], link
        assert link["nat"] == [f"DNAT {lab.service_ip}:{lab.service_port} -> {link['to']['server']}"]
        assert 0 <= link["delay"] < 0.5 and link["clock_caveat"] is None  # one node, one clock
        # the app's connection through its proxy starts the chain, whenever its SYN was captured (the proxy's
        # log says which app connection each upstream leg carried)
        app_end = relayed.get(link["from"]["client"])
        if app_end in app_syns:
            assert "sidecar" in link["text"] and f"app {app_end}" in link["text"], (link, app_end)
    # none missed: every SYN from app-sidecar that both its capture and an echo pod's saw (the pods' captures
    # start and stop a few ms apart) was linked
    sent = {s["client_isn"] for p in r.json["pods"] if p["pod"] == "app-sidecar" for s in p["streams"]}
    captured_echo_syns = {(p["pod"], s["client"]) for p in r.json["pods"] if p["pod"].startswith("echo")
                          for s in p["streams"] if s["client_isn"] in sent and s["client"].startswith(
                              lab.pods["app-sidecar"].ip + ":")}
    assert {(x["to"]["pod"].split("/")[1], x["to"]["client"]) for x in links} == captured_echo_syns
    # offline, the merged file gives every pod's view and the same links (the addresses ride in the file)
    offline = run("analyze", str(merged), "-o", "json")
    assert offline.code == 0, offline.stderr
    live_pods = {p["pod"]: p["streams"] for p in r.json["pods"]}
    assert {p["pod"]: p["streams"] for p in offline.json["pods"]} == live_pods
    key = lambda x: (x["from"]["pod"], x["from"]["stream"], x["to"]["pod"], x["to"]["stream"], tuple(x["nat"]))  # noqa
    assert sorted(map(key, offline.json["links"])) == sorted(map(key, links))
    # each hop's number in the merged file is tshark's tcp.stream there: the hop's stream on the hop's pod's
    # interface has those endpoints, and its SYN (when it has one) the hop's ISN
    fields = subprocess.run(["tshark", "-r", str(merged), "-Y", "tcp", "-T", "fields", "-e", "tcp.stream", "-e",
                             "frame.interface_name", "-e", "ip.src", "-e", "tcp.srcport", "-e", "ip.dst", "-e",
                             "tcp.dstport", "-e", "tcp.flags.syn", "-e", "tcp.flags.ack", "-e", "tcp.seq_raw"],
                            capture_output=True, text=True, check=True).stdout.split("\n")
    seen = {}
    for line in filter(None, fields):
        stream, iface, src, sport, dst, dport, syn, ack, seq = line.split("\t")
        pod = iface.rsplit(":", 1)[0]
        seen.setdefault(int(stream), set()).add((pod, frozenset((f"{src}:{sport}", f"{dst}:{dport}"))))
        if syn == "1" and ack == "0":
            seen[int(stream)].add((pod, int(seq)))
    rows = {(p["namespace"] + "/" + p["pod"], s["index"]): s for p in r.json["pods"] for s in p["streams"]}
    for link in links:
        for hop in link["hops"]:
            assert len(hop["merged_streams"]) == len(hop["streams"]) and None not in hop["merged_streams"], hop
            for own, merged_index in zip(hop["streams"], hop["merged_streams"]):
                row = rows[(hop["pod"], own)]
                assert (hop["pod"], frozenset((row["client"], row["server"]))) in seen[merged_index], hop
                if row["client_isn"] is not None:
                    assert (hop["pod"], row["client_isn"]) in seen[merged_index], hop


def test_one_pod_failing_does_not_stop_the_others(lab):
    with lab.isolated_namespace(prefix="mf") as ns:
        lab.create_pod(ns, "live", image="busybox:1.36")
        lab.create_pod(ns, "done", image="busybox:1.36", command=["true"], wait=False)
        lab.wait_pod(ns, "done", lambda p: (p.get("status") or {}).get("phase") == "Succeeded")
        r = lab.whose("capture", "-n", ns, "live", "done", "--duration", "2s", "-o", "json")
    assert r.code == ExitCode.PARTIAL, r.stderr
    by = {p["pod"]: p for p in r.json["pods"]}
    assert by["done"]["error"].startswith(f"pod {ns}/done is not running (phase Succeeded)")
    assert by["live"]["error"] is None and "packets" in by["live"]
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("kubectl-whose: error: ")]
    assert lines == [f"kubectl-whose: error: 1 of 2 pods could not be captured ({ns}/done); the others' results "
                     f"are above"]


def test_a_selector_that_selects_nothing_is_one_line(lab):
    r = lab.whose("capture", "-l", "app=nothing-here", "--count", "1")
    assert r.code == ExitCode.NOT_FOUND
    assert r.stderr.strip() == 'kubectl-whose: error: no pods match -l app=nothing-here in namespace "default"'


@pytest.mark.parametrize("args, message", [
    (["-w", "-"], "-w - writes one pod's pcap to stdout"),
    (["--stream", "0"], "--stream N names one stream of one pod"),
])
def test_one_pod_flags_are_refused_for_several(lab, args, message):
    r = lab.whose("capture", "-l", "app=echo", "--count", "1", *args)
    assert r.code == ExitCode.USAGE and message in r.stderr
