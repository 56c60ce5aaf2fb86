"""A small, real sidecar setup for the connection-join tests (engineer F's own; independent of tests/lab).

Namespaces (via tests/helpers/netns.py, tag F):
- `pod`: eth0 10.77.<n>.2/24 and fd00:77:<n>::2/64; Istio's nat OUTPUT rules (as istio-iptables writes
  them, iptables-legacy and ip6tables-legacy) redirect TCP to 15001 except uid 1337 (or Linkerd's: 4140
  except uid 2102); a relay proxy running as the proxy uid reads SO_ORIGINAL_DST and connects to the
  original destination; the app (uid 1000) makes N requests to destinations it picks.
- `up`: the upstream, .3 and .4 of both prefixes, echo servers on :80 and :8080.

Every program is a fixed script below, run with the system python as the wanted uid (setpriv).
"""
from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List

from tests.helpers.netns import NetLab, Netns

PY = "/usr/bin/python3"  # readable by every uid (pyenv's lives under /root)
APP_UID = 1000

ISTIO_NAT = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:ISTIO_INBOUND - [0:0]
:ISTIO_IN_REDIRECT - [0:0]
:ISTIO_OUTPUT - [0:0]
:ISTIO_REDIRECT - [0:0]
-A OUTPUT -p tcp -j ISTIO_OUTPUT
-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
COMMIT
"""

# linkerd2-proxy-init's rules with its defaults (research/anchors-netfilter.md fixture 2a, ports 4140/4143,
# uid 2102, the ignored ports of the chart's values.yaml).
LINKERD_NAT = """*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:PROXY_INIT_OUTPUT - [0:0]
:PROXY_INIT_REDIRECT - [0:0]
-A PREROUTING -m comment --comment "proxy-init/install-proxy-init-prerouting" -j PROXY_INIT_REDIRECT
-A OUTPUT -m comment --comment "proxy-init/install-proxy-init-output" -j PROXY_INIT_OUTPUT
-A PROXY_INIT_OUTPUT -m owner --uid-owner 2102 -m comment --comment "proxy-init/ignore-proxy-user-id" -j RETURN
-A PROXY_INIT_OUTPUT -o lo -m comment --comment "proxy-init/ignore-loopback" -j RETURN
-A PROXY_INIT_OUTPUT -p tcp -m comment --comment "proxy-init/redirect-all-outgoing-to-proxy-port" -j REDIRECT --to-ports 4140
-A PROXY_INIT_REDIRECT -p tcp -m multiport --dports 4190,4191,4567,4568 -m comment --comment "proxy-init/ignore-port-4190,4191,4567,4568" -j RETURN
-A PROXY_INIT_REDIRECT -p tcp -m comment --comment "proxy-init/redirect-all-incoming-to-proxy-port" -j REDIRECT --to-ports 4143
COMMIT
"""

MESHES = {"istio": (15001, 1337, ISTIO_NAT), "linkerd": (4140, 2102, LINKERD_NAT)}  # port, proxy uid, rules
# istio-iptables writes the same nat table for IPv6 with ::1 and ::6 (its ip6tables golden files)
ISTIO_NAT6 = ISTIO_NAT.replace("127.0.0.1/32", "::1/128").replace("127.0.0.6/32", "::6/128")

# A TCP relay like Envoy's passthrough: accept on argv[1] (15001 / 4140) and argv[2] (inbound 15006), ask the
# kernel where the app meant to go (SO_ORIGINAL_DST = 80), connect there (inbound: from 127.0.0.6), pipe both
# ways. Prints one JSON line per accepted connection.
PROXY = r"""
import json, socket, struct, sys, threading
SO_ORIGINAL_DST = 80
said = threading.Lock()
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
        b.shutdown(socket.SHUT_WR)
    except OSError:
        pass
def ep(a):
    return ("[%s]:%d" if ":" in a[0] else "%s:%d") % a[:2]
def serve(c, peer):
    if c.family == socket.AF_INET6:  # IP6T_SO_ORIGINAL_DST (also 80) returns a sockaddr_in6
        port, ip = struct.unpack("!2xH4x16s4x", c.getsockopt(socket.IPPROTO_IPV6, SO_ORIGINAL_DST, 28))
        dst = (socket.inet_ntop(socket.AF_INET6, ip), port)
    else:
        port, ip = struct.unpack("!2xH4s8x", c.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16))
        dst = (socket.inet_ntoa(ip), port)
    inbound = c.getsockname()[1] == INBOUND
    u = socket.socket(c.family)
    if inbound:  # Envoy's inbound passthrough source, which the rules leave alone (no redirect loop)
        u.bind(("127.0.0.6", 0))
    u.connect(dst)
    with said:  # one whole line per connection, whatever the threads do
        print(json.dumps({"client": ep(peer), "original_dst": ep(dst), "upstream_client": ep(u.getsockname())}),
              flush=True)
    t = threading.Thread(target=pipe, args=(u, c)); t.start()
    pipe(c, u); t.join(); c.close(); u.close()
