"""The lab's kubelet: a pod becomes a network namespace + PID/mount namespace, a container a real process.

Container status moves the way the real kubelet reports it (research/k8s-api-spec.md §1): no status right after
the PATCH, then `waiting: ContainerCreating`, then `running`, then `terminated` with the process's exit code —
or `ErrImagePull` / `ImagePullBackOff` forever for an image no registry has. Ephemeral containers never restart.
"""
from __future__ import annotations

import os
import hashlib
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from .. import images
from ..network import Network
from ..runtime import Identity, Sandbox, exit_code, find_executable
from .attach import ContainerIO
from .store import Store, now


def _listening(pid: int) -> set:
    """TCP ports in LISTEN state in the network namespace of `pid` (/proc/PID/net/tcp{,6}, state 0A)."""
    ports = set()
    for name in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "0A":
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@dataclass
class Delays:
    """How long the fake parts take (seconds); tests keep them short, the demo can slow them down."""
    sync: float = 0.05          # PATCH → first status (waiting: ContainerCreating)
    create: float = 0.05        # ContainerCreating → running
    pull_backoff: float = 0.5   # ErrImagePull → ImagePullBackOff → ErrImagePull … (doubles, capped at 5 s)
    restart: float = 1.0        # CrashLoopBackOff before the first restart (doubles; the real kubelet starts at 10 s)


@dataclass
class Container:
    name: str
    spec: dict
    identity: Identity
    image: Optional[images.Image]
    env: Dict[str, str]
    log: Path
    proc: Optional[subprocess.Popen] = None
    container_id: str = ""
    io: Optional[ContainerIO] = None
    started_at: str = ""
    main_pid: int = 0
    pid_ns: object = "own"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class PodRuntime:
    namespace: str
    name: str
    uid: str
    short: str
    netns: str
    ip: str
    sandbox: Sandbox
    containers: Dict[str, Container] = field(default_factory=dict)
    deleted: bool = False
    share_pid_ns: bool = False
    host_network: bool = False  # runs in the node's network namespace: nothing of it to remove
    host_pid: bool = False  # sees every process of the node (the lab's machine)
    node: str = ""  # the node it runs on


# The lab's stand-in for a CNI's choice: which plumbing a pod gets (network.CNI_STYLES).
CNI_ANNOTATION = "lab.kubectl-whose.io/cni"


def lab_scripts_dir(run_root: Path) -> Path:
    """Where pods find the lab's own programs (echo server, proxy, traffic): this directory, or a copy
    of its scripts under `run_root` when the checkout lives under /tmp, which every pod's private /tmp
    hides (a CI clone may well be there)."""
    here = Path(__file__).resolve().parent.parent
    if not (here == Path("/tmp") or Path("/tmp") in here.parents):
        return here
    dest = run_root / "scripts"
    dest.mkdir(parents=True, exist_ok=True)
    for script in here.glob("*.py"):
        shutil.copy2(script, dest / script.name)
    return dest


