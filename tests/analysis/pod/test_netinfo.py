"""`ip -j` and `ss` parsing on REAL outputs: namespaces set up here, the real tools run in them, and
every parsed value checked against what was set up or against an independent kernel view
(/sys/class/net, /proc/PID/fd, the peer namespace's own `ip link`)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from kubectl_whose.analysis.pod.netinfo import build_netinfo, parse_links, parse_rules
from kubectl_whose.analysis.pod.sockets import parse_endpoint, parse_ss
from kubectl_whose.collect.netinfo import RECIPES
from kubectl_whose.errors import ExitCode, WhoseError
from tests.helpers.netns import NetLab, requires_netns, requires_tools, sweep_stale

PY = "/usr/bin/python3"

# Binds what argv says, prints "ready" and its socket fds, then waits. Fixed test program.
LISTEN = r"""
import json, socket, sys, threading
kind, ip, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((ip, port))
fds = {"listen": s.fileno()}
if kind == "tcp":
    s.listen(8)
if len(sys.argv) > 4:  # also connect somewhere and keep the connection
    dip, dport = sys.argv[4].rsplit(":", 1)
    c = socket.create_connection((dip, int(dport)))
    fds["conn"] = c.fileno()
    fds["conn_local"] = "%s:%d" % c.getsockname()[:2]
print("ready " + json.dumps(fds), flush=True)
if kind == "tcp":
    kept = []
    while True:
        kept.append(s.accept()[0])