def accept(l):
    while True:
        c, peer = l.accept()
        threading.Thread(target=serve, args=(c, peer), daemon=True).start()
INBOUND = int(sys.argv[2]) if len(sys.argv) > 2 else None
for port in [int(sys.argv[1])] + ([INBOUND] if INBOUND else []):
    for fam, any_ip in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        l = socket.socket(fam); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            l.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        l.bind((any_ip, port)); l.listen(256)
        threading.Thread(target=accept, args=(l,), daemon=True).start()
print(json.dumps({"ready": int(sys.argv[1])}), flush=True)
threading.Event().wait()
"""

ECHO = r"""
import socket, sys, threading
def serve(c):
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(b"echo " + d)
    c.close()
ls = []
for spec in sys.argv[1:]:
    ip, port = spec.rsplit(":", 1)
    ip = ip.strip("[]")
    l = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((ip, int(port))); l.listen(64); ls.append(l)
    threading.Thread(target=lambda l=l: [threading.Thread(target=serve, args=(l.accept()[0],)).start()
                                         for _ in iter(int, 1)], daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""

# The app: one request per destination. `seq`: connect, send, read, next; `burst`: connect all first, then
# send and read on each (the proxy's upstream connections then interleave with the app's); `sameport`: like
# seq, every request from source port 40404. `keep`: every
# connection stays open until stdin says "close", so the socket table can be read while they live;
# `close`: each closes after its answer (many requests). Prints what it did as JSON.
APP = r"""
import json, socket, sys
mode, keep = sys.argv[1], sys.argv[2] == "keep"
done, conns = [], []
def ep(a):
    return ("[%s]:%d" if ":" in a[0] else "%s:%d") % a[:2]
def connect(dst):
    ip, port = dst.rsplit(":", 1)
    ip = ip.strip("[]")
    s = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET)
    if mode == "sameport":  # every request from one source port (distinct destinations keep tuples apart)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::" if ":" in ip else "0.0.0.0", 40404))
    try:
        s.connect((ip, int(port)))
    except OSError as e:  # a refused connect forgets its address but keeps the port
        done.append({"dst": dst, "client_port": s.getsockname()[1], "error": e.errno}); s.close(); return None
    return s
def ask(s, dst):
    s.sendall(b"hello %d\n" % len(done))
    reply = s.recv(100)
    done.append({"dst": dst, "client": ep(s.getsockname()), "reply": reply.decode()})
    if keep:
        conns.append(s)
    else:
        s.close()
if mode in ("seq", "sameport"):
    for dst in sys.argv[3:]:
        s = connect(dst)
        if s:
            ask(s, dst)
else:
    opened = [(connect(dst), dst) for dst in sys.argv[3:]]
    for s, dst in opened:
        if s:
            ask(s, dst)
print(json.dumps(done), flush=True)
sys.stdin.readline()
for s in conns:
    s.close()
"""


@dataclass
class Run:
    requests: List[dict]
    proxy_log: List[dict]
    pcaps: dict  # "any"/"lo" -> Path
    collected: object = None  # what `collect(pod)` returned while the connections were open


class SidecarPod:
    def __init__(self, lab: NetLab, n: int, workdir: Path, redirect: bool = True, proxy: bool = True,
                 mesh: str = "istio", inbound: bool = False):
        self.lab, self.workdir = lab, workdir
        self.tcpdump_said: List[str] = []
        self.pod_ip, self.up_ip, self.up_ip2 = f"10.77.{n}.2", f"10.77.{n}.3", f"10.77.{n}.4"
        self.pod = lab.ns(f"pod{n}")
        self.up = lab.ns(f"up{n}")
        lab.link(self.pod, "eth0", f"{self.pod_ip}/24", self.up, "eth0", f"{self.up_ip}/24")
        self.up.run(["ip", "addr", "add", f"{self.up_ip2}/24", "dev", "eth0"])
        # IPv6 too: fd00:77:<n>::2 in the pod, ::3 and ::4 upstream
        self.pod6, self.up6, self.up6_2 = f"fd00:77:{n}::2", f"fd00:77:{n}::3", f"fd00:77:{n}::4"
        self.pod.run(["ip", "-6", "addr", "add", f"{self.pod6}/64", "dev", "eth0", "nodad"])
        for addr in (self.up6, self.up6_2):
            self.up.run(["ip", "-6", "addr", "add", f"{addr}/64", "dev", "eth0", "nodad"])
        self.up_echo = self._start_ready(self.up, [PY, "-c", ECHO, f"{self.up_ip}:80", f"{self.up_ip}:8080",
                                                    f"{self.up_ip2}:80", f"[{self.up6}]:80", f"[{self.up6}]:8080",
                                                    f"[{self.up6_2}]:80"], "ready")
        self.mesh = mesh
        self.proxy_port, self.proxy_uid, rules = MESHES[mesh]
        if redirect:
            self.pod.run(["iptables-legacy-restore"], input=rules)
            if mesh == "istio":
                self.pod.run(["ip6tables-legacy-restore"], input=ISTIO_NAT6)
        self.proxy = None
        self.proxy_lines: "queue.Queue[dict]" = queue.Queue()
        if inbound:  # an app server in the pod itself, on its own address
            self.pod_echo = self._start_ready(self.pod, [PY, "-c", ECHO, f"{self.pod_ip}:8080"], "ready")
        if proxy:
            ports = [str(self.proxy_port)] + (["15006"] if inbound else [])
            self.proxy = self._start_ready(self.pod, self.as_uid(self.proxy_uid, [PY, "-u", "-c", PROXY, *ports]),
                                           "ready")
            # Drain its log as it comes: a full pipe would block the proxy mid-request, and the app with it.
            threading.Thread(target=self._drain, args=(self.proxy.stdout,), daemon=True).start()

    def _drain(self, stream) -> None:
        for line in stream:
            self.proxy_lines.put(json.loads(line))

    @staticmethod
    def as_uid(uid: int, argv: List[str]) -> List[str]:
        return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *argv]

    def _start_ready(self, ns: Netns, argv: List[str], word: str) -> subprocess.Popen:
        proc = ns.popen(argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        line = proc.stdout.readline()
        assert word in line, f"{argv[-1][:40]} did not start: {line!r}"
        return proc

    def destinations(self) -> List[str]:
        return [f"{self.up_ip}:80", f"{self.up_ip2}:80", f"{self.up_ip}:8080"]

    def destinations6(self) -> List[str]:
        return [f"[{self.up6}]:80", f"[{self.up6_2}]:80", f"[{self.up6}]:8080"]

    def run(self, destinations: List[str], collect=None, mode: str = "seq", keep: bool = True,
            uid: int = APP_UID) -> Run:
        """Capture on `any` and `lo` while the app calls each destination; `collect(pod)` runs while the
        connections are still open (the socket table) and its result is returned as `collected`."""
        pcaps = {}
        dumps = []
        for iface in ("any", "lo"):
            path = self.workdir / f"{self.pod.name}-{iface}-{len(list(self.workdir.iterdir()))}.pcap"
            # In immediate mode each ring slot is snaplen long (256 KiB by default), so the default 2 MiB buffer
            # holds 8 packets and a busy CPU makes the kernel drop some (seen: 25 of 184). Headers are all
            # the join needs: -s 160 and -B 16 MiB hold any burst these tests make.
            proc = self.pod.popen(["tcpdump", "-U", "--immediate-mode", "-s", "160", "-B", "16384", "-n",
                                   "-Z", "root", "-i", iface, "-w", str(path), "tcp"], stderr=subprocess.PIPE,
                                  text=True)
            said = [proc.stderr.readline()]
            while said[-1] and "listening on" not in said[-1]:  # `-i any` first names the link type
                said.append(proc.stderr.readline())
            assert "listening on" in said[-1], said
            pcaps[iface] = path
            dumps.append(proc)
        app = self.pod.popen(self.as_uid(uid, [PY, "-u", "-c", APP, mode, "keep" if keep else "close",
                                                         *destinations]),
                             stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
        requests = json.loads(app.stdout.readline())
        collected = collect(self.pod) if collect else None
        app.stdin.write("close\n")
        app.stdin.flush()
        app.wait(timeout=20)
        proxy_log = []
        if self.proxy is not None:
            for _ in [r for r in requests if "reply" in r]:
                proxy_log.append(self.proxy_lines.get(timeout=20))
        # Let the closing FIN/ACKs reach the tap, then stop tcpdump once it has written everything: a
        # SIGTERM drops what is still in the kernel's ring, and on a busy machine that can be the tail.
        _wait_closed(self.pod, requests)
        self.pod.run([PY, "-c", MARKER])
        for path in pcaps.values():
            _wait_for_marker(path)
        for proc in dumps:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
            said = proc.stderr.read()
            self.tcpdump_said.append(said)
            dropped = re.search(r"(\d+) packets? dropped by kernel", said)
            assert dropped and dropped.group(1) == "0", f"tcpdump lost packets, the test cannot judge: {said!r}"
        return Run(requests, proxy_log, pcaps, collected)


# The last packet of every run: a SYN from 127.0.0.1:47999 to 127.0.0.1:1 (refused by the kernel; no NAT
# rule touches 127.0.0.1). Packets reach the file in order, so once it is there, everything before is too.
MARKER = r"""
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 47999))
try:
    s.connect(("127.0.0.1", 1))
except OSError:
    pass
"""
MARKER_BYTES = bytes.fromhex("bb7f0001")  # TCP header: source port 47999, destination port 1


def _wait_for_marker(path: Path, timeout: float = 15.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if MARKER_BYTES in path.read_bytes():
            return
        time.sleep(0.05)
    raise AssertionError(f"tcpdump did not write the end marker to {path} within {timeout}s")


def _wait_closed(pod: Netns, requests: List[dict], timeout: float = 5.0) -> None:
    ports = {r["client"].rsplit(":", 1)[1] for r in requests if "client" in r}
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = pod.run(["ss", "-H", "-tn", "state", "established"]).stdout
        if not any(f":{p} " in out for p in ports):
            break
        time.sleep(0.05)
