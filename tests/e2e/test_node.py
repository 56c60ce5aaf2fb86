"""`capture --node`, for namespaces whose PodSecurity forbids NET_RAW, in the lab: a real node debug pod with
hostNetwork in the node's network namespace, the pod's host-side interface found on both CNI styles (the
bridge's forwarding table, a routed cali* veth), and the capture checked frame for frame against the very
traffic captured inside the pod's own namespace (what the node cannot see, the pod's lo, excluded).

Oracle: tcpdump run directly in the pod's network namespace, read by tshark; the node debug pod's existence is
asked of the API server; the interface is the one the kernel's own tables give (`ip route get` on the node).
"""
from __future__ import annotations

import json
import signal
import subprocess
import threading
import time

import pytest

from kubectl_whose.errors import ExitCode
from tests.helpers.netns import requires_tools

pytestmark = [requires_tools("tcpdump", "tshark", "curl")]
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted"}
PRIVILEGED = {"pod-security.kubernetes.io/enforce": "privileged"}
ECHO = [{"name": "web", "image": "kubectl-whose-lab/echo:1",
         "command": ["python3", "{lab}/echo_server.py", "--port", "8080"],
         "ports": [{"containerPort": 8080, "protocol": "TCP"}]}]
FIELDS = ("ip.src", "ip.dst", "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.ack_raw", "tcp.flags", "frame.len")


