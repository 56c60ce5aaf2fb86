"""`net` live and the connection join on a live capture, in the lab (tests/lab): real API server, exec WebSocket,
the `app-sidecar` pod with Istio's rules (iptables-legacy), its uid-1337 SO_ORIGINAL_DST proxy and the app
calling the echo Service every 0.5 s.

Oracles: the pod's and the node's namespaces read directly (not through the plugin), tshark on the capture.
"""
from __future__ import annotations

import subprocess

from kubectl_whose.analysis.pod.connections import join_connections
from kubectl_whose.analysis.netfilter.iptables_save import parse_iptables
from kubectl_whose.analysis.pod.netinfo import build_netinfo, parse_links
from kubectl_whose.analysis.pod.sockets import parse_ss
from kubectl_whose.analysis.streams import analyze_file
from kubectl_whose.collect.netinfo import RECIPES
from kubectl_whose.errors import ExitCode
from tests.helpers.cli import run
from tests.helpers.netns import requires_tools

POD = "app-sidecar"




def test_net_live_shows_the_pod_as_it_is(lab, tmp_path):
    saved = tmp_path / "saved"
    r = lab.whose("net", POD, "-o", "json", "--save", str(saved))
    assert r.code == 0, r.stderr
    d = r.json
    eth0 = next(i for i in d["interfaces"] if i["name"] == "eth0")
    assert f"{lab.pods[POD].ip}" in {a["local"] for a in eth0["addresses"]}
    # eth0@ifNN leads to interface NN on the node, and that one's peer is eth0
    node_side = next(i for i in parse_links(lab.node_run(["ip", "-d", "-j", "link", "show"]).stdout)
                     if i.index == eth0["peer_index"])
    assert node_side.kind == "veth" and node_side.peer_index == eth0["index"]
    # the listeners as ss sees them directly in the pod's namespace, not through the plugin
    direct = parse_ss(lab.netns_run(POD, ["ss", "-H", "-tlne"]).stdout)
    assert {(s.local_ip, s.local_port, s.uid) for s in direct} == \
        {(s["local_ip"], s["local_port"], s["uid"]) for s in d["sockets"] if s["state"] == "LISTEN"}
    proxy = next(s for s in d["sockets"] if s["local_port"] == 15001 and s["state"] == "LISTEN")
    assert (proxy["uid"], proxy["owner"]["kind"], proxy["owner"]["mesh"]) == (1337, "proxy", "istio")
    # --save wrote the --from-file layout: the same view offline
    assert sorted(p.name for p in saved.iterdir()) == sorted(r.file for r in RECIPES.values())
    offline = run("net", "--from-file", str(saved), "-o", "json")
    assert offline.code == 0 and offline.json["interfaces"] == d["interfaces"]
    assert offline.json["routes"] == d["routes"]


def test_net_unknown_pod(lab):
    r = lab.whose("net", "no-such-pod")
    assert r.code == ExitCode.NOT_FOUND and "no-such-pod" in r.stderr and "Traceback" not in r.stderr


@requires_tools("tshark")
def test_live_sidecar_capture_every_request_joined(lab, tmp_path):
    pcap, saved = tmp_path / "c.pcap", tmp_path / "net"
    r = lab.whose("capture", POD, "-i", "any", "--duration", "3s", "-w", str(pcap), "-o", "json")
    assert r.code == 0, r.stderr
    assert lab.whose("net", POD, "--save", str(saved), "-o", "json").code == 0
    outputs = {n: (saved / rc.file).read_text() for n, rc in RECIPES.items() if (saved / rc.file).exists()}
    net = build_netinfo(outputs)
    rules = parse_iptables(lab.netns_run(POD, ["iptables-legacy-save"]).stdout)
    summary = analyze_file(pcap).to_dict()
    joins = join_connections(summary, sockets=net.sockets, rules=rules, local_addresses=net.local_addresses())

    out = subprocess.run(["tshark", "-r", str(pcap), "-Y", "tcp", "-T", "fields", "-E", "separator=|",
                          "-e", "tcp.stream", "-e", "ip.src", "-e", "tcp.srcport", "-e", "ip.dst", "-e", "tcp.dstport",
                          "-e", "tcp.flags", "-e", "tcp.seq_raw", "-e", "tcp.ack_raw"],
                         capture_output=True, text=True, check=True).stdout
    frames = [dict(zip(("stream", "src", "sport", "dst", "dport", "flags", "seq", "ack"), line.split("|")))
              for line in out.splitlines()]
    for n, f in enumerate(frames):
        f["n"], f["from"], f["to"], f["syn"] = n, f"{f['src']}:{f['sport']}", f"{f['dst']}:{f['dport']}", \
            int(f["flags"], 16) & 0x12 == 0x02
    syns = {f["from"]: f for f in frames if f["syn"] and f["to"] == "127.0.0.1:15001"}
    answered = {c for c, syn in syns.items() for f in frames
                if int(f["flags"], 16) & 0x12 == 0x12 and f["to"] == c and int(f["ack"]) == int(syn["seq"]) + 1}
    assert len(answered) >= 3, "the app calls every 0.5 s: a 3 s capture holds several requests"
    assert {c.client for c in joins} == answered
    service = f"{lab.service_ip}:{lab.service_port}"
    upstream_syns = [f for f in frames if f["syn"] and f["to"] == service and f["src"] == lab.pods[POD].ip]
    app_syn_frames = sorted(f["n"] for f in syns.values())
    for c in joins:
        assert (c.original_dst, c.proxy, c.state, c.mesh) == (service, "127.0.0.1:15001", "established", "istio")
        assert int(syns[c.client]["stream"]) == c.syn_stream
        assert c.rule == "nat/ISTIO_REDIRECT: -A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001"
        # tshark's answer: the proxy's SYN to the Service after this app SYN and before the next one. The lab's
        # capture may lose packets (tcpdump reports "dropped by kernel"); where that SYN is missing, no link.
        start = syns[c.client]["n"]
        nxt = next((n for n in app_syn_frames if n > start), len(frames))
        expected = next((f for f in upstream_syns if start < f["n"] < nxt), None)
        if expected is None:
            assert c.upstream is None, c.upstream
        else:
            assert (c.upstream.client, c.upstream.stream) == (expected["from"], int(expected["stream"]))
    assert any(c.upstream is not None for c in joins)
    # the same joins from the live capture's own summary as from the saved file, offline
    live = [c.to_dict() for c in join_connections(r.json)]
    assert live == [c.to_dict() for c in join_connections(summary)] and len(live) == len(joins)


