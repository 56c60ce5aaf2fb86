"""Proof that the lab speaks Kubernetes: the REAL kubectl binary and the REAL Python client drive it.

Oracles: kubectl's own parsing of our answers (a protocol detail kubectl needs and the lab lacks fails here),
sha256 of the file tcpdump wrote inside the pod vs the bytes that crossed the exec WebSocket, tshark on them.
"""
import hashlib
import json
import re
import shutil
import subprocess
import time
import uuid

import pytest


# One fixed script: tcpdump's pcap goes both to stdout (→ exec stream) and, via tee, to a file in the pod.
TEE_CAPTURE = "tcpdump -i any -c 20 -U -w - 2>/dev/null | tee /tmp/{name}.pcap"


def debug_container(lab, pod, image="nicolaka/netshoot:v0.13", namespace="default"):
    name = "dbg-" + uuid.uuid4().hex[:6]
    r = lab.kubectl("-n", namespace, "debug", pod, f"--image={image}", "--profile=netadmin", "-c", name,
                    "--", "sleep", "600")
    assert r.returncode == 0, r.stderr
    return name


def wait_running(lab, pod, name, namespace="default", timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = lab.ephemeral_status(pod, name, namespace)
        if s and "running" in s["state"]:
            return s
        time.sleep(0.05)
    raise AssertionError(f"{name} never ran: {lab.ephemeral_status(pod, name, namespace)}")


def test_kubectl_get_pods_wide_lists_the_topology_with_ips(lab):
    r = lab.kubectl("get", "pods", "-o", "wide")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE",
                                "READINESS", "GATES"]
    rows = {ln.split()[0]: ln.split() for ln in lines[1:]}
    for name, info in lab.pods.items():
        assert rows[name][2] == "Running"
        assert rows[name][5] == info.ip
    assert rows["app-sidecar"][1] == "2/2"
    # The IPs kubectl shows are the ones the kernel has on the pods' eth0.
    addrs = json.loads(lab.netns_run("echo-1", ["ip", "-j", "-4", "addr", "show", "eth0"]).stdout)
    assert addrs[0]["addr_info"][0]["local"] == rows["echo-1"][5]


def test_kubectl_debug_netadmin_then_status_and_capabilities(lab):
    name = debug_container(lab, "client")
    status = wait_running(lab, "client", name)
    r = lab.kubectl("get", "pod", "client", "-o", "jsonpath={.status.ephemeralContainerStatuses}")
    statuses = {s["name"]: s for s in json.loads(r.stdout)}
    assert "running" in statuses[name]["state"] and statuses[name]["image"] == "docker.io/nicolaka/netshoot:v0.13"
    assert status["containerID"].startswith("containerd://")
    spec = json.loads(lab.kubectl("get", "pod", "client", "-o", "json").stdout)["spec"]["ephemeralContainers"]
    mine = next(c for c in spec if c["name"] == name)
    assert mine["securityContext"] == {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}}
    assert mine["terminationMessagePath"] == "/dev/termination-log"  # server-side defaulting echoed back
    # Without --target the debug container has its own PID namespace (the Kubernetes default): `sleep 600` is its
    # PID 1 and the app container's process is invisible there, while the pod's PID 1 sees both.
    mine_ps = lab.container_run("client", name, ["ps", "-eo", "pid,args"]).stdout.splitlines()[1:]
    assert [ln.split(None, 1) for ln in mine_ps][0] == ["1", "sleep 600"]
    assert not any("sleep 86400" in ln for ln in mine_ps)
    pod_ps = lab.pod_run("client", ["ps", "-eo", "args"]).stdout
    assert "\nsleep 600\n" in pod_ps and "\nsleep 86400\n" in pod_ps
    r = lab.kubectl("exec", "client", "-c", name, "--", "grep", "CapEff", "/proc/1/status")
    assert r.returncode == 0, r.stderr
    caps = int(r.stdout.split()[-1], 16)
    assert caps & (1 << 12) and caps & (1 << 13)  # CAP_NET_ADMIN, CAP_NET_RAW
    assert not caps & (1 << 21)  # CAP_SYS_ADMIN


def test_kubectl_debug_target_shares_the_target_containers_processes(lab):
    name = "tgt-" + uuid.uuid4().hex[:6]
    r = lab.kubectl("debug", "app-sidecar-nft", "--image=nicolaka/netshoot:v0.13", "--profile=netadmin", "-c", name,
                    "--target=istio-proxy", "--", "sleep", "600")
    assert r.returncode == 0, r.stderr
    wait_running(lab, "app-sidecar-nft", name)
    ps = lab.kubectl("exec", "app-sidecar-nft", "-c", name, "--", "ps", "-eo", "pid,user,args").stdout
    rows = [ln.split(None, 2) for ln in ps.splitlines()[1:]]
    assert rows[0][:2] == ["1", "1337"] and "proxy.py" in rows[0][2], rows  # the proxy is PID 1 here
    assert not any("traffic.py" in r[2] for r in rows)  # the other container's process is not