def restricted_web(lab, ns: str, name: str, cni: str) -> dict:
    sc = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    containers = [dict(ECHO[0], securityContext=sc)]
    return lab.create_pod(ns, name, containers=containers, cni=cni, pod_security_context={
        "runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}})


def node_pods(lab, namespace: str) -> list:
    code, body, _ = lab.request("GET", f"/api/v1/namespaces/{namespace}/pods")
    assert code == 200
    return [p["metadata"]["name"] for p in body["items"] if p["metadata"]["name"].startswith("whose-node-")]


def packets(path) -> list:
    out = subprocess.run(["tshark", "-r", str(path), "-Y", "tcp", "-T", "fields",
                          *[a for f in FIELDS for a in ("-e", f)]], capture_output=True, text=True, check=True).stdout
    return [tuple(line.split("\t")) for line in out.splitlines() if line.strip()]


def traffic(lab, ns: str, pod: str, ip: str, stop: threading.Event) -> None:
    """From the client pod to the web pod (seen by the node), and inside the web pod on lo (not seen)."""
    while not stop.is_set():
        lab.netns_run("client", ["curl", "-s", "-m", "2", f"http://{ip}:8080/"], check=False)
        lab.netns_run(pod, ["curl", "-s", "-m", "2", "http://127.0.0.1:8080/"], namespace=ns, check=False)
        time.sleep(0.2)


@pytest.mark.parametrize("cni", ["bridge", "routed"])
def test_capture_from_the_node_equals_the_pods_own_eth0_frame_for_frame(lab, tmp_path, cni):
    with lab.isolated_namespace(labels=RESTRICTED, prefix="nr") as ns, \
            lab.isolated_namespace(labels=PRIVILEGED, prefix="nd") as debug_ns:
        pod = restricted_web(lab, ns, "web", cni)
        ip = pod["status"]["podIP"]
        route = json.loads(lab.node_run(["ip", "-j", "route", "get", ip]).stdout)[0]["dev"]
        inside = tmp_path / "inside.pcap"
        # the oracle: tcpdump in the pod's own namespace, on every interface but lo
        tap = subprocess.Popen(["ip", "netns", "exec", lab.pod_info("web", ns).netns, "tcpdump", "-i", "eth0", "-U",
                                "-w", str(inside), "tcp port 8080"], stderr=subprocess.PIPE)
        time.sleep(1)
        stop = threading.Event()
        gen = threading.Thread(target=traffic, args=(lab, ns, "web", ip, stop), daemon=True)
        gen.start()
        try:
            r = lab.whose("capture", "web", "-n", ns, "--node", "--node-namespace", debug_ns, "--duration", "4s",
                          "-f", "tcp port 8080", "-w", str(tmp_path / "node.pcap"), "-o", "json")
        finally:
            stop.set()
            gen.join()
            time.sleep(0.5)
            tap.send_signal(signal.SIGINT)
            tap.wait(10)
        assert r.code == 0, r.stderr
        point = r.json["capture_point"]
        expected = route if cni == "routed" else None
        assert point["where"] == "node" and point["cni"] == ("routed" if cni == "routed" else "bridged")
        # the kernel's answer: the node-side end of the pod's eth0 veth (eth0@ifNN: NN is its index on the node)
        peer = int(lab.netns_run("web", ["cat", "/sys/class/net/eth0/iflink"], namespace=ns).stdout)
        truth_if = next(lk["ifname"] for lk in json.loads(lab.node_run(["ip", "-j", "link", "show"]).stdout)
                        if lk["ifindex"] == peer)
        assert point["interface"] == truth_if
        if expected:
            assert point["interface"] == expected and point["interface"].startswith("cali")
        else:
            assert point["bridge"] == "cbr0" and point["mac"]
        assert "the pod's lo" in r.stderr and f"interface {point['interface']}" in r.stderr
        assert node_pods(lab, debug_ns) == []  # removed when the capture ended
        ours, truth = packets(tmp_path / "node.pcap"), packets(inside)
        assert len(ours) > 20
        # the node capture ran inside the oracle's window: it is one contiguous run of the oracle's frames
        start = truth.index(ours[0])
        assert truth[start:start + len(ours)] == ours
        assert not any(p[0] == "127.0.0.1" for p in ours)


def test_ctrl_c_stops_the_capture_and_removes_the_node_debug_pod(lab, tmp_path):
    with lab.isolated_namespace(labels=RESTRICTED, prefix="nc") as ns, \
            lab.isolated_namespace(labels=PRIVILEGED, prefix="nd") as debug_ns:
        restricted_web(lab, ns, "web", "bridge")
        cli = lab.popen_whose("capture", "web", "-n", ns, "--node", "--node-namespace", debug_ns,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 60
        while time.time() < deadline and not node_pods(lab, debug_ns):
            time.sleep(0.1)
        assert node_pods(lab, debug_ns), "no node debug pod appeared"
        time.sleep(2)
        listed = lab.whose("ps", "web", "-n", ns, "--node-namespace", debug_ns, "-o", "json")
        assert [p["name"] for p in listed.json["node_pods"]] == node_pods(lab, debug_ns)
        assert listed.json["node_pods"][0]["node"] == "lab-node" and listed.json["node_pods"][0]["state"] == "running"
        cli.send_signal(signal.SIGINT)
        out, err = cli.communicate(timeout=30)
        assert cli.returncode == ExitCode.INTERRUPTED, err.decode()
        assert node_pods(lab, debug_ns) == []


def test_without_node_a_restricted_namespace_names_the_switch(lab):
    with lab.isolated_namespace(labels=RESTRICTED, prefix="nw") as ns:
        restricted_web(lab, ns, "web", "bridge")
        r = lab.whose("capture", "web", "-n", ns, "--count", "1")
    assert r.code == ExitCode.ADMISSION_REJECTED
    assert "or add --node to work from the pod's node instead" in r.stderr


def test_a_node_namespace_that_forbids_it_is_one_line_naming_the_flag(lab):
    with lab.isolated_namespace(labels=RESTRICTED, prefix="nb") as ns, \
            lab.isolated_namespace(labels={"pod-security.kubernetes.io/enforce": "baseline"}, prefix="nb") as bad:
        restricted_web(lab, ns, "web", "bridge")
        r = lab.whose("capture", "web", "-n", ns, "--node", "--node-namespace", bad, "--count", "1")
        assert node_pods(lab, bad) == []
    assert r.code == ExitCode.ADMISSION_REJECTED
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("kubectl-whose: error: ")]
    assert len(lines) == 1 and f'namespace "{bad}" does not allow the node debug pod' in lines[0]
    assert "--node-namespace" in lines[0] and "hostNetwork" in lines[0]


def test_doctor_says_which_path_works(lab):
    with lab.isolated_namespace(labels=RESTRICTED, prefix="nk") as ns, \
            lab.isolated_namespace(labels=PRIVILEGED, prefix="nd") as debug_ns:
        restricted_web(lab, ns, "web", "bridge")
        plain = lab.whose("doctor", "web", "-n", ns, "--node-namespace", debug_ns, "-o", "json")
        node = lab.whose("doctor", "web", "-n", ns, "--node", "--node-namespace", debug_ns, "-o", "json")
        entered = lab.whose("doctor", "web", "-n", ns, "--node", "--node-nsenter", "--node-namespace", debug_ns,
                            "-o", "json")
    grants = {c["name"]: c for c in entered.json["checks"]}["node: --node-nsenter grants"]
    assert entered.code == 0 and "hostPID and SYS_ADMIN+SYS_PTRACE: it sees every process" in grants["detail"]
    assert "node: --node-nsenter grants" not in {c["name"] for c in node.json["checks"]}
    rows = {c["name"]: c for c in plain.json["checks"]}
    assert plain.code == ExitCode.ADMISSION_REJECTED and rows["PodSecurity"]["result"] == "fail"
    assert plain.json["path"]["result"] == "warn" and "--node works" in plain.json["path"]["detail"]
    assert rows["node: dry run"]["result"] == "pass"
    assert node.code == 0, node.stdout
    assert node.json["path"]["result"] == "pass"


def test_rules_of_a_node_are_the_nodes_own_dump(lab):
    """`rules node/NAME` reads the node's kube-proxy rules from a node debug pod; the oracle is the same save
    tool run directly in the lab's node namespace."""
    from kubectl_whose.analysis.netfilter.iptables_save import parse_iptables

    with lab.isolated_namespace(labels=PRIVILEGED, prefix="nd") as debug_ns:
        r = lab.whose("rules", "node/lab-node", "--node-namespace", debug_ns, "--table", "nat", "-o", "json")
        assert node_pods(lab, debug_ns) == []
    assert r.code == 0, r.stderr
    direct = parse_iptables(lab.node_run(["iptables-nft-save", "-t", "nat"]).stdout)
    want = {c: [rule.key() for rule in ch.rules] for c, ch in direct.tables["nat"].chains.items()}
    nft = next(rs for rs in r.json["rulesets"] if rs.get("backend") == "nft")
    nat = next(t for t in nft["tables"] if t["name"] == "nat")
    assert {c["name"]: [x["text"] for x in c["rules"]] for c in nat["chains"]} == want
    assert "KUBE-SERVICES" in want


def test_net_from_the_node_names_the_pods_interface(lab):
    with lab.isolated_namespace(labels=RESTRICTED, prefix="nn") as ns, \
            lab.isolated_namespace(labels=PRIVILEGED, prefix="nd") as debug_ns:
        restricted_web(lab, ns, "web", "routed")
        r = lab.whose("net", "web", "-n", ns, "--node", "--node-namespace", debug_ns, "-o", "json")
        peer = int(lab.netns_run("web", ["cat", "/sys/class/net/eth0/iflink"], namespace=ns).stdout)
    assert r.code == 0, r.stderr
    seen = r.json["seen_from"]
    assert seen["where"] == "node" and seen["node"] == "lab-node" and seen["pod"] == "web"
    host = next(i for i in r.json["interfaces"] if i["index"] == peer)
    assert seen["host_interface"]["interface"] == host["name"] and host["name"].startswith("cali")
    assert any(i["name"] == "cbr0" for i in r.json["interfaces"])  # the node's own view


def test_trace_through_the_node_forwards_a_service_packet_to_its_endpoints(lab):
    """A pod -> ClusterIP packet through the node: PREROUTING, DNAT to each echo pod, FORWARD, POSTROUTING, with
    the node's own routes (read live by the node debug pod). The kernel's truth: a real request from the
    client pod reaches one of the three echo pods (tests/lab/test_network.py); here their addresses."""
    client = lab.pods["client"].ip
    veth = next(lk["ifname"] for lk in json.loads(lab.node_run(["ip", "-j", "link", "show"]).stdout)
                if lk["ifindex"] == int(lab.netns_run("client", ["cat", "/sys/class/net/eth0/iflink"]).stdout))
    with lab.isolated_namespace(labels=PRIVILEGED, prefix="nd") as debug_ns:
        r = lab.whose("trace", "node/lab-node", "--node-namespace", debug_ns, "--inbound", "--iface", veth,
                      "--from", f"{client}:40000", "--to", f"{lab.service_ip}:{lab.service_port}", "-o", "json")
        assert node_pods(lab, debug_ns) == []
    assert r.code == 0, r.stderr
    ends = {o["destination"] for o in r.json["outcomes"]}
    assert ends == {f"{lab.pods[f'echo-{i}'].ip}:8080" for i in range(3)}
    for o in r.json["outcomes"]:
        assert o["verdict"] == "DNAT" and o["sender_sees"] == "delivered"
        assert [s["chain"] for s in o["steps"] if s["hook"] == "routing"] == ["forward"]
    assert "FORWARD" in r.json["hooks"] and "INPUT" not in r.json["hooks"]
    assert not any("routing not evaluated" in a for a in r.json["assumptions"])


def test_node_nsenter_captures_the_pods_own_lo_frame_for_frame(lab, tmp_path):
    """--node-nsenter: the node debug pod (hostPID, SYS_ADMIN+SYS_PTRACE) finds the pod's network namespace by its
    address and captures inside it: the app <-> sidecar traffic on lo that the node's interfaces never carry.
    Oracle: tcpdump on lo in the pod's namespace, run directly, frame for frame."""
    with lab.isolated_namespace(labels=RESTRICTED, prefix="ne") as ns, \
            lab.isolated_namespace(labels=PRIVILEGED, prefix="nd") as debug_ns:
        pod = restricted_web(lab, ns, "web", "routed")
        ip = pod["status"]["podIP"]
        inside = tmp_path / "lo.pcap"
        tap = subprocess.Popen(["ip", "netns", "exec", lab.pod_info("web", ns).netns, "tcpdump", "-i", "lo", "-U",
                                "-w", str(inside), "tcp port 8080"], stderr=subprocess.PIPE)
        time.sleep(1)
        stop = threading.Event()
        gen = threading.Thread(target=traffic, args=(lab, ns, "web", ip, stop), daemon=True)
        gen.start()
        try:
            r = lab.whose("capture", "web", "-n", ns, "--node", "--node-nsenter", "--node-namespace", debug_ns,
                          "-i", "lo", "--duration", "4s", "-f", "tcp port 8080", "-w", str(tmp_path / "entered.pcap"),
                          "-o", "json")
        finally:
            stop.set()
            gen.join()
            time.sleep(0.5)
            tap.send_signal(signal.SIGINT)
            tap.wait(10)
        assert r.code == 0, r.stderr
        assert "hostNetwork, hostPID, NET_ADMIN+NET_RAW+SYS_ADMIN+SYS_PTRACE" in r.stderr
        sandbox = lab.pod_info("web", ns).init_pid
        netns = subprocess.run(["readlink", f"/proc/{sandbox}/ns/net"], capture_output=True, text=True).stdout.strip()
        assert "entered the network namespace of pod web from node lab-node: process " in r.stderr
        assert f"is in {netns}, the namespace whose interfaces carry {ip}" in r.stderr
        assert node_pods(lab, debug_ns) == []
        ours, truth = packets(tmp_path / "entered.pcap"), packets(inside)
        assert len(ours) > 20 and all(p[0] == "127.0.0.1" for p in ours)
        start = truth.index(ours[0])
        assert truth[start:start + len(ours)] == ours


def test_node_nsenter_needs_node(lab):
    r = lab.whose("capture", "web", "--node-nsenter", "--duration", "1s")
    assert r.code == 2 and "--node-nsenter enters the pod's network namespace from its node: add --node" in r.stderr
