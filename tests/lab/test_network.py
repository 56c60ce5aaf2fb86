"""The lab's network is itself tested: the kernel, not our code, is the oracle.

kube-proxy-style NAT really balances the echo Service over three endpoints; the sidecar proxy really receives the
app's redirected connections and reaches the original destination (SO_ORIGINAL_DST); capabilities are really
bounded; each sidecar pod's rules really live in the iptables backend the topology says.
"""
import collections
import json
import re

import pytest

from tests.helpers.paths import REPO


def curl(lab, pod, url, n=1):
    script = f"for i in $(seq {n}); do curl -s -m 2 {url}; done"
    return lab.netns_run(pod, ["sh", "-c", script]).stdout.splitlines()


def test_echo_service_answers_from_all_three_endpoints(lab):
    answers = curl(lab, "client", f"http://{lab.service_ip}:{lab.service_port}/", n=30)
    assert len(answers) == 30
    served = collections.Counter(re.search(r"pod=(\S+)", a).group(1) for a in answers)
    assert set(served) == {"echo-0", "echo-1", "echo-2"}, served
    # Pod-to-Service traffic from inside the cluster CIDR is DNATed but not masqueraded: the endpoint sees the client.
    assert all(f"peer={lab.pods['client'].ip}:" in a for a in answers)
    assert all(re.search(r"addr=10\.244\.0\.1[123] ", a) for a in answers)


def test_kube_proxy_chains_have_the_real_shape(lab):
    nat = lab.node_run(["iptables-nft-save", "-t", "nat"]).stdout
    svc = re.findall(r"^-A KUBE-SERVICES .*-d 10\.96\.0\.10/32 .*-j (KUBE-SVC-[A-Z0-9]{16})$", nat, re.M)
    assert len(svc) == 1
    probs = re.findall(rf"^-A {svc[0]} .*--probability (\S+) -j KUBE-SEP-", nat, re.M)
    assert probs == ["0.33333333349", "0.50000000000"]
    dnat = re.findall(r"^-A KUBE-SEP-.*default/echo:http.* -j DNAT --to-destination (\S+)", nat, re.M)
    assert sorted(dnat) == [f"{lab.pods[p].ip}:8080" for p in ("echo-0", "echo-1", "echo-2")]


def test_the_second_node_has_the_same_service_rules_and_routes_the_first_nodes_pods(lab):
    two = lab.nodes["lab-node-2"]
    assert lab.node_run(["iptables-nft-save", "-t", "nat"], node="lab-node-2").stdout.count("-j DNAT") == \
        lab.node_run(["iptables-nft-save", "-t", "nat"]).stdout.count("-j DNAT") > 0
    route = lab.node_run(["ip", "route", "get", lab.pods["echo-0"].ip], node="lab-node-2").stdout
    assert f"via {lab.node_ip} dev eth0" in route
    # across the nodes for real: web-1 (lab-node-2) reaches echo-0 (lab-node) and echo-0 sees web-1's address
    r = lab.netns_run("web-1", ["curl", "-s", "-m", "3", f"http://{lab.pods['echo-0'].ip}:8080/"])
    assert f"peer={lab.pods['web-1'].ip}:" in r.stdout, (r.stdout, r.stderr)
    assert lab.pods["web-1"].ip.startswith("10.244.2.") and two["ip"] == "192.168.50.11"
    nodes = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in json.loads(
        lab.kubectl("get", "pods", "-l", "app in (web,web-client)", "-o", "json").stdout)["items"]}
    assert nodes == {"web-0": "lab-node", "web-1": "lab-node-2", "web-client": "lab-node-2"}
    slice_nodes = json.loads(lab.kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=web", "-o",
                                         "json").stdout)["items"][0]["endpoints"]
    assert sorted(e["nodeName"] for e in slice_nodes) == ["lab-node", "lab-node-2"]


