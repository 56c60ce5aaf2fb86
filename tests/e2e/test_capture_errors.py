"""Every failure a user can hit with `capture`, provoked for real in the lab: exact exit code, the one line, no
traceback. The server's words (in parentheses) come from the lab's API server, which reproduces a real one's."""
import os
import re
import socket
import subprocess
import sys
import threading
import time

import pytest
import yaml

from kubectl_whose.errors import ExitCode
from tests.helpers.netns import requires_tools

POD = "app-sidecar"




def one_line(r):
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("kubectl-whose: error: ")]
    assert len(lines) == 1, r.stderr
    return lines[0][len("kubectl-whose: error: "):]


def test_pod_not_found(lab):
    r = lab.whose("capture", "nope", "--count", "1")
    assert r.code == ExitCode.NOT_FOUND
    assert one_line(r) == 'pod "nope" not found in namespace "default" (server: pods "nope" not found)'


def test_namespace_not_found(lab):
    r = lab.whose("capture", POD, "-n", "no-such-ns", "--count", "1")
    assert r.code == ExitCode.NOT_FOUND
    assert one_line(r) == ('namespace "no-such-ns" not found; pass -n with an existing namespace '
                           '(kubectl get namespaces lists them)')


def test_container_not_found(lab):
    r = lab.whose("capture", POD, "-c", "nope", "--count", "1")
    assert r.code == ExitCode.NOT_FOUND
    assert one_line(r) == 'container "nope" not found in pod "app-sidecar"; -c must name one of: app, istio-proxy'


def test_pod_not_running(lab):
    with lab.isolated_namespace() as ns:
        lab.create_pod(ns, "done", image="busybox:1.36", command=["true"], wait=False)
        deadline = time.time() + 20
        while lab.core_v1().read_namespaced_pod("done", ns).status.phase != "Succeeded":
            assert time.time() < deadline, "the lab pod did not complete"
            time.sleep(0.2)
        r = lab.whose("capture", "done", "-n", ns, "--count", "1")
    assert r.code == ExitCode.POD_NOT_RUNNING
    assert one_line(r) == ('pod "done" has finished (phase Succeeded); the kubelet starts no containers in a '
                           'finished pod, pick a running one')


def test_rbac_forbidden_on_ephemeralcontainers_names_the_role(lab):
    with lab.isolated_namespace() as ns:  # a pod without a debug container: one must be added
        lab.create_pod(ns, "p", image="busybox:1.36")
        r = lab.whose_as(lab.kubeconfig_for("jane"), "capture", "p", "-n", ns, "--count", "1")
    assert r.code == ExitCode.FORBIDDEN
    assert one_line(r) == (
        f'RBAC forbids "patch" on pods/ephemeralcontainers in namespace "{ns}" (server: pods "p" is '
        f'forbidden: User "jane" cannot patch resource "pods/ephemeralcontainers" in API group "" in the namespace '
        f'"{ns}"); the built-in edit and admin roles do not include it; grant it with: kubectl create role '
        f'kubectl-whose -n {ns} --verb=get,patch --resource=pods/ephemeralcontainers && kubectl create rolebinding '
        f'kubectl-whose -n {ns} --role=kubectl-whose --user=jane')