def test_kubectl_exec_tcpdump_is_byte_identical_to_the_file_written_inside(lab):
    name = debug_container(lab, "app-sidecar")
    wait_running(lab, "app-sidecar", name)
    fname = uuid.uuid4().hex[:8]
    r = lab.kubectl("exec", "app-sidecar", "-c", name, "--", "sh", "-c", TEE_CAPTURE.format(name=fname),
                    binary=True, timeout=60)
    assert r.returncode == 0, r.stderr
    inside = lab.kubectl("exec", "app-sidecar", "-c", name, "--", "sha256sum", f"/tmp/{fname}.pcap").stdout.split()[0]
    assert hashlib.sha256(r.stdout).hexdigest() == inside
    assert r.stdout[:4] == bytes.fromhex("d4c3b2a1")  # pcap, little-endian, as tcpdump writes it
    if shutil.which("tshark"):
        frames = subprocess.run(["tshark", "-r", "-", "-T", "fields", "-e", "frame.number"], input=r.stdout,
                                capture_output=True).stdout.split()
        assert len(frames) == 20


def test_python_client_exec_binary_stream_matches_the_file_inside(lab):
    from kubernetes.stream import stream
    name = debug_container(lab, "app-sidecar-nft")
    wait_running(lab, "app-sidecar-nft", name)
    v1 = lab.core_v1()
    fname = uuid.uuid4().hex[:8]
    resp = stream(v1.connect_get_namespaced_pod_exec, "app-sidecar-nft", "default",
                  command=["sh", "-c", TEE_CAPTURE.format(name=fname)], container=name, stdin=False, stdout=True,
                  stderr=True, tty=False, binary=True, _preload_content=False)
    out = bytearray()
    while resp.is_open():
        resp.update(timeout=1)
        if resp.peek_stdout():
            out += resp.read_stdout()
    assert resp.returncode == 0
    check = stream(v1.connect_get_namespaced_pod_exec, "app-sidecar-nft", "default",
                   command=["sha256sum", f"/tmp/{fname}.pcap"], container=name, stdin=False, stdout=True,
                   stderr=False, tty=False, binary=True)
    assert hashlib.sha256(bytes(out)).hexdigest() == check.split()[0].decode()