def test_net_tool_missing_names_the_binary_and_the_flag(lab):
    # busybox (in the lab as in life) has no iproute2: the first recipe, `ip`, is missing
    r = lab.whose("net", "client", "--image", "busybox:1.36")
    assert r.code == ExitCode.TOOL_MISSING and r.stdout == ""
    error = r.stderr.strip().splitlines()[-1]
    assert error.startswith("kubectl-whose: error: the debug image busybox:1.36 has no ip; pass --image")
    assert "executable file not found" in error  # the runtime's own words are kept


def test_shared_process_namespace_without_ptrace_names_what_is_missing(lab):
    """app-sidecar has shareProcessNamespace: the proxy's process is visible, but its /proc/PID/fd (uid 1337) is not
    readable without CAP_SYS_PTRACE; -c would not help, and the line says so with the exact command."""
    r = lab.whose("net", POD)
    assert r.code == 0, r.stderr
    assert ("  the sockets of uid 1337 show no process: their processes are visible, but reading another uid's "
            "/proc/PID/fd takes CAP_SYS_PTRACE, which the debug container lacks; `kubectl whose net app-sidecar "
            "--ptrace` adds it; owners are named by uid meanwhile") in r.stdout.splitlines()


def test_ptrace_names_the_proxys_process_and_is_never_mixed_on_reuse(lab):
    """The oracle: the proxy's PID as the pod's own PID namespace shows it (`ps` in the pod, not through us)."""
    r = lab.whose("net", POD, "--ptrace", "-o", "json", "-v=1")
    assert r.code == 0, r.stderr
    proxy = [s for s in r.json["sockets"] if s["uid"] == 1337 and s["state"] == "LISTEN"]
    assert proxy and all(s["processes"] for s in proxy), proxy
    ps = lab.pod_run(POD, ["ps", "-eo", "uid,pid"]).stdout.splitlines()[1:]
    pids_1337 = {int(ln.split()[1]) for ln in ps if ln.split()[0] == "1337"}
    assert {p["pid"] for s in proxy for p in s["processes"]} <= pids_1337 and pids_1337, (proxy, ps)
    names = lab.kubectl("get", "pod", POD, "-o", "json").stdout
    import json

    pod = json.loads(names)
    by_name = {c["name"]: c for c in pod["spec"]["ephemeralContainers"]}
    used = r.stderr.split("reusing debug container ")[1].split()[0] if "reusing debug container " in r.stderr \
        else r.stderr.split("added debug container ")[1].split()[0]
    assert by_name[used]["securityContext"]["capabilities"]["add"] == ["NET_ADMIN", "NET_RAW", "SYS_PTRACE"]
    assert "privileged" not in by_name[used]["securityContext"]
    plain = lab.whose("net", POD, "-o", "json", "-v=1")
    other = plain.stderr.split("debug container ")[1].split()[0]
    assert other != used and by_name.get(other, {}).get("securityContext", {}).get("capabilities", {}).get(
        "add", ["NET_ADMIN", "NET_RAW"]) == ["NET_ADMIN", "NET_RAW"]