def test_rbac_forbidden_on_exec_is_refused_before_anything_is_added(lab):
    policy = {"users": [{"name": "admin", "groups": ["system:masters"]},
                        {"name": "noexec", "rules": [
                            {"namespaces": ["*"], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
                            {"namespaces": ["*"], "resources": ["pods/ephemeralcontainers"],
                             "verbs": ["get", "patch"]}]}]}
    with lab.isolated_namespace() as ns, lab.rbac_policy(policy):
        lab.create_pod(ns, "p", image="busybox:1.36")
        r = lab.whose_as(lab.kubeconfig_for("noexec", ns), "capture", "p", "--count", "1")
        assert not lab.core_v1().read_namespaced_pod("p", ns).spec.ephemeral_containers
    assert r.code == ExitCode.FORBIDDEN
    assert one_line(r) == (
        f'RBAC forbids exec in namespace "{ns}": 1.35 authorizes every exec as "create" on pods/exec (a WebSocket exec '
        f'also as "get"), and get denied, create denied; nothing was added to the pod; grant it with: kubectl create '
        f'role kubectl-whose -n {ns} --verb=get,create --resource=pods/exec && kubectl create rolebinding '
        f'kubectl-whose -n {ns} --role=kubectl-whose --user=noexec')


@pytest.mark.parametrize("level", ["baseline", "restricted"])
def test_podsecurity_rejection_explains_why(lab, level):
    with lab.isolated_namespace(labels={"pod-security.kubernetes.io/enforce": level}) as ns:
        lab.create_pod(ns, "p", image="busybox:1.36")
        r = lab.whose("capture", "p", "-n", ns, "--count", "1")
    assert r.code == ExitCode.ADMISSION_REJECTED
    line = one_line(r)
    assert line.startswith(f'the namespace "{ns}" enforces Pod Security "{level}", which forbids adding NET_ADMIN '
                           f"and NET_RAW (tcpdump needs NET_RAW, iptables needs NET_ADMIN) and evaluates the whole "
                           f"pod; ask an admin to label the namespace pod-security.kubernetes.io/enforce=privileged")
    assert f'(server: pods "p" is forbidden: violates PodSecurity "{level}:latest": ' in line


def test_server_without_the_subresource(lab):
    with lab.old_server():
        r = lab.whose("capture", "client", "--count", "1", "--image", "nicolaka/netshoot:v0.12")
    assert r.code == ExitCode.UNSUPPORTED_SERVER
    assert one_line(r) == ("this cluster does not serve pods/ephemeralcontainers: ephemeral containers are disabled "
                           "or the server is older than Kubernetes 1.23 (server: the server could not find the "
                           "requested resource)")


def test_image_pull_failure(lab):
    r = lab.whose("capture", "client", "--count", "1", "--image", "registry.invalid/nope:1")
    assert r.code == ExitCode.IMAGE_PULL
    line = one_line(r)
    assert line.startswith("the debug image registry.invalid/nope:1 cannot be pulled: ")
    assert re.search(r"; the debug container whose-\w{5} stays in pod client, never started \(ephemeral containers "
                     r"cannot be removed\); ", line), line
    assert line.endswith("pass --image with an image the nodes can pull (or set KUBECTL_WHOSE_IMAGE)")


def test_image_without_tcpdump(lab):
    r = lab.whose("capture", "client", "--count", "1", "--image", "busybox:1.36")
    assert r.code == ExitCode.TOOL_MISSING
    assert one_line(r) == ("the debug image busybox:1.36 has no tcpdump; pass --image with an image that carries "
                           "it (default nicolaka/netshoot:v0.13)")


def test_image_without_a_shell(lab):
    r = lab.whose("capture", "client", "--count", "1", "--image", "gcr.io/distroless/static:nonroot")
    assert r.code == ExitCode.TOOL_MISSING
    assert one_line(r) == ("the debug image gcr.io/distroless/static:nonroot has no sleep, so the debug container "
                           "cannot idle; pass --image with an image that carries sh, sleep and tcpdump (default "
                           "nicolaka/netshoot:v0.13)")


def add_debug_container_with_drop(lab, image: str, suffix: str, drop: list) -> None:
    """Our own debug container as a mutating policy would leave it (`capabilities.drop` added), running in
    pod `client`; `capture --image IMAGE` then reuses it."""
    from kubectl_whose.cluster.debug_container import DebugSpec, build_debug_container, build_patch

    code, pod, _ = lab.request("GET", "/api/v1/namespaces/default/pods/client")
    assert code == 200
    c = build_debug_container(pod, DebugSpec(image), suffix)
    c["securityContext"]["capabilities"]["drop"] = drop
    code, body, _ = lab.request("PATCH", "/api/v1/namespaces/default/pods/client/ephemeralcontainers",
                                build_patch(c), "application/strategic-merge-patch+json")
    assert code == 200, body
    lab.wait_pod("default", "client", lambda p: any(
        s["name"] == f"whose-{suffix}" and "running" in s["state"]
        for s in (p.get("status") or {}).get("ephemeralContainerStatuses") or []))


def test_capability_missing(lab):
    """A debug container that lost NET_RAW (as a mutating admission policy adding `drop: [ALL]` does)."""
    image = "ghcr.io/kubectl-whose/netshoot-lite:capdrop"
    add_debug_container_with_drop(lab, image, "capdr", ["ALL"])
    r = lab.whose("capture", "client", "--count", "1", "--image", image)
    assert r.code == ExitCode.NO_CAPABILITY
    # with `drop: [ALL]` the runtime keeps only NET_ADMIN/NET_RAW: tcpdump opens the device, then cannot drop
    # privileges (the NET_RAW-missing message is checked against real tcpdump in test_tcpdump_recipe.py)
    assert one_line(r).startswith("tcpdump cannot switch to its unprivileged user in the debug container: "
                                  "SETUID/SETGID were dropped from its capabilities (Couldn't change to 'tcpdump' uid=")


def test_net_raw_dropped_by_a_policy(lab):
    """The common hardening policy (e.g. Kyverno's require-drop-cap-net-raw) mutates `drop: [NET_RAW]` into
    every container: the runtime removes NET_RAW after adding ours, and tcpdump cannot open the device."""
    image = "ghcr.io/kubectl-whose/netshoot-lite:noraw"
    add_debug_container_with_drop(lab, image, "noraw", ["NET_RAW"])
    r = lab.whose("capture", "client", "--count", "1", "--image", image)
    assert r.code == ExitCode.NO_CAPABILITY, r.stderr
    line = one_line(r)
    assert "NET_RAW" in line and "permission" in line.lower(), line


def test_bad_filter(lab):
    r = lab.whose("capture", POD, "-f", "tcp port", "--count", "1")
    assert r.code == ExitCode.BAD_FILTER
    assert one_line(r) == ("tcpdump rejected the filter 'tcp port': can't parse filter expression: syntax error; -f "
                           "takes tcpdump's filter syntax (pcap-filter(7)), e.g. -f \"tcp port 80\"")


def test_unknown_interface(lab):
    r = lab.whose("capture", POD, "-i", "eth9", "--count", "1")
    assert r.code == ExitCode.BAD_INTERFACE
    assert one_line(r) == (f"pod {POD} has no interface 'eth9' (tcpdump: No such device exists); "
                           f"`kubectl whose net {POD}` lists its interfaces, or -i any captures on all of them")


class CuttableProxy:
    """A TCP relay between the plugin and the lab API server that the test can cut, like a dropped VPN."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.socks = []
        self.cut = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.cut.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.cut.set()
        self.listener.close()
        for s in self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass


@requires_tools("tshark")
def test_connection_lost_mid_capture_keeps_the_data(lab, tmp_path):
    proxy = CuttableProxy(int(lab.server.rsplit(":", 1)[1]))
    config = yaml.safe_load(open(lab.kubeconfig))
    for c in config["clusters"]:
        c["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    kc = tmp_path / "via-proxy.yaml"
    kc.write_text(yaml.safe_dump(config))
    out = tmp_path / "lost.pcap"
    cli = subprocess.Popen([sys.executable, "-m", "kubectl_whose", "capture", POD, "-i", "any", "-w", str(out),
                            "--kubeconfig", str(kc)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        err = b""
        while b"capture running" not in err:
            line = cli.stderr.readline()
            assert line, err.decode()
            err += line
        time.sleep(1.5)
        proxy.close()
        stdout, rest = cli.communicate(timeout=20)
    finally:
        if cli.poll() is None:
            cli.kill()
    err = (err + rest).decode()
    assert cli.returncode == ExitCode.CONNECTION_LOST, err
    assert "Traceback" not in err
    line = [ln for ln in err.splitlines() if ln.startswith("kubectl-whose: error: ")][-1]
    size = out.stat().st_size
    assert size > 24
    assert line.startswith("kubectl-whose: error: the API connection was lost while tcpdump ran in the debug container")
    assert line.endswith(f"; the {size} bytes captured so far are in {out}")
    frames = subprocess.run(["tshark", "-r", str(out), "-T", "fields", "-e", "frame.number"], capture_output=True,
                            text=True).stdout.split()
    assert frames, "what arrived before the cut is a readable capture"
    assert stdout.strip(), "the summary of what arrived is printed"


class ConnectProxy:
    """A minimal HTTP CONNECT proxy (what corporate networks put between kubectl and the API server)."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.connects = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        head = b""
        while b"\r\n\r\n" not in head:
            data = client.recv(4096)
            if not data:
                return
            head += data
        method, target = head.split(b" ")[:2]
        if method != b"CONNECT":
            client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            client.close()
            return
        self.connects.append(target.decode())
        host, port = target.decode().rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=CuttableProxy._pipe, args=(a, b), daemon=True).start()

    def close(self):
        self.listener.close()


