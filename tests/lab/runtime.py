"""The lab's container runtime: a pod sandbox is a PID+mount namespace inside the pod's network namespace,
a container is a process entered into it with exactly the capabilities and user its securityContext gives.

Capabilities follow containerd + runc: the bounding set is the runtime's default set plus `add` minus `drop`;
root gets that whole set after execve, a non-root user gets none (no ambient capabilities), which is why
Kubernetes' `capabilities.add` only works for uid 0.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

# containerd's default capability set (oci/spec_opts.go `defaultUnixCaps` / pkg/cap), names without CAP_.
DEFAULT_CAPS = ("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP",
                "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE")
ALL_CAPS = DEFAULT_CAPS + ("NET_ADMIN", "SYS_ADMIN", "SYS_PTRACE", "SYS_TIME", "SYS_MODULE", "SYS_RESOURCE",
                           "NET_BROADCAST", "IPC_LOCK", "IPC_OWNER", "SYS_NICE", "SYS_BOOT", "LEASE", "BPF",
                           "PERFMON", "CHECKPOINT_RESTORE", "DAC_READ_SEARCH", "LINUX_IMMUTABLE", "SYS_PACCT",
                           "SYS_RAWIO", "SYS_TTY_CONFIG", "AUDIT_CONTROL", "AUDIT_READ", "MAC_ADMIN",
                           "MAC_OVERRIDE", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND")

NSENTER = "/usr/bin/nsenter"
SETPRIV = "/usr/bin/setpriv"
UNSHARE = "/usr/bin/unshare"
SH = "/bin/sh"
MOUNT = "/bin/mount"
SETSID = "/usr/bin/setsid"


def _cap(name: str) -> str:
    name = name.upper()
    return name[4:] if name.startswith("CAP_") else name


@dataclass(frozen=True)
class Identity:
    """Who a container process runs as and what it may do."""
    uid: int = 0
    gid: int = 0
    caps: tuple = DEFAULT_CAPS
    no_new_privs: bool = False
    groups: tuple = ()

    @classmethod
    def from_security_context(cls, container_sc: Optional[dict], pod_sc: Optional[dict]) -> "Identity":
        sc, psc = container_sc or {}, pod_sc or {}
        if sc.get("privileged"):
            caps = ALL_CAPS
        else:
            # containerd's WithCapabilities: "ALL" in add/drop first, then individual adds, then individual drops.
            c = sc.get("capabilities") or {}
            add = [_cap(x) for x in c.get("add") or []]
            drop = [_cap(x) for x in c.get("drop") or []]
            caps = ALL_CAPS if "ALL" in add else DEFAULT_CAPS
            if "ALL" in drop:
                caps = ()
            caps += tuple(x for x in add if x != "ALL" and x not in caps)
            caps = tuple(x for x in caps if x not in drop)
        uid = sc.get("runAsUser", psc.get("runAsUser", 0))
        gid = sc.get("runAsGroup", psc.get("runAsGroup", 0))
        return cls(uid=int(uid), gid=int(gid), caps=caps,
                   no_new_privs=sc.get("allowPrivilegeEscalation") is False,
                   groups=tuple(int(g) for g in psc.get("supplementalGroups") or ()))

    def setpriv_argv(self) -> List[str]:
        capset = ",".join(["-all"] + [f"+{c.lower()}" for c in self.caps])
        argv = [SETPRIV, f"--reuid={self.uid}", f"--regid={self.gid}"]
        argv += [f"--groups={','.join(map(str, self.groups))}"] if self.groups else ["--clear-groups"]
        argv += [f"--bounding-set={capset}", f"--inh-caps={capset}"]
        if self.uid == 0:
            # Root keeps its bounding set through execve anyway; ambient makes that explicit.
            argv += [f"--ambient-caps={capset}"]
        if self.no_new_privs:
            argv += ["--no-new-privs"]
        return argv


class Sandbox:
    """A pod's PID + mount namespace (its PID 1 plays the pause container) inside its network namespace."""

    def __init__(self, netns: str, hostname: str, etc_dir: Optional[Path] = None):
        """`etc_dir` holds the pod's resolv.conf and hosts (bind-mounted over /etc's, as the kubelet does)."""
        self.netns = netns
        self.hostname = hostname
        binds = ""
        if etc_dir is not None:
            binds = ('mount --bind "$1/resolv.conf" /etc/resolv.conf && mount --bind "$1/hosts" /etc/hosts && ')
        # Fixed script (lab code, no user input): /etc files, private /tmp, then become the namespace's init.
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, "unshare", "--pid", "--mount", "--uts", "--fork", "--mount-proc",
             "sh", "-c", binds + 'mount -t tmpfs -o mode=1777 tmpfs /tmp && hostname "$0" && exec sleep infinity',
             hostname, str(etc_dir or "")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.init_pid = self._wait_init()

    def _wait_init(self) -> int:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
                if children:
                    pid = int(children[0])
                    if Path(f"/proc/{pid}/comm").read_text().strip() == "sleep":
                        return pid
            except (FileNotFoundError, ProcessLookupError):
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"pod sandbox for {self.netns} exited with {self.proc.returncode}")
            time.sleep(0.005)
        raise RuntimeError(f"pod sandbox for {self.netns} did not start")

    def start_container(self, identity: Identity, command: Sequence[str], env: Dict[str, str],
                        pid_ns: Union[str, int] = "own", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL, tty: bool = False) -> "ContainerProcess":
        """Start a container's main process (an argv list, never a shell string).

        pid_ns: "own" = a new PID namespace nested in the pod's (the Kubernetes default: the container sees only
        its own processes, the pod's PID 1 sees them all); "pod" = the pod's (shareProcessNamespace: true);
        an int = join the PID namespace of that host PID (an ephemeral container's targetContainerName).
        Every container gets its own mount namespace with /proc of its PID namespace and a private /tmp.
        """
        pod = f"/proc/{self.init_pid}/ns"
        if pid_ns == "own":
            pid_file, tail = f"{pod}/pid", [UNSHARE, "--pid", "--fork", "--mount", "--mount-proc", "--"]
        else:
            pid_file = f"{pod}/pid" if pid_ns == "pod" else f"/proc/{int(pid_ns)}/ns/pid"
            tail = [UNSHARE, "--mount", "--mount-proc", "--"]
        if tty:
            # A session inside the container owns the terminal, so shells get job control (as under runc).
            tail += [SETSID, "--ctty"]
        # One nsenter, namespace files opened before any setns (a host PID is not visible inside the pod).
        enter = [NSENTER, f"--net={pod}/net", f"--uts={pod}/uts", f"--mount={pod}/mnt", f"--pid={pid_file}", "--",
                 *tail]
        # Fixed script: the user's argv only ever arrives as "$@".
        argv = enter + [SH, "-c", f'{MOUNT} -t tmpfs -o mode=1777 tmpfs /tmp && cd / && exec "$@"', "container",
                        *identity.setpriv_argv(), "--", *command]
        proc = subprocess.Popen(argv, env=env, stdin=stdin, stdout=stdout, stderr=stderr, start_new_session=True,
                                close_fds=True)
        return ContainerProcess(proc, _main_pid(proc, depth=2 if pid_ns == "own" else 1))

    @staticmethod
    def exec_argv(main_pid: int, identity: Identity, command: Sequence[str], workdir: str = "/",
                  tty: bool = False) -> List[str]:
        ctty = [SETSID, "--ctty"] if tty else []  # a session inside the container owns the terminal
        return [NSENTER, "-t", str(main_pid), "-n", "-p", "-m", "-u", f"--wd={workdir}", "--", *ctty,
                *identity.setpriv_argv(), "--", *command]

    def exec(self, main_pid: int, identity: Identity, command: Sequence[str], env: Dict[str, str],
             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
             tty: bool = False) -> subprocess.Popen:
        """A process in a running container's namespaces (what `kubectl exec` starts)."""
        return subprocess.Popen(self.exec_argv(main_pid, identity, command, tty=tty), env=env, stdin=stdin,
                                stdout=stdout, stderr=stderr, start_new_session=True, close_fds=True)

    def stop(self) -> None:
        """Killing the PID namespace's init ends every process of the pod (containers and execs)."""
        try:
            os.kill(self.init_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class ContainerProcess:
    """The process tree of a container: `proc` is our direct child (it ends when the container does),
    `main_pid` the host PID of the container's main process (what exec joins)."""
    proc: subprocess.Popen
    main_pid: int


def _main_pid(proc: subprocess.Popen, depth: int, timeout: float = 10) -> int:
    """Follow first children `depth` levels down from `proc` (nsenter → nsenter/unshare → the main process)."""
    deadline = time.time() + timeout
    pid = proc.pid
    level = 0
    while level < depth:
        try:
            kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            kids = []
        if kids:
            pid, level = int(kids[0]), level + 1
            continue
        if proc.poll() is not None or time.time() > deadline:
            return pid  # it exited (or never forked further): the caller sees the exit through `proc`
        time.sleep(0.002)
    return pid


def find_executable(name: str, path: str) -> Optional[str]:
    """What execvp would run for argv[0] with this PATH (None = "executable file not found in $PATH").

    The host filesystem is shared, so an absolute argv[0] counts only if the image carries that binary
    (one of its PATH entries resolves to the same file): `/usr/sbin/tcpdump` is absent from busybox, as it is
    in the real image."""
    dirs = [d for d in path.split(":") if d]
    if "/" in name:
        real = os.path.realpath(name)
        for d in dirs:
            for entry in os.listdir(d) if os.path.isdir(d) else ():
                if os.path.realpath(os.path.join(d, entry)) == real and os.access(real, os.X_OK):
                    return name
        return None
    for d in dirs:
        cand = os.path.join(d, name)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def exit_code(returncode: int) -> int:
    """Popen's returncode → a container exit code (signals are 128+N, as runtimes report them)."""
    return 128 - returncode if returncode < 0 else returncode
