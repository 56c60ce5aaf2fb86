"""The `lab` pytest fixture (session-scoped, shared) and `LabHandle`, its test-facing API.

Registered from tests/conftest.py. One lab process serves the whole session; tests that mutate state use
`isolated_namespace()` / `create_pod()`, and the switches (`old_server()`, `rbac_policy()`) restore themselves.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import pytest

from tests.helpers.netns import netns_unavailable_reason

from .certs import kubeconfig as render_kubeconfig
from .network import sweep_stale

REPO = Path(__file__).resolve().parents[2]
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
NSENTER = "/usr/bin/nsenter"


def lab_unavailable_reason() -> Optional[str]:
    why = netns_unavailable_reason()
    if why:
        return f"the lab {why}"
    missing = [t for t in ("kubectl", "setpriv", "nsenter", "unshare", "iptables-legacy", "iptables-nft", "openssl",
                           "tcpdump") if not shutil.which(t)]
    return f"the lab needs {', '.join(missing)} (scripts/bootstrap.sh installs them)" if missing else None


requires_lab = pytest.mark.skipif(lab_unavailable_reason() is not None, reason=lab_unavailable_reason() or "")


@dataclass(frozen=True)
class PodInfo:
    name: str
    namespace: str
    ip: str
    netns: str
    init_pid: int


class LabProcess:
    """`python -m tests.lab serve` as a child process; ready when state.json appears."""

    def __init__(self, state_dir: Path, topology: Optional[Path] = None, tls: bool = True):
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "tests.lab", "serve", "--state-dir", str(self.state_dir),
                "--exit-with-parent", str(os.getpid())]
        if topology:
            argv += ["--topology", str(topology)]
        if not tls:
            argv.append("--no-tls")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, cwd=str(REPO), stdin=subprocess.DEVNULL,
                                     stdout=open(self.state_dir / "lab.out", "ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.state = self._wait_ready()
        self.bringup_seconds = time.monotonic() - self.started

    def _wait_ready(self, timeout: float = 60) -> dict:
        path = self.state_dir / "state.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if path.exists():
                return json.loads(path.read_text())
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        out = (self.state_dir / "lab.out").read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"the lab did not come up (exit {self.proc.returncode}):\n{out}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                sweep_stale()


class LabHandle:
    """What a test gets from the `lab` fixture."""

    def __init__(self, process: LabProcess):
        self.process = process
        st = process.state
        self.state_dir = process.state_dir
        self.kubeconfig = Path(st["kubeconfig"])
        self.server: str = st["server"]
        self.namespace: str = st["namespace"]
        self.node_netns: str = st["node"]["netns"]
        self.gateway: str = st["node"]["gateway"]
        self.node_ip: str = st["node"]["ip"]
        self.nodes: Dict[str, dict] = st.get("nodes") or {st["node"]["name"]: st["node"]}  # name -> netns, ip, ...
        svc = next((s for s in st["services"] if s["name"] == "echo"), st["services"][-1])
        self.services = {s["name"]: s for s in st["services"]}
        self.service_ip: str = svc["clusterIP"]
        self.service_port: int = svc["ports"][0]["port"]
        self.bringup_seconds: float = process.bringup_seconds
        self._ssl = ssl.create_default_context(cafile=st["ca"]) if st.get("ca") else None
        self._admin_token = self._token_from_kubeconfig()
        self.pods: Dict[str, PodInfo] = {
            name: PodInfo(name, p["namespace"], p["ip"], p["netns"], p["init_pid"]) for name, p in st["pods"].items()}

    def _token_from_kubeconfig(self) -> str:
        import yaml
        return yaml.safe_load(self.kubeconfig.read_text())["users"][0]["user"]["token"]

    # -- raw API access ----------------------------------------------------------------------------------------
    def request(self, method: str, path: str, body=None, content_type: str = "application/json",
                token: Optional[str] = None, headers: Optional[dict] = None):
        """One HTTP request to the lab's API server → (status, parsed JSON or raw bytes, headers)."""
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token or self._admin_token}")
        if data is not None:
            req.add_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, context=self._ssl, timeout=30) as r:
                raw, code, hdrs = r.read(), r.status, r.headers
        except urllib.error.HTTPError as e:
            raw, code, hdrs = e.read(), e.code, e.headers
        try:
            return code, json.loads(raw), hdrs
        except ValueError:
            return code, raw, hdrs

    def _ok(self, method: str, path: str, body=None, content_type: str = "application/json"):
        code, obj, _ = self.request(method, path, body, content_type)
        if code >= 300:
            raise RuntimeError(f"{method} {path}: {code} {obj}")
        return obj

    # -- kubectl / Python client ---------------------------------------------------------------------------------
    def kubectl(self, *args: str, kubeconfig: Optional[Path] = None, input=None, timeout: float = 60,
                binary: bool = False) -> subprocess.CompletedProcess:
        argv = ["kubectl", "--kubeconfig", str(kubeconfig or self.kubeconfig),
                "--cache-dir", str(self.state_dir / "kube-cache"), *args]
        return subprocess.run(argv, input=input, capture_output=True, text=not binary, timeout=timeout)

    def whose(self, *args: str):
        """`kubectl whose ARGS` in-process against the lab, as the admin user (stdout, stderr, exit code)."""
        return self.whose_as(self.kubeconfig, *args)

    def whose_as(self, kubeconfig: Path, *args: str):
        """The same with another kubeconfig (`kubeconfig_for("jane")`); never a traceback, whatever fails."""
        from tests.helpers.cli import run

        r = run(*args, "--kubeconfig", str(kubeconfig))
        assert "Traceback" not in r.stderr, r.stderr
        return r

    def popen_whose(self, *args: str, **kw) -> subprocess.Popen:
        """`kubectl whose ARGS` as its own process (signals, start-up), SIGINT at its default as in a terminal."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        return subprocess.Popen([sys.executable, "-m", "kubectl_whose", *args, "--kubeconfig", str(self.kubeconfig)],
                                env=env, preexec_fn=_default_sigint, **kw)

    def core_v1(self, kubeconfig: Optional[Path] = None):
        from kubernetes import client, config
        return client.CoreV1Api(config.new_client_from_config(str(kubeconfig or self.kubeconfig)))

    # -- direct access to the namespaces -----------------------------------------------------------------------
    def pod_info(self, pod: str, namespace: str = "default") -> PodInfo:
        if namespace == "default" and pod in self.pods:
            return self.pods[pod]
        info = self._ok("GET", "/lab/v1/pods").get(f"{namespace}/{pod}")
        if info is None:
            raise KeyError(f"no running pod {namespace}/{pod} in the lab")
        return PodInfo(pod, namespace, info["ip"], info["netns"], info["init_pid"])

    def netns_run(self, pod: str, argv: Sequence[str], namespace: str = "default", **kw) -> subprocess.CompletedProcess:
        """Run argv as root directly in the pod's network namespace (not in any container)."""
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 60)
        return subprocess.run(["ip", "netns", "exec", self.pod_info(pod, namespace).netns, *argv], **kw)

    def node_run(self, argv: Sequence[str], node: Optional[str] = None, **kw) -> subprocess.CompletedProcess:
        """Run argv in a node's network namespace (default: the first node)."""
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        netns = self.nodes[node]["netns"] if node else self.node_netns
        return subprocess.run(["ip", "netns", "exec", netns, *argv], **kw)

    def pod_run(self, pod: str, argv: Sequence[str], namespace: str = "default", **kw) -> subprocess.CompletedProcess:
        """Run argv as root in the pod's network + PID + mount namespaces (sees the pod's processes and /tmp)."""
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 60)
        pid = self.pod_info(pod, namespace).init_pid
        return subprocess.run([NSENTER, "-t", str(pid), "-n", "-p", "-m", "-u", "--", *argv], **kw)

    def container_run(self, pod: str, container: str, argv: Sequence[str], namespace: str = "default",
                      **kw) -> subprocess.CompletedProcess:
        """Run argv as root in one container's namespaces (its PID namespace: what `ps` shows *there*)."""
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 60)
        info = self._ok("GET", "/lab/v1/pods").get(f"{namespace}/{pod}") or {}
        pid = (info.get("containers") or {}).get(container)
        if not pid:
            raise KeyError(f"container {container} of {namespace}/{pod} is not running in the lab")
        return subprocess.run([NSENTER, "-t", str(pid), "-n", "-p", "-m", "-u", "--", *argv], **kw)

    # -- switches ------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def old_server(self) -> Iterator[None]:
        """pods/ephemeralcontainers answers 404 (empty details), /version says 1.22, exec offers no v5."""
        self._ok("PUT", "/lab/v1/config", {"oldServer": True})
        try:
            yield
        finally:
            self._ok("PUT", "/lab/v1/config", {"oldServer": False})

    @contextlib.contextmanager
    def exec_drop_after(self, nbytes: int) -> Iterator[None]:
        """Exec streams are cut (TCP reset, no channel-3 status, no close frame) after `nbytes` of output."""
        self._ok("PUT", "/lab/v1/config", {"dropExecAfterBytes": nbytes})
        try:
            yield
        finally:
            self._ok("PUT", "/lab/v1/config", {"dropExecAfterBytes": 0})

    @contextlib.contextmanager
    def rbac_policy(self, policy: dict) -> Iterator[None]:
        """Replace the RBAC policy (format: tests/lab/rbac-default.yaml) for the block; `admin` is always kept."""
        old = self._ok("GET", "/lab/v1/rbac")
        users = [u for u in policy.get("users") or [] if u.get("name") != "admin"]
        self._ok("PUT", "/lab/v1/rbac", {"users": [{"name": "admin", "groups": ["system:masters"]}, *users]})
        try:
            yield
        finally:
            self._ok("PUT", "/lab/v1/rbac", old)

    def set_delays(self, **delays: float) -> None:
        """Kubelet timings in seconds: sync, create, pull_backoff."""
        self._ok("PUT", "/lab/v1/config", {"delays": delays})

    def token_for(self, user: str) -> str:
        return self._ok("GET", f"/lab/v1/tokens/{user}")["token"]

    def kubeconfig_for(self, user: str, namespace: str = "default") -> Path:
        path = self.state_dir / f"kubeconfig-{user}-{namespace}"
        path.write_text(render_kubeconfig(self.server, self.process.state.get("ca") and Path(self.process.state["ca"]),
                                          user, self.token_for(user), namespace))
        return path

    # -- isolated objects ----------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def isolated_namespace(self, labels: Optional[dict] = None, prefix: str = "t") -> Iterator[str]:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self._ok("POST", "/api/v1/namespaces", {"metadata": {"name": name, "labels": labels or {}}})
        try:
            yield name
        finally:
            self.request("DELETE", f"/api/v1/namespaces/{name}")

    def set_namespace_labels(self, namespace: str, labels: Dict[str, Optional[str]]) -> None:
        self._ok("PATCH", f"/api/v1/namespaces/{namespace}", {"metadata": {"labels": labels}},
                 "application/merge-patch+json")

    def create_pod(self, namespace: str, name: str, image: str = "busybox:1.36",
                   command: Sequence[str] = ("sleep", "3600"), containers: Optional[List[dict]] = None,
                   security_context: Optional[dict] = None, pod_security_context: Optional[dict] = None,
                   labels: Optional[dict] = None, restart_policy: str = "Never", wait: bool = True,
                   timeout: float = 60, cni: str = "bridge") -> dict:
        """Create a real pod through the API (namespaces + processes) and wait until it runs.

        Without `security_context`, a pod in a namespace that enforces `restricted` gets a compliant one
        (uid 1000, runAsNonRoot, drop ALL, RuntimeDefault seccomp, no privilege escalation).
        restartPolicy defaults to Never here (like `kubectl run --restart=Never`), so a pod whose command ends
        reaches phase Succeeded/Failed; pass "Always" for the Kubernetes default (CrashLoopBackOff on exit).
        `cni="routed"` plumbs the pod as a Calico-like routed CNI would (a cali* veth, a /32 route on the node)
        instead of the default bridge (tests/lab/network.py)."""
        if containers is None:
            c = {"name": "main", "image": image, "command": list(command)}
            if security_context is None and self._enforces(namespace) == "restricted":
                # A workload in a restricted namespace must comply, or admission rejects the pod itself.
                security_context = dict(RESTRICTED_CONTAINER)
                pod_security_context = pod_security_context or {"runAsNonRoot": True, "runAsUser": 1000,
                                                                "seccompProfile": {"type": "RuntimeDefault"}}
            if security_context:
                c["securityContext"] = security_context
            containers = [c]
        from .apiserver.kubelet import CNI_ANNOTATION

        body = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "labels": labels or {}, "annotations": {CNI_ANNOTATION: cni}},
                "spec": {"containers": containers, "securityContext": pod_security_context or {},
                         "restartPolicy": restart_policy}}
        self._ok("POST", f"/api/v1/namespaces/{namespace}/pods", body)
        return self.wait_pod(namespace, name, lambda p: (p.get("status") or {}).get("phase") == "Running",
                             timeout) if wait else body

    def _enforces(self, namespace: str) -> Optional[str]:
        code, ns, _ = self.request("GET", f"/api/v1/namespaces/{namespace}")
        return ((ns.get("metadata") or {}).get("labels") or {}).get("pod-security.kubernetes.io/enforce") \
            if code == 200 else None

    def wait_pod(self, namespace: str, name: str, condition, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            code, pod, _ = self.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
            if code == 200 and condition(pod):
                return pod
            if time.monotonic() > deadline:
                raise TimeoutError(f"pod {namespace}/{name} did not reach the condition: {pod}")
            time.sleep(0.05)

    def ephemeral_status(self, pod: str, container: str, namespace: str = "default") -> Optional[dict]:
        code, obj, _ = self.request("GET", f"/api/v1/namespaces/{namespace}/pods/{pod}")
        for s in (obj.get("status") or {}).get("ephemeralContainerStatuses") or []:
            if s["name"] == container:
                return s
        return None


def _default_sigint() -> None:
    """A test runner started in the background (`cmd &`, nohup, some CI agents) has SIGINT ignored, and
    an ignored signal stays ignored across exec: Python would then never raise KeyboardInterrupt and
    the Ctrl-C tests would wait forever. A user's terminal gives the default; so do we."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> Iterator[LabHandle]:
    why = lab_unavailable_reason()
    if why:
        pytest.skip(why)
    sweep_stale()
    process = LabProcess(tmp_path_factory.mktemp("lab"))
    try:
        yield LabHandle(process)
    finally:
        process.stop()