def test_kubeconfig_proxy_url_is_used_for_api_calls_and_exec(lab, tmp_path):
    proxy = ConnectProxy()
    try:
        config = yaml.safe_load(open(lab.kubeconfig))
        for c in config["clusters"]:
            c["cluster"]["proxy-url"] = f"http://127.0.0.1:{proxy.port}"
        kc = tmp_path / "via-connect-proxy.yaml"
        kc.write_text(yaml.safe_dump(config))
        r = lab.whose_as(kc, "capture", POD, "-i", "lo", "--count", "2")
    finally:
        proxy.close()
    assert r.code == 0, r.stderr
    server = lab.server.split("://", 1)[1]
    assert len(proxy.connects) >= 2 and set(proxy.connects) == {server}  # REST and the exec WebSocket


def test_debug_container_start_timeout(lab):
    """A container that stays in ContainerCreating (slow node, huge image) ends in TIMEOUT, not a hang."""
    lab.set_delays(create=8.0)
    try:
        with lab.isolated_namespace() as ns:
            lab.create_pod(ns, "slow", image="busybox:1.36", timeout=30)
            r = lab.whose("capture", "slow", "-n", ns, "--count", "1", "--start-timeout", "1s")
    finally:
        lab.set_delays(create=0.05)
    assert r.code == ExitCode.TIMEOUT
    line = one_line(r)
    assert re.fullmatch(r"debug container whose-\w{5} did not start within 1 s \(image nicolaka/netshoot:v0\.13\); "
                        r"`kubectl whose ps slow` shows its state, --start-timeout waits longer", line), line