def test_sidecar_proxy_relays_to_the_original_destination(lab):
    """The app's connection lands on the proxy (uid 1337) and the proxy's upstream reaches an echo pod."""
    for pod in ("app-sidecar", "app-sidecar-nft"):
        out = curl(lab, pod, f"http://{lab.service_ip}/via-proxy")
        assert re.match(rf"pod=echo-\d addr=\S+ peer={lab.pods[pod].ip}:\d+ path=/via-proxy$", out[0]), out
        # The redirect really happened: the nat REDIRECT counter moved and the proxy's socket is owned by uid 1337.
        ss = lab.netns_run(pod, ["ss", "-tlnpe"]).stdout
        assert re.search(r":15001 .*uid:1337", ss), ss
    counters = lab.netns_run("app-sidecar", ["iptables-legacy", "-t", "nat", "-L", "ISTIO_REDIRECT", "-v", "-x",
                                             "-n"]).stdout
    packets = int(counters.splitlines()[2].split()[0])
    assert packets > 0


# Fixed test script, run in the pod's netns: hold one app connection to the Service open, then ask the kernel.
_HOLD_AND_LIST = """
import socket, subprocess, sys, time
s = socket.create_connection((sys.argv[1], 80), timeout=5)
for _ in range(100):
    out = subprocess.run(["ss", "-tnpe", "state", "established"], capture_output=True, text=True).stdout
    if "uid:1337" in out:
        break
    time.sleep(0.02)
print(s.getsockname()[1])
print(out)
"""


@pytest.mark.parametrize("pod", ["app-sidecar", "app-sidecar-nft"])
def test_sidecar_proxy_connects_to_the_so_original_dst(lab, pod):
    """The app dials the Service IP; the kernel hands the connection to the proxy on 127.0.0.1:15001, and the
    proxy (uid 1337) opens its own connection to the Service IP:80 — which it can only know from SO_ORIGINAL_DST."""
    import sys
    r = lab.netns_run(pod, [sys.executable, "-c", _HOLD_AND_LIST, lab.service_ip])
    assert r.returncode == 0, r.stderr
    app_port, table = r.stdout.split("\n", 1)
    lines = table.splitlines()
    app_side = [ln for ln in lines if re.search(rf"{lab.pods[pod].ip}:{app_port}\s+127\.0\.0\.1:15001", ln)
                or re.search(rf"127\.0\.0\.1:15001\s+{lab.pods[pod].ip}:{app_port}", ln)]
    assert app_side, table
    upstream = [ln for ln in lines if re.search(rf"{lab.pods[pod].ip}:\d+\s+{lab.service_ip}:80\s", ln)
                and "uid:1337" in ln]
    assert upstream, table


def test_each_sidecar_pod_uses_the_backend_the_topology_declares(lab):
    legacy = lab.netns_run("app-sidecar", ["iptables-legacy-save", "-t", "nat"]).stdout
    nft = lab.netns_run("app-sidecar", ["iptables-nft-save", "-t", "nat"]).stdout
    assert "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001" in legacy
    assert "ISTIO" not in nft
    legacy2 = lab.netns_run("app-sidecar-nft", ["iptables-legacy-save", "-t", "nat"]).stdout
    nft2 = lab.netns_run("app-sidecar-nft", ["iptables-nft-save", "-t", "nat"]).stdout
    assert "ISTIO" not in legacy2
    assert "(nf_tables)" in nft2.splitlines()[0] and "-j REDIRECT --to-ports 15001" in nft2


def test_pods_have_real_veth_eth0_with_a_peer_on_the_bridge(lab):
    import json
    link = json.loads(lab.netns_run("client", ["ip", "-j", "link", "show", "eth0"]).stdout)[0]
    peer_index = link["link_index"]
    node_links = json.loads(lab.node_run(["ip", "-j", "link", "show"]).stdout)
    peer = next(ln for ln in node_links if ln["ifindex"] == peer_index)
    assert peer["master"] == "cbr0" and peer["ifname"].startswith("veth")
    route = lab.netns_run("client", ["ip", "route", "show", "default"]).stdout
    assert route.startswith(f"default via {lab.gateway} dev eth0")