def test_kubectl_exec_exit_codes_and_missing_binaries(lab):
    r = lab.kubectl("exec", "app-sidecar", "-c", "app", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\ncommand terminated with exit code 3\n")
    r = lab.kubectl("exec", "client", "-c", "client", "--", "tcpdump", "--version")  # busybox carries no tcpdump
    assert r.returncode == 1
    assert re.fullmatch(r'error: Internal error occurred: error executing command in container: failed to exec in '
                        r'container: failed to start exec "[0-9a-f]{64}": OCI runtime exec failed: exec failed: '
                        r'unable to start container process: exec: "tcpdump": executable file not found in \$PATH: '
                        r'unknown\n', r.stderr), r.stderr
    r = lab.kubectl("exec", "client", "-c", "client", "--", "/usr/bin/tcpdump", "--version")  # absolute: still absent
    assert r.returncode == 1 and 'exec: "/usr/bin/tcpdump": executable file not found in $PATH' in r.stderr
    r = lab.kubectl("exec", "app-sidecar-nft", "--", "true")  # two containers: kubectl defaults to the first
    assert r.returncode == 0 and r.stderr.startswith('Defaulted container "app" out of: app, istio-proxy'), r.stderr
    r = lab.kubectl("exec", "app-sidecar", "-c", "nope", "--", "true")
    assert r.returncode == 1 and r.stderr.startswith("error: container nope is not valid for pod app-sidecar out of: "
                                                      "app, istio-proxy"), r.stderr


def test_kubectl_exec_stdin_is_delivered(lab):
    r = lab.kubectl("exec", "-i", "client", "-c", "client", "--", "sh", "-c", "cat | wc -c", input=b"x" * 100000, binary=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == b"100000"


def test_kubectl_debug_unknown_image_shows_image_pull_backoff(lab):
    name = debug_container(lab, "echo-2", image="registry.invalid/nope:1")
    seen = set()
    deadline = time.monotonic() + 20
    while not {"ErrImagePull", "ImagePullBackOff"} <= seen and time.monotonic() < deadline:
        s = lab.ephemeral_status("echo-2", name)
        if s and "waiting" in s["state"]:
            seen.add(s["state"]["waiting"]["reason"])
        time.sleep(0.05)
    assert {"ErrImagePull", "ImagePullBackOff"} <= seen <= {"ContainerCreating", "ErrImagePull", "ImagePullBackOff"}
    r = lab.kubectl("get", "pod", "echo-2", "-o", f"jsonpath={{.status.ephemeralContainerStatuses[?(@.name==\"{name}\")].state.waiting.message}}")
    assert r.stdout in ('Back-off pulling image "registry.invalid/nope:1"',
                        'rpc error: code = NotFound desc = failed to pull and unpack image '
                        '"registry.invalid/nope:1": failed to resolve reference "registry.invalid/nope:1": '
                        'registry.invalid/nope:1: not found')


def test_kubectl_debug_in_a_baseline_namespace_gets_the_podsecurity_403(lab):
    with lab.isolated_namespace(labels={"pod-security.kubernetes.io/enforce": "baseline"}) as ns:
        lab.create_pod(ns, "p")
        r = lab.kubectl("-n", ns, "debug", "p", "--image=nicolaka/netshoot:v0.13", "--profile=netadmin", "-c", "dbg",
                        "--", "sleep", "60")
    assert r.returncode == 1
    assert r.stderr == ('Error from server (Forbidden): pods "p" is forbidden: violates PodSecurity "baseline:latest": '
                        'non-default capabilities (container "dbg" must not include "NET_ADMIN", "NET_RAW" in '
                        'securityContext.capabilities.add)\n')


def test_kubectl_debug_against_an_old_server(lab):
    with lab.old_server():
        r = lab.kubectl("debug", "client", "--image=nicolaka/netshoot:v0.13", "--profile=netadmin", "-c", "old",
                        "--", "sleep", "60")
    assert r.returncode == 1
    assert r.stderr.endswith('error: ephemeral containers are disabled for this cluster (error from server: '
                             '"the server could not find the requested resource")\n'), r.stderr


def test_kubectl_auth_can_i_uses_the_rbac_policy(lab):
    yes = lab.kubectl("auth", "can-i", "patch", "pods", "--subresource=ephemeralcontainers",
                      kubeconfig=lab.kubeconfig_for("debugger"))
    no = lab.kubectl("auth", "can-i", "patch", "pods", "--subresource=ephemeralcontainers",
                     kubeconfig=lab.kubeconfig_for("jane"))
    assert (yes.returncode, yes.stdout.strip()) == (0, "yes")
    assert (no.returncode, no.stdout.strip()) == (1, "no")


def test_kubectl_auth_whoami_from_1_28(lab):
    """SelfSubjectReview is GA (authentication.k8s.io/v1) in 1.28; an older server has no such resource."""
    r = lab.kubectl("auth", "whoami", kubeconfig=lab.kubeconfig_for("jane"))
    assert r.returncode == 0, r.stderr
    assert [ln.split(None, 1) for ln in r.stdout.splitlines()] == [["ATTRIBUTE", "VALUE"], ["Username", "jane"],
                                                                   ["Groups", "[system:authenticated]"]]
    with lab.server_version("1.27"):
        r = lab.kubectl("auth", "whoami", kubeconfig=lab.kubeconfig_for("jane"))
    assert (r.returncode, r.stderr) == (1, "error: the selfsubjectreviews API is not enabled in the cluster\n")


def test_kubectl_as_jane_gets_the_real_rbac_403(lab):
    r = lab.kubectl("debug", "client", "--image=nicolaka/netshoot:v0.13", "--profile=netadmin", "-c", "j",
                    "--", "sleep", "60", kubeconfig=lab.kubeconfig_for("jane"))
    assert r.returncode == 1
    assert r.stderr == ('Error from server (Forbidden): pods "client" is forbidden: User "jane" cannot patch resource '
                        '"pods/ephemeralcontainers" in API group "" in the namespace "default"\n')


def test_kubectl_wait_uses_the_streaming_list_and_sees_ready(lab):
    """client-go's WatchList (sendInitialEvents + the initial-events-end bookmark) must be served for this to end."""
    r = lab.kubectl("wait", "--for=condition=Ready", "pod/echo-0", "--timeout=20s", timeout=30)
    assert (r.returncode, r.stdout) == (0, "pod/echo-0 condition met\n"), r.stderr


def test_kubectl_logs_show_the_traffic_generator_reaching_all_endpoints(lab):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        r = lab.kubectl("logs", "app-sidecar", "-c", "app", "--tail=200")
        served = set(re.findall(r"^pod=(echo-\d) ", r.stdout, re.M))
        if served == {"echo-0", "echo-1", "echo-2"}:
            break
        time.sleep(0.5)
    assert served == {"echo-0", "echo-1", "echo-2"}, r.stdout[-500:]
    # Every request the app made left the pod from its own IP (the proxy's upstream), never from 127.0.0.6.
    peers = set(re.findall(r" peer=([\d.]+):", r.stdout))
    assert peers == {lab.pods["app-sidecar"].ip}


def test_a_distroless_debug_container_cannot_start_its_command(lab):
    name = debug_container(lab, "echo-1", image="gcr.io/distroless/static:nonroot")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        s = lab.ephemeral_status("echo-1", name)
        if s and "terminated" in s["state"]:
            break
        time.sleep(0.05)
    term = s["state"]["terminated"]
    assert (term["exitCode"], term["reason"]) == (128, "StartError")
    assert term["message"].endswith('exec: "sleep": executable file not found in $PATH: unknown')


def test_kubectl_debug_interactive_attaches_to_the_container(lab):
    """`kubectl debug -i`: waits for the container (watch), attaches (pods/attach over WebSocket), streams stdin."""
    r = lab.kubectl("debug", "-i", "echo-0", "--image=busybox:1.36", "-c", "att-" + uuid.uuid4().hex[:6], "--",
                    "sh", input="echo $((6*7)) from $(hostname); exit 3\n", timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "42 from echo-0\n"
    assert "falling back to streaming logs" not in r.stderr


@pytest.mark.skipif(not shutil.which("script"), reason="needs util-linux script for a terminal")
def test_kubectl_debug_it_gets_a_terminal_with_job_control(lab):
    name = "tty-" + uuid.uuid4().hex[:6]
    r = subprocess.run(["script", "-qc", f"kubectl --kubeconfig {lab.kubeconfig} --cache-dir {lab.state_dir}/kc "
                        f"debug -it echo-1 --image=busybox:1.36 -c {name} -- sh", "/dev/null"],
                       input="test -t 0 && echo on-a-tty; exit\n", capture_output=True, text=True, timeout=60)
    out = r.stdout.replace("\r", "")
    assert "\non-a-tty\n" in out, out
    assert "job control turned off" not in out and "Cannot set tty process group" not in out, out


@pytest.mark.parametrize("profile, owner_visible", [("netadmin", False), ("general", True)])
def test_socket_owners_of_another_uid_need_sys_ptrace(lab, profile, owner_visible):
    """In app-sidecar (shareProcessNamespace) `ss -p` names the uid-1337 proxy only with CAP_SYS_PTRACE
    (--profile=general), as on a real node: /proc/PID/fd of another uid is ptrace-guarded."""
    name = debug_container_with_profile(lab, "app-sidecar", profile)
    r = lab.kubectl("exec", "app-sidecar", "-c", name, "--", "ss", "-Htlnp", "sport", "=", ":15001")
    assert r.returncode == 0, r.stderr
    assert ('users:(("python3"' in r.stdout) is owner_visible, r.stdout


def debug_container_with_profile(lab, pod, profile):
    name = f"{profile[:3]}-" + uuid.uuid4().hex[:6]
    r = lab.kubectl("debug", pod, "--image=nicolaka/netshoot:v0.13", f"--profile={profile}", "-c", name, "--",
                    "sleep", "600")
    assert r.returncode == 0, r.stderr
    wait_running(lab, pod, name)
    return name


def test_python_client_watch_sees_an_ephemeral_container_start(lab):
    from kubernetes import watch
    v1 = lab.core_v1()
    rv = v1.read_namespaced_pod("echo-2", "default").metadata.resource_version
    name = "w-" + uuid.uuid4().hex[:6]
    lab.request("PATCH", "/api/v1/namespaces/default/pods/echo-2/ephemeralcontainers",
                {"spec": {"ephemeralContainers": [{"name": name, "image": "busybox:1.36", "command": ["sleep", "30"]}]}},
                "application/strategic-merge-patch+json")
    seen = []
    w = watch.Watch()
    for ev in w.stream(v1.list_namespaced_pod, "default", field_selector="metadata.name=echo-2",
                       resource_version=rv, timeout_seconds=10):
        st = next((s for s in ev["object"].status.ephemeral_container_statuses or [] if s.name == name), None)
        seen.append((ev["type"], st and ("running" if st.state.running else "waiting" if st.state.waiting else "?")))
        if st and st.state.running:
            w.stop()
    assert seen[-1] == ("MODIFIED", "running"), seen


@pytest.mark.skipif(not shutil.which("script"), reason="needs util-linux script for a terminal")
def test_kubectl_exec_it_runs_on_a_terminal(lab):
    r = subprocess.run(["script", "-qec", f"kubectl --kubeconfig {lab.kubeconfig} --cache-dir {lab.state_dir}/kc "
                        "exec -it client -c client -- sh", "/dev/null"],
                       input="test -t 0 && echo on-a-tty; exit 5\n", capture_output=True, text=True, timeout=60)
    # the terminal echoes the typed line, and the prompt may come before or after that echo
    out = r.stdout.replace("\r", "").replace("echo on-a-tty", "")
    assert "on-a-tty\n" in out and "command terminated with exit code 5" in out, out
    assert r.returncode == 5