threading.Event().wait()
"""


def start(ns, argv, uid=None):
    import json

    if uid is not None:
        argv = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *argv]
    proc = ns.popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    assert line.startswith("ready"), f"{argv} did not start: {line!r}"
    return proc, json.loads(line.split(" ", 1)[1])


def collect(ns):
    return {name: ns.run(list(r.argv), check=False).stdout for name, r in RECIPES.items()}


@pytest.fixture(scope="module")
def world():
    sweep_stale("F")
    tmp = Path(tempfile.mkdtemp(prefix="kwF-netinfo-"))
    with NetLab("F") as lab:
        pod, node = lab.ns("npod"), lab.ns("nnode")
        lab.link(pod, "eth0", "10.78.0.2/24", node, "vethpod", "10.78.0.1/24")
        pod.sh("ip -6 addr add fd00:78::2/64 dev eth0 nodad"
               " && ip route add 10.79.0.0/16 via 10.78.0.1 dev eth0"
               " && ip route add default via 10.78.0.1 dev eth0"
               " && ip route add local default dev lo table 133"
               " && ip rule add fwmark 1337 lookup 133 priority 32765"
               " && ip -6 rule add from fd00:78::/64 lookup 133 priority 100"
               " && ip neigh add 10.78.0.9 lladdr 02:00:00:00:00:09 dev eth0 nud permanent"
               " && ip link add link eth0 name mv0 type macvlan"
               " && ip link add inner0 type veth peer name inner1")
        node_srv, _ = start(node, [PY, "-c", LISTEN, "tcp", "10.78.0.1", "80"])
        procs = {
            "istio": start(pod, [PY, "-c", LISTEN, "tcp", "0.0.0.0", "15001"], uid=1337),
            "linkerd": start(pod, [PY, "-c", LISTEN, "tcp", "127.0.0.1", "4140"], uid=2102),
            "root6": start(pod, [PY, "-c", LISTEN, "tcp", "::", "8080"]),
            "app_udp": start(pod, [PY, "-c", LISTEN, "udp", "10.78.0.2", "5353"], uid=1000),
            "app_conn": start(pod, [PY, "-c", LISTEN, "tcp", "10.78.0.2", "9000", "10.78.0.1:80"], uid=1000),
        }
        # a unix socket too, so the ss-with-everything test meets an address that is not ip:port
        procs["unix"] = start(pod, [PY, "-c", "import socket,threading; s=socket.socket(socket.AF_UNIX); "
                                    "s.bind('\\0kwF-unix'); s.listen(); print('ready {}', flush=True); "
                                    "threading.Event().wait()"])
        envoy = tmp / "envoy"  # the kernel names a process after the file it executed: comm "envoy"
        envoy.symlink_to(PY)
        procs["envoy"] = start(pod, [str(envoy), "-c", LISTEN, "tcp", "127.0.0.1", "15090"])
        outputs = collect(pod)
        node_links = parse_links(node.run(["ip", "-d", "-j", "link", "show"]).stdout)
        pod_sys = {name: pod.run(["cat", f"/sys/class/net/eth0/{name}"]).stdout.strip()
                   for name in ("ifindex", "iflink", "address")}
        pod_sys["ip_link_text"] = pod.run(["ip", "-o", "link", "show"]).stdout  # the plain-text names
        yield {"outputs": outputs, "procs": procs, "node_links": node_links, "pod_sys": pod_sys,
               "info": build_netinfo(outputs), "pod": pod}
    node_srv.wait(timeout=5)
    shutil.rmtree(tmp, ignore_errors=True)


@requires_netns
@requires_tools("ip", "ss", "setpriv")
class TestRealOutputs:
    def test_interfaces_and_addresses(self, world):
        info = world["info"]
        eth0 = next(i for i in info.interfaces if i.name == "eth0")
        assert eth0.kind == "veth"
        assert eth0.index == int(world["pod_sys"]["ifindex"])
        assert eth0.mac == world["pod_sys"]["address"]
        assert {"10.78.0.2/24", "fd00:78::2/64"} <= {a.cidr for a in eth0.addresses}
        lo = next(i for i in info.interfaces if i.name == "lo")
        assert lo.peer_index is None and "127.0.0.1/8" in {a.cidr for a in lo.addresses}

    def test_peer_index_is_the_peers_real_ifindex(self, world):
        eth0 = next(i for i in world["info"].interfaces if i.name == "eth0")
        node_side = next(i for i in world["node_links"] if i.name == "vethpod")
        # eth0@ifNN: NN is the ifindex the other namespace gives its end of the veth, and the other way round.
        assert eth0.peer_index == node_side.index
        assert node_side.peer_index == eth0.index
        assert eth0.peer_index == int(world["pod_sys"]["iflink"])  # the kernel's own /sys view agrees
        assert eth0.peer_netnsid is not None
        assert eth0.display_name == f"eth0@if{node_side.index}"
        assert f"interface index {node_side.index}" in eth0.peer_note

    def test_display_names_are_what_ip_link_prints(self, world):
        # `ip -o link` text ("4: mv0@eth0: <...") is the oracle for the @ suffix, every kind
        printed = {line.split(": ")[1] for line in world["pod_sys"]["ip_link_text"].splitlines()}
        ours = {i.display_name for i in world["info"].interfaces}
        assert ours == printed
        mv = next(i for i in world["info"].interfaces if i.name == "mv0")
        assert (mv.display_name, mv.kind, mv.peer_netnsid) == ("mv0@eth0", "macvlan", None)
        assert mv.peer_note == "linked to eth0 in this namespace (its macvlan parent)"
        inner = next(i for i in world["info"].interfaces if i.name == "inner0")
        assert (inner.display_name, inner.peer_note) == ("inner0@inner1",
                                                         "linked to inner1 in this namespace (its veth peer)")

    def test_routes_all_tables(self, world):
        routes = world["info"].routes
        assert any(r.dst == "10.79.0.0/16" and r.gateway == "10.78.0.1" and r.dev == "eth0" and r.table == "main"
                   for r in routes)
        assert any(r.dst == "default" and r.gateway == "10.78.0.1" for r in routes)
        assert any(r.table == "133" and r.type == "local" and r.dst == "default" and r.dev == "lo" for r in routes)
        assert any(r.family == "inet6" and r.dst == "fd00:78::/64" for r in routes)

    def test_policy_rules_both_families(self, world):
        rules = world["info"].rules
        mark = next(r for r in rules if r.priority == 32765)
        assert (mark.family, mark.fwmark, mark.table) == ("inet", "0x539", "133")
        assert mark.text == "from all fwmark 0x539 lookup 133"
        v6 = next(r for r in rules if r.family == "inet6" and r.priority == 100)
        assert (v6.src, v6.table) == ("fd00:78::/64", "133")

    def test_neighbours(self, world):
        n = next(n for n in world["info"].neighbours if n.dst == "10.78.0.9")
        assert (n.dev, n.lladdr, n.state) == ("eth0", "02:00:00:00:00:09", ["PERMANENT"])

    def test_sockets_uid_pid_inode_ports(self, world):
        socks = world["info"].sockets
        procs = world["procs"]
        for key, proto, ip, port, uid in (("istio", "tcp", None, 15001, 1337),
                                          ("linkerd", "tcp", "127.0.0.1", 4140, 2102),
                                          ("root6", "tcp", None, 8080, 0), ("app_udp", "udp", "10.78.0.2", 5353, 1000),
                                          ("envoy", "tcp", "127.0.0.1", 15090, 0)):
            proc, fds = procs[key]
            s = next(s for s in socks if s.proto == proto and s.local_port == port and s.listening)
            assert (s.local_ip, s.uid) == (ip, uid), key
            assert [(p.pid, p.fd) for p in s.processes] == [(proc.pid, fds["listen"])], key
            # independent: the process's fd table names the same socket inode
            assert os.readlink(f"/proc/{proc.pid}/fd/{fds['listen']}") == f"socket:[{s.inode}]", key

    def test_connected_socket_both_ends(self, world):
        proc, fds = world["procs"]["app_conn"]
        ip, port = fds["conn_local"].rsplit(":", 1)
        s = next(s for s in world["info"].sockets if s.local_ip == ip and s.local_port == int(port))
        assert (s.state, s.peer_ip, s.peer_port, s.uid) == ("ESTAB", "10.78.0.1", 80, 1000)
        assert os.readlink(f"/proc/{proc.pid}/fd/{fds['conn']}") == f"socket:[{s.inode}]"

    def test_owners(self, world):
        by_port = {s.local_port: s.owner for s in world["info"].sockets if s.listening}
        assert (by_port[15001].kind, by_port[15001].mesh) == ("proxy", "istio")
        assert "uid 1337" in by_port[15001].evidence
        assert (by_port[4140].kind, by_port[4140].mesh, by_port[4140].name) == ("proxy", "linkerd", "linkerd-proxy")
        assert (by_port[15090].kind, by_port[15090].name, by_port[15090].mesh) == ("proxy", "envoy", "istio")
        assert by_port[5353].kind == "process" and by_port[5353].name == "python3"
        info = build_netinfo(world["outputs"], container="app")
        owner = next(s.owner for s in info.sockets if s.local_port == 5353)
        assert (owner.kind, owner.name) == ("container", "app")

    def test_ss_without_processes_still_names_the_proxy_by_uid(self, world):
        # What a debug container without -c sees: no users:(...) column; uids are still there.
        text = "\n".join(line.split(" users:")[0] + " " + line.split("))", 1)[1]
                         if "users:" in line else line for line in world["outputs"]["sockets"].splitlines())
        socks = {s.local_port: s for s in parse_ss(text) if s.listening}
        assert not socks[15001].processes and socks[15001].uid == 1337
        from kubectl_whose.analysis.pod.sockets import attribute_owners

        attribute_owners(list(socks.values()))
        assert socks[15001].owner.mesh == "istio" and socks[5353].owner.kind == "unknown"
        assert "-c CONTAINER" in socks[5353].owner.evidence


@pytest.mark.parametrize("text,expected", [
    ("10.0.0.1:80", ("10.0.0.1", 80, None)),
    ("*:15001", (None, 15001, None)),
    ("0.0.0.0:*", (None, None, None)),
    ("[::]:8080", (None, 8080, None)),
    ("[fd00::1]:443", ("fd00::1", 443, None)),
    ("127.0.0.53%lo:53", ("127.0.0.53", 53, "lo")),
    ("[fe80::99]%veth0:546", ("fe80::99", 546, "veth0")),
    ("[::ffff:127.0.0.1]:9001", ("127.0.0.1", 9001, None)),
], ids=["v4", "wild-dual", "wild-peer", "v6-any", "v6", "v4-dev", "v6-dev", "v4-mapped"])
def test_ss_endpoint_forms(text, expected):
    # Each form was printed by iproute2 6.1's ss for a socket bound that way (see the module docstring).
    assert parse_endpoint(text) == expected


def test_ss_single_protocol_listing_and_root_uid():
    # `ss -tanpe` drops the Netid column; ss prints no uid: for root; TIME-WAIT has ino:0 and no owner.
    text = ("LISTEN 0 128 *:15001 *:* users:((\"my proxy\",pid=7,fd=3)) ino:31329 sk:6 cgroup:unreachable:1 "
            "v6only:0 <->\n"
            "TIME-WAIT 0 0 10.99.0.1:33992 10.99.0.2:8080 timer:(timewait,59sec,0) ino:0 sk:3\n")
    listen, tw = parse_ss(text)
    assert (listen.proto, listen.uid, listen.processes[0].name, listen.inode) == ("tcp", 0, "my proxy", 31329)
    assert (tw.uid, tw.inode, tw.processes) == (None, None, [])


@requires_netns
def test_ss_with_every_socket_kind_keeps_tcp_and_udp(world):
    # `ss -a -e -p` without -t/-u also lists unix and raw sockets, whose addresses are not ip:port
    pod = world["pod"]
    text = pod.run(["ss", "-H", "-a", "-n", "-p", "-e", "-x", "-t", "-u", "-w"]).stdout
    assert "u_str" in text and "@kwF-unix" in text
    socks = parse_ss(text)
    assert {s.proto for s in socks} <= {"tcp", "udp"}
    assert {(s.local_port, s.uid) for s in socks if s.listening and s.proto == "tcp"} == \
        {(s.local_port, s.uid) for s in world["info"].sockets if s.listening and s.proto == "tcp"}


@pytest.mark.parametrize("parser,text,needle", [
    (lambda t: build_netinfo({"link": t}), "{not json", "not the JSON `ip -j` prints"),
    (lambda t: build_netinfo({"link": t}), '{"ifindex": 1}', "expected a JSON list"),
    (lambda t: build_netinfo({"addr": t}), '[{"ifname": "x"}]', "no ifindex"),
    (lambda t: parse_ss(t), "hello world this is not ss", "not the `ss -H -tuanpe` format"),
    (lambda t: parse_rules(t), "[1, 2]", "expected a JSON list of objects"),
], ids=["bad-json", "not-list", "no-ifindex", "bad-ss", "rules-not-objects"])
def test_bad_input_is_one_clear_error(parser, text, needle):
    with pytest.raises(WhoseError) as e:
        parser(text)
    assert e.value.code == ExitCode.BAD_INPUT and needle in e.value.message


def _sockets(*uids_and_procs):
    from kubectl_whose.analysis.pod.sockets import Process, Socket

    return [Socket("tcp", "LISTEN", None, 8000 + i, None, None, uid=uid,
                   processes=[Process("python3", 10 + i, 3)] if named else [])
            for i, (uid, named) in enumerate(uids_and_procs)]


@pytest.mark.parametrize("shared, container, ptrace, socks, want", [
    (True, None, False, [(0, True), (1337, False)],
     "the sockets of uid 1337 show no process: their processes are visible, but reading another uid's /proc/PID/fd "
     "takes CAP_SYS_PTRACE, which the debug container lacks; `kubectl whose net web --ptrace` adds it; owners are "
     "named by uid meanwhile"),
    (False, None, False, [(0, False), (1337, False)],
     "no socket shows its process: the debug container has a process namespace of its own; `kubectl whose net web "
     "-c app` shares app's (containers: app, istio-proxy); owners are named by uid meanwhile"),
    (False, "app", False, [(0, True), (1337, False)],
     "the sockets of uid 1337 show no process: they belong to another container than app (`kubectl whose net web "
     "-c istio-proxy` shares its processes), or to app's processes of another uid, which take CAP_SYS_PTRACE to "
     "read (`kubectl whose net web -c app --ptrace`); owners are named by uid meanwhile"),
    (True, None, True, [(0, True), (1337, True)], None),
    (True, None, False, [(0, True), (None, False)], None),  # TIME-WAIT: no owner to name
], ids=["shared-needs-ptrace", "own-namespace-needs-c", "target-either", "all-named", "time-wait"])
def test_process_note_says_what_is_really_missing(shared, container, ptrace, socks, want):
    from kubectl_whose.analysis.pod.netinfo import NetInfo, ProcessView, process_note

    info = NetInfo(sockets=_sockets(*socks), container=container,
                   view=ProcessView("web", shared, ptrace, ("app", "istio-proxy")))
    assert process_note(info) == want