@pytest.mark.parametrize("security_context, allowed", [
    (None, True),                                                   # containerd's default set has NET_RAW
    ({"capabilities": {"drop": ["NET_RAW"]}}, False),
    ({"capabilities": {"drop": ["ALL"]}}, False),
    ({"capabilities": {"drop": ["ALL"], "add": ["NET_RAW"]}}, True),  # containerd: drop ALL, then add
    ({"runAsUser": 1000, "capabilities": {"add": ["NET_RAW"]}}, False),  # caps do not survive execve for non-root
], ids=["default", "drop-net-raw", "drop-all", "drop-all-add-net-raw", "non-root"])
def test_tcpdump_needs_net_raw_exactly_as_on_a_real_node(lab, security_context, allowed):
    with lab.isolated_namespace(prefix="cap") as ns:
        lab.create_pod(ns, "p", image="nicolaka/netshoot:v0.13", command=["sleep", "60"],
                       security_context=security_context)
        r = lab.kubectl("-n", ns, "exec", "p", "--", "timeout", "3", "tcpdump", "-i", "eth0", "-c", "1", "-w",
                        "/dev/null", "icmp")
    if allowed:
        assert "You don't have permission" not in r.stderr, r.stderr
    else:
        assert "tcpdump: eth0: You don't have permission to perform this capture on that device" in r.stderr
        assert "(socket: Operation not permitted)" in r.stderr


def test_traffic_from_outside_the_cluster_cidr_is_masqueraded(lab):
    """KUBE-SVC's `! -s <clusterCIDR> -j KUBE-MARK-MASQ` + KUBE-POSTROUTING MASQUERADE: the node calls from its
    own address (outside the cluster CIDR) and the endpoint sees the bridge address instead."""
    r = lab.node_run(["curl", "-s", "-m", "2", f"http://{lab.service_ip}/"])
    assert re.match(rf"pod=echo-\d addr=\S+ peer={re.escape(lab.gateway)}:\d+ ", r.stdout), r.stdout


def test_inbound_traffic_goes_through_the_proxy_on_15006(lab):
    """client → app-sidecar:8080 is REDIRECTed to 15006; the proxy connects to the app from 127.0.0.6."""
    for pod in ("app-sidecar", "app-sidecar-nft"):
        out = curl(lab, "client", f"http://{lab.pods[pod].ip}:8080/in")
        assert re.match(rf"app={pod} addr={re.escape(lab.pods[pod].ip)} peer=127\.0\.0\.6:\d+ path=/in$", out[0]), out
    counters = lab.netns_run("app-sidecar", ["iptables-legacy", "-t", "nat", "-L", "ISTIO_IN_REDIRECT", "-v", "-x",
                                             "-n"]).stdout
    assert int(counters.splitlines()[2].split()[0]) > 0


def test_cluster_dns_without_endpoints_fails_fast_in_pods(lab):
    """The pods' resolv.conf names kube-dns (10.96.0.53), which has no endpoints: kube-proxy's filter table REJECTs
    the query, so a lookup fails in milliseconds instead of a 5 s resolver timeout (and nothing leaves the lab)."""
    import sys
    script = ("import socket, time; t = time.monotonic()\n"
              "try:\n    socket.getaddrinfo('echo.default.svc.cluster.local', 80)\nexcept OSError as e:\n"
              "    print(type(e).__name__, round(time.monotonic() - t, 3))")
    r = lab.pod_run("client", [sys.executable, "-c", script])
    assert r.stdout.startswith("gaierror "), r.stdout + r.stderr
    assert float(r.stdout.split()[1]) < 2.5, r.stdout  # the resolver's timeout would be 5 s per try
    resolv = lab.pod_run("client", ["cat", "/etc/resolv.conf"]).stdout
    assert resolv == ("search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.53\n"
                      "options ndots:5\n")


@pytest.mark.parametrize("pod, save", [("app-sidecar", "iptables-legacy-save"), ("app-sidecar-nft", "iptables-nft-save")])
def test_the_kernel_round_trips_istios_rules_to_the_real_dumps_canonical_text(lab, pod, save):
    """The rules file is a real `iptables-legacy-save` of an Istio sidecar (research fixture 1b); loaded into the
    kernel and saved again, both backends print the very same rule lines."""
    source = (REPO / "tests" / "lab" / "rules" / "istio-default.rules").read_text()
    expected = [ln for ln in source.splitlines() if ln.startswith("-A ")]
    live = [ln for ln in lab.netns_run(pod, [save, "-t", "nat"]).stdout.splitlines() if ln.startswith("-A ")]
    assert live == expected