class Kubelet:
    def __init__(self, store: Store, network: Network, node_name: str, state_dir: Path, images_root: Path,
                 delays: Delays = Delays()):
        self.store, self.network, self.node_name = store, network, node_name
        self.logs = state_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.images_root = images_root
        self.delays = delays
        self.pods: Dict[tuple, PodRuntime] = {}
        self._lock = threading.Lock()

    # -- pods --------------------------------------------------------------------------------------------------
    def run_pod(self, pod: dict, ip: Optional[str] = None, iptables: Optional[dict] = None) -> PodRuntime:
        """Create the pod's namespaces and start its containers; the pod object must already be stored."""
        from ..network import rules_file
        meta = pod["metadata"]
        ns_name, name = meta["namespace"], meta["name"]
        short = name if ns_name == "default" else f"{name}.{ns_name}"
        host_network = bool(pod["spec"].get("hostNetwork"))
        node = self.network.node_named(pod["spec"].get("nodeName"))
        if node is None:  # bound to a node that does not exist: no kubelet ever runs it, it stays Pending
            return None
        if host_network:  # the kubelet gives the pod the node's own network namespace and address
            ip, netns = node.ip, node.ns
        else:
            cni = (meta.get("annotations") or {}).get(CNI_ANNOTATION, "bridge")
            ip = self.network.allocate_ip(ip, cni, node.name)
            netns = self.network.add_pod(short, ip, cni, node.name)
        if iptables:
            self.network.load_rules(netns, iptables["backend"], rules_file(iptables["rules"]))
        etc = self.logs.parent / "pods" / netns.name
        etc.mkdir(parents=True, exist_ok=True)
        # What the kubelet writes for dnsPolicy ClusterFirst; the cluster DNS Service has no endpoints in the lab,
        # so kube-proxy REJECTs queries at once (no 5 s resolver timeouts in the pods).
        (etc / "resolv.conf").write_text(f"search {ns_name}.svc.cluster.local svc.cluster.local cluster.local\n"
                                         f"nameserver {self.network.dns_ip}\noptions ndots:5\n")
        (etc / "hosts").write_text("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost "
                                   f"ip6-localhost ip6-loopback\n{ip}\t{name}\n")
        sandbox = Sandbox(netns.name, name, etc)
        rt = PodRuntime(ns_name, name, meta["uid"], short, netns.name, ip, sandbox,
                        share_pid_ns=bool(pod["spec"].get("shareProcessNamespace")), host_network=host_network,
                        host_pid=bool(pod["spec"].get("hostPID")), node=node.name)
        with self._lock:
            self.pods[(ns_name, name)] = rt
        statuses = [self._start(rt, c, pod) for c in pod["spec"].get("containers") or []]
        ready = all(s["ready"] for s in statuses)
        phase = "Running" if all("running" in s["state"] for s in statuses) else "Pending"

        def set_status(p):
            t = now()
            cond = lambda typ, ok=True: {"type": typ, "status": "True" if ok else "False",  # noqa: E731
                                         "lastProbeTime": None, "lastTransitionTime": t}
            p["spec"]["nodeName"] = node.name
            p["status"] = {"phase": phase, "conditions": [cond("PodReadyToStartContainers"), cond("Initialized"),
                                                          cond("Ready", ready), cond("ContainersReady", ready),
                                                          cond("PodScheduled")],
                           "hostIP": node.ip, "hostIPs": [{"ip": node.ip}],
                           "podIP": ip, "podIPs": [{"ip": ip}], "startTime": t,
                           "containerStatuses": statuses, "qosClass": "BestEffort"}
        self.store.update("pods", ns_name, name, set_status)
        # Only now: a probe or an exit reported earlier would be overwritten by the status above.
        for c in rt.containers.values():
            if c.proc is not None:
                if self._ports(c):
                    threading.Thread(target=self._probe_ready, args=(rt, c), daemon=True).start()
                threading.Thread(target=self._reap, args=(rt, c, "containerStatuses"), daemon=True).start()
        deadline = pod["spec"].get("activeDeadlineSeconds")
        if deadline:
            timer = threading.Timer(float(deadline), self._deadline_exceeded, args=(rt, int(deadline)))
            timer.daemon = True
            timer.start()
        return rt

    def _deadline_exceeded(self, rt: PodRuntime, seconds: int) -> None:
        """activeDeadlineSeconds (kubelet's `pastActiveDeadline`): the pod fails with reason DeadlineExceeded
        and its containers are killed; the object stays until someone deletes it."""
        if rt.deleted:
            return

        def fail(p):
            st = p.setdefault("status", {})
            st.update({"phase": "Failed", "reason": "DeadlineExceeded",
                       "message": "Pod was active on the node longer than the specified deadline"})
        self.store.update("pods", rt.namespace, rt.name, fail)
        rt.sandbox.stop()

    def delete_pod(self, namespace: str, name: str) -> None:
        with self._lock:
            rt = self.pods.pop((namespace, name), None)
        if rt is None:
            return
        rt.deleted = True
        rt.sandbox.stop()
        if not rt.host_network:
            self.network.remove_pod(rt.short)

    def get(self, namespace: str, name: str) -> Optional[PodRuntime]:
        with self._lock:
            return self.pods.get((namespace, name))

    def shutdown(self) -> None:
        with self._lock:
            pods = list(self.pods.values())
            self.pods.clear()
        for rt in pods:
            rt.deleted = True
            rt.sandbox.stop()

    # -- containers --------------------------------------------------------------------------------------------
    def _container(self, rt: PodRuntime, spec: dict, pod: dict) -> Container:
        identity = Identity.from_security_context(spec.get("securityContext"), pod["spec"].get("securityContext"))
        img = images.resolve(spec.get("image", ""))
        env = {"HOSTNAME": rt.name, "HOME": "/root" if identity.uid == 0 else "/"}
        if img is not None:
            env["PATH"] = str(images.tool_dir(self.images_root, img))
        for e in spec.get("env") or []:
            if "value" in e:
                env[e["name"]] = str(e["value"])
        log = self.logs / f"{rt.namespace}_{rt.name}_{spec['name']}.log"
        return Container(spec["name"], spec, identity, img, env, log)

    def _status(self, c: Container, state: dict, ready: bool = False) -> dict:
        s = {"name": c.name, "image": images.normalize(c.spec.get("image", "")) if c.container_id
             else c.spec.get("image", ""), "imageID": images.image_id(c.spec["image"]) if c.container_id else "",
             "ready": ready, "restartCount": 0, "state": state, "lastState": {}}
        if c.container_id:
            s["containerID"] = c.container_id
            s["started"] = "running" in state
        return s

    def _problem(self, rt: PodRuntime, c: Container, pod: dict) -> Optional[dict]:
        """Why the container cannot start (a waiting/terminated state), or None."""
        if c.image is None:
            ref = images.normalize(c.spec.get("image", ""))
            return {"waiting": {"reason": "ErrImagePull", "message": (
                f'rpc error: code = NotFound desc = failed to pull and unpack image "{ref}": failed to resolve '
                f'reference "{ref}": {ref}: not found')}}
        sc, psc = c.spec.get("securityContext") or {}, pod["spec"].get("securityContext") or {}
        non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        if non_root and c.identity.uid == 0:
            who = f'(pod: "{rt.name}_{rt.namespace}({rt.uid})", container: {c.name})'
            explicit = "runAsUser" in sc or "runAsUser" in psc
            msg = (f"container's runAsUser breaks non-root policy {who}" if explicit
                   else f"container has runAsNonRoot and image will run as root {who}")
            return {"waiting": {"reason": "CreateContainerConfigError", "message": msg}}
        argv = list(c.spec.get("command") or c.image.default_command) + list(c.spec.get("args") or [])
        if not argv:
            return {"waiting": {"reason": "CreateContainerError", "message":
                                f'failed to generate container "{c.name}" spec: no command specified'}}
        return None

    def _argv(self, c: Container) -> List[str]:
        argv = list(c.spec.get("command") or c.image.default_command) + list(c.spec.get("args") or [])
        lab_dir = str(lab_scripts_dir(self.images_root.parent))
        return [a.replace("{lab}", lab_dir) for a in argv]

    def _pulled(self, node: str, image: str) -> None:
        """The node now holds the image: the kubelet reports it in `status.images` (digest and tag names)."""
        names = [images.image_id(image), images.normalize(image)]

        def mutate(o):
            have = o.setdefault("status", {}).setdefault("images", [])
            if not any(names[1] in i.get("names", []) for i in have):
                have.append({"names": names, "sizeBytes": 10 * 1024 * 1024})
        try:
            self.store.update("nodes", "", node, mutate)
        except Exception:  # noqa: BLE001 - a node object the lab did not create: nothing to report on
            pass

    def _spawn(self, rt: PodRuntime, c: Container) -> Optional[dict]:
        """Start the process; return a terminated state if the runtime could not start it."""
        argv = self._argv(c)
        c.container_id = "containerd://" + hashlib.sha256(
            f"{rt.uid}/{c.name}/{time.time()}".encode()).hexdigest()
        self._pulled(rt.node, c.spec.get("image", ""))
        if find_executable(argv[0], c.env.get("PATH", "")) is None:
            t = now()
            return {"terminated": {"exitCode": 128, "reason": "StartError", "message": (
                "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc "
                f'create failed: unable to start container process: exec: "{argv[0]}": executable file not found '
                "in $PATH: unknown"), "startedAt": "1970-01-01T00:00:00Z", "finishedAt": t,
                "containerID": c.container_id}}
        # Every container's output goes to its log (with the time of each chunk, for logs --timestamps) and to
        # whoever attaches; stdin stays open only for a container that asked for it (nobody may ever attach).
        c.io = ContainerIO(c.log, bool(c.spec.get("tty")), bool(c.spec.get("stdinOnce")),
                           stdin=bool(c.spec.get("stdin")))
        if c.spec.get("tty"):
            c.env = dict(c.env, TERM="xterm")
        stdin, stdout, stderr = c.io.child_fds
        try:
            cp = rt.sandbox.start_container(c.identity, argv, c.env, pid_ns=self._pid_ns(rt, c), stdin=stdin,
                                            stdout=stdout, stderr=stderr, tty=c.io.tty)
        finally:
            c.io.started()
        c.proc, c.main_pid = cp.proc, cp.main_pid
        return None

    def _pid_ns(self, rt: PodRuntime, c: Container):
        """Kubernetes' process-namespace rules: own by default, the pod's with shareProcessNamespace, the
        target's for an ephemeral container with targetContainerName, the host's with hostPID (here: the lab's own,
        where the lab's pods are processes, so a hostPID container sees them all as on a node)."""
        if rt.host_pid:
            return os.getpid()
        if rt.share_pid_ns:
            return "pod"
        target = rt.containers.get(c.spec.get("targetContainerName") or "")
        if target is not None and target.running:
            return target.main_pid
        return "own"

    def _start(self, rt: PodRuntime, spec: dict, pod: dict) -> dict:
        c = self._container(rt, spec, pod)
        rt.containers[c.name] = c
        problem = self._problem(rt, c, pod)
        if problem:
            return self._status(c, problem)
        failed = self._spawn(rt, c)
        if failed:
            return self._status(c, failed)
        c.started_at = now()
        return self._status(c, {"running": {"startedAt": c.started_at}}, ready=not self._ports(c))

    @staticmethod
    def _ports(c: Container) -> List[int]:
        return [int(p["containerPort"]) for p in c.spec.get("ports") or [] if p.get("protocol", "TCP") == "TCP"]

    def _probe_ready(self, rt: PodRuntime, c: Container, timeout: float = 60) -> None:
        """A tcpSocket readiness probe on every declared port: ready once the pod's netns has them listening."""
        want = set(self._ports(c))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not rt.deleted and c.running:
            if want <= _listening(c.proc.pid):
                status = self._status(c, {"running": {"startedAt": c.started_at}}, ready=True)
                self._set_status(rt, "containerStatuses", status)
                return
            time.sleep(0.02)

    def _set_status(self, rt: PodRuntime, field_name: str, status: dict) -> None:
        def mutate(p):
            lst = p.setdefault("status", {}).setdefault(field_name, [])
            for i, s in enumerate(lst):
                if s["name"] == status["name"]:
                    lst[i] = status
                    break
            else:
                lst.append(status)
            if field_name == "containerStatuses":
                ready = all(s.get("ready") for s in lst)
                for cond in p["status"].get("conditions") or []:
                    if cond["type"] in ("Ready", "ContainersReady"):
                        cond["status"] = "True" if ready else "False"
        try:
            if not rt.deleted:
                self.store.update("pods", rt.namespace, rt.name, mutate)
        except Exception:  # the pod was deleted meanwhile
            pass

    def _reap(self, rt: PodRuntime, c: Container, field_name: str) -> None:
        restarts = 0
        while True:
            started = now()
            rc = c.proc.wait()
            if c.io is not None:
                c.io.ended.wait(2)  # the last output reaches the log and the attached clients first
            if rt.deleted:
                return
            code = exit_code(rc)
            terminated = {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                         "startedAt": started, "finishedAt": now(), "containerID": c.container_id}}
            policy = self._restart_policy(rt)
            # Ephemeral containers are never restarted (status validation treats them as RestartPolicyNever).
            if field_name != "containerStatuses" or policy == "Never" or (policy == "OnFailure" and code == 0):
                status = self._status(c, terminated)
                status["restartCount"] = restarts
                self._set_status(rt, field_name, status)
                if field_name == "containerStatuses":
                    self._maybe_finish(rt)
                return
            restarts += 1
            backoff = min(self.delays.restart * 2 ** (restarts - 1), 300.0)
            waiting = self._status(c, {"waiting": {"reason": "CrashLoopBackOff", "message": (
                f"back-off {int(backoff) or 1}s restarting failed container={c.name} pod={rt.name}_{rt.namespace}"
                f"({rt.uid})")}})
            waiting.update(restartCount=restarts, lastState=terminated)
            self._set_status(rt, field_name, waiting)
            time.sleep(backoff)
            if rt.deleted or self._spawn(rt, c):
                return
            running = self._status(c, {"running": {"startedAt": now()}}, ready=True)
            running.update(restartCount=restarts, lastState=terminated)
            self._set_status(rt, field_name, running)

    def _restart_policy(self, rt: PodRuntime) -> str:
        try:
            return self.store.get("pods", rt.namespace, rt.name)["spec"].get("restartPolicy", "Always")
        except Exception:
            return "Never"

    def _maybe_finish(self, rt: PodRuntime) -> None:
        """All regular containers terminated for good → phase Succeeded (all exit 0) or Failed."""
        def mutate(p):
            sts = (p.get("status") or {}).get("containerStatuses") or []
            if len(sts) < len(p["spec"].get("containers") or []) or not all("terminated" in s["state"] for s in sts):
                return
            ok = all(s["state"]["terminated"]["exitCode"] == 0 for s in sts)
            p["status"]["phase"] = "Succeeded" if ok else "Failed"
            for cond in p["status"].get("conditions") or []:
                if cond["type"] in ("Ready", "ContainersReady"):
                    cond["status"] = "False"
                    cond["reason"] = "PodCompleted"
        try:
            self.store.update("pods", rt.namespace, rt.name, mutate)
        except Exception:
            pass

    # -- ephemeral containers ----------------------------------------------------------------------------------
    def sync_ephemeral(self, namespace: str, name: str) -> None:
        """Start every ephemeral container of the pod the kubelet has not seen yet (after a subresource write)."""
        rt = self.get(namespace, name)
        if rt is None:
            return
        pod = self.store.get("pods", namespace, name)
        for spec in pod["spec"].get("ephemeralContainers") or []:
            if spec["name"] in rt.containers:
                continue
            c = self._container(rt, spec, pod)
            rt.containers[c.name] = c
            threading.Thread(target=self._run_ephemeral, args=(rt, c, pod), daemon=True,
                             name=f"ephemeral-{name}-{c.name}").start()

    def _run_ephemeral(self, rt: PodRuntime, c: Container, pod: dict) -> None:
        field_name = "ephemeralContainerStatuses"
        time.sleep(self.delays.sync)
        reason = "PodInitializing" if pod["spec"].get("initContainers") else "ContainerCreating"
        self._set_status(rt, field_name, self._status(c, {"waiting": {"reason": reason}}))
        time.sleep(self.delays.create)
        problem = self._problem(rt, c, pod)
        if problem and problem["waiting"]["reason"] == "ErrImagePull":
            self._pull_backoff(rt, c, problem)
            return
        if problem:
            self._set_status(rt, field_name, self._status(c, problem))
            return
        failed = self._spawn(rt, c)
        if failed:
            self._set_status(rt, field_name, self._status(c, failed))
            return
        self._set_status(rt, field_name, self._status(c, {"running": {"startedAt": now()}}))
        self._reap(rt, c, field_name)

    def _pull_backoff(self, rt: PodRuntime, c: Container, err: dict) -> None:
        backoff = self.delays.pull_backoff
        ref = c.spec.get("image", "")
        while not rt.deleted:
            self._set_status(rt, "ephemeralContainerStatuses", self._status(c, err))
            time.sleep(min(backoff, 5.0))
            if rt.deleted:
                return
            self._set_status(rt, "ephemeralContainerStatuses", self._status(c, {"waiting": {
                "reason": "ImagePullBackOff", "message": f'Back-off pulling image "{ref}"'}}))
            time.sleep(min(backoff, 5.0))
            backoff *= 2

