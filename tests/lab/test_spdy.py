"""The lab's SPDY/3.1 exec and attach, and its per-release exec rules, judged by the REAL kubectl.

`KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false` makes kubectl speak only SPDY (client-go's SPDY executor over
moby/spdystream); by default it tries WebSocket v5 first and falls back to SPDY on any refused upgrade (its
`-v=4` log says "RemoteCommand fallback"). Oracles: kubectl's own parsing of our frames, headers and status,
sha256 of the file tcpdump wrote inside the pod, and kubectl's fallback decisions under each release's rules.
"""
import hashlib
import http.client
import json
import os
import shutil
import ssl
import subprocess
import urllib.parse
import uuid

import pytest

from tests.lab.test_kubectl import TEE_CAPTURE, debug_container, wait_running

SPDY = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}
FALLBACK = "RemoteCommand fallback"


@pytest.mark.parametrize("env", [SPDY, None], ids=["spdy", "websocket"])
def test_kubectl_exec_stdout_stderr_and_exit_code_are_the_same_on_both_transports(lab, env):
    r = lab.kubectl("exec", "app-sidecar", "-c", "app", "-v=4", "--", "sh", "-c", "echo out; echo err >&2; exit 3",
                    env=env)
    assert r.returncode == 3
    assert r.stdout == "out\n"
    lines = [ln for ln in r.stderr.splitlines() if not ln.startswith("I")]  # klog lines start with I
    assert lines == ["err", "command terminated with exit code 3"], r.stderr
    assert (FALLBACK in r.stderr) is False  # SPDY asked for directly, or WebSocket v5 accepted


def test_kubectl_spdy_exec_tcpdump_is_byte_identical_to_the_file_written_inside(lab):
    name = debug_container(lab, "app-sidecar")
    wait_running(lab, "app-sidecar", name)
    fname = uuid.uuid4().hex[:8]
    r = lab.kubectl("exec", "app-sidecar", "-c", name, "--", "sh", "-c", TEE_CAPTURE.format(name=fname),
                    binary=True, timeout=60, env=SPDY)
    assert r.returncode == 0, r.stderr
    inside = lab.kubectl("exec", "app-sidecar", "-c", name, "--", "sha256sum", f"/tmp/{fname}.pcap",
                         env=SPDY).stdout.split()[0]
    assert hashlib.sha256(r.stdout).hexdigest() == inside
    assert r.stdout[:4] == bytes.fromhex("d4c3b2a1")
    if shutil.which("tshark"):
        frames = subprocess.run(["tshark", "-r", "-", "-T", "fields", "-e", "frame.number"], input=r.stdout,
                                capture_output=True).stdout.split()
        assert len(frames) == 20


def test_kubectl_spdy_moves_megabytes_both_ways_without_a_flow_control_stall(lab):
    """Far past SPDY's 64 KiB initial window: spdystream neither sends nor waits for WINDOW_UPDATE."""
    data = bytes(range(256)) * 4096 * 3  # 3 MiB, every byte value
    r = lab.kubectl("exec", "-i", "client", "-c", "client", "--", "sh", "-c", "cat | sha256sum", input=data,
                    binary=True, env=SPDY)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0].decode() == hashlib.sha256(data).hexdigest()
    r = lab.kubectl("exec", "client", "-c", "client", "--", "head", "-c", "5000000", "/dev/zero", binary=True,
                    env=SPDY)
    assert r.returncode == 0 and r.stdout == b"\0" * 5000000


def test_kubectl_spdy_missing_binary_and_unknown_container(lab):
    r = lab.kubectl("exec", "client", "-c", "client", "--", "tcpdump", "--version", env=SPDY)
    assert r.returncode == 1
    assert r.stderr.startswith("error: Internal error occurred: error executing command in container: failed to "
                               "exec in container: failed to start exec "), r.stderr
    assert r.stderr.endswith('exec: "tcpdump": executable file not found in $PATH: unknown\n')
    r = lab.kubectl("exec", "app-sidecar", "-c", "nope", "--", "true", env=SPDY)
    assert r.returncode == 1 and r.stderr.startswith("error: container nope is not valid for pod app-sidecar"), \
        r.stderr


def test_kubectl_spdy_exec_into_a_container_that_does_not_run(lab):
    """The kubelet answers before the upgrade, in plain text; kubectl shows it as an upgrade failure."""
    name = "short-" + uuid.uuid4().hex[:6]
    body = {"spec": {"ephemeralContainers": [{"name": name, "image": "busybox:1.36", "command": ["true"]}]}}
    code, _, _ = lab.request("PATCH", "/api/v1/namespaces/default/pods/echo-2/ephemeralcontainers", body,
                             "application/strategic-merge-patch+json")
    assert code == 200
    lab.wait_pod("default", "echo-2", lambda p: any(
        s["name"] == name and "terminated" in s["state"] for s in p["status"].get("ephemeralContainerStatuses") or []))
    r = lab.kubectl("exec", "echo-2", "-c", name, "--", "true", env=SPDY)
    assert r.returncode == 1
    assert r.stderr == f'error: unable to upgrade connection: container not found ("{name}")\n', r.stderr


@pytest.mark.skipif(not shutil.which("script"), reason="needs util-linux script for a terminal")
def test_kubectl_spdy_exec_it_runs_on_a_terminal(lab):
    r = subprocess.run(["script", "-qec", f"kubectl --kubeconfig {lab.kubeconfig} --cache-dir {lab.state_dir}/kc "
                        "exec -it client -c client -- sh", "/dev/null"],
                       input="test -t 0 && echo on-a-tty; exit 5\n", capture_output=True, text=True, timeout=60,
                       env={**os.environ, **SPDY})
    out = r.stdout.replace("\r", "").replace("echo on-a-tty", "")  # the terminal echoes the typed line
    assert "on-a-tty\n" in out and "command terminated with exit code 5" in out, out
    assert r.returncode == 5


def test_kubectl_debug_interactive_attaches_over_spdy(lab):
    r = lab.kubectl("debug", "-i", "echo-0", "--image=busybox:1.36", "-c", "sat-" + uuid.uuid4().hex[:6], "--",
                    "sh", input="echo $((6*7)) from $(hostname); exit 3\n", timeout=60, env=SPDY)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "42 from echo-0\n"


def _exec_role(user: str, verbs):
    rules = [{"namespaces": ["*"], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    if verbs:
        rules.append({"namespaces": ["*"], "resources": ["pods/exec"], "verbs": list(verbs)})
    return {"users": [{"name": user, "rules": rules}]}


# What kubectl (WebSocket v5 first, SPDY on a refused upgrade) does under each release's rules:
# v5 is served from 1.30; a WebSocket GET needs `get`, and from 1.35 also `create`; SPDY (POST) needs `create`.
KUBECTL_UNDER_RULES = [
    ("1.25", ("get", "create"), True, True),  # no v5 before 1.30: 403 to kubectl's v5-only offer, then SPDY
    ("1.25", ("get",), False, True),  # ... and SPDY needs create: kubectl fails where a v4 WebSocket would work
    ("1.29", ("create",), True, True),
    ("1.30", ("get", "create"), True, False),
    ("1.34", ("get",), True, False),
    ("1.34", ("create",), True, True),  # the 403 on the GET sends kubectl to SPDY
    ("1.35", ("get",), False, True),  # the GET also needs create now; SPDY needs it anyway
    ("1.35", ("create",), True, True),
    ("1.35", ("get", "create"), True, False),
    ("1.37", ("create",), True, True),
    ("1.37", ("get", "create"), True, False),
]


@pytest.mark.parametrize("version, verbs, works, fell_back", KUBECTL_UNDER_RULES,
                         ids=[f"{v}-{'+'.join(vb)}" for v, vb, _, _ in KUBECTL_UNDER_RULES])
def test_kubectl_exec_follows_each_releases_verb_and_protocol_rules(lab, version, verbs, works, fell_back):
    user = "exec-" + "-".join(verbs)
    with lab.server_version(version), lab.rbac_policy(_exec_role(user, verbs)):
        r = lab.kubectl("exec", "client", "-c", "client", "-v=4", "--", "echo", "hi",
                        kubeconfig=lab.kubeconfig_for(user))
    assert (FALLBACK in r.stderr) is fell_back, r.stderr
    if works:
        assert (r.returncode, r.stdout) == (0, "hi\n"), r.stderr
    else:
        assert r.returncode == 1
        assert r.stderr.splitlines()[-1] == (
            f'error: unable to upgrade connection: pods "client" is forbidden: User "{user}" cannot create resource '
            f'"pods/exec" in API group "" in the namespace "default"')


def _raw(lab, method: str, path: str, headers: dict):
    ctx = ssl.create_default_context(cafile=lab.process.state["ca"])
    host = urllib.parse.urlsplit(lab.server)
    conn = http.client.HTTPSConnection(host.hostname, host.port, context=ctx, timeout=10)
    conn.request(method, path, headers={"Authorization": f"Bearer {lab.token_for('admin')}", **headers})
    resp = conn.getresponse()
    return resp.status, dict(resp.getheaders()), resp.read()


EXEC = "/api/v1/namespaces/default/pods/client/exec?command=true&container=client&stdout=true"


def test_spdy_protocol_negotiation_refusal_lists_what_the_server_accepts(lab):
    code, headers, body = _raw(lab, "POST", EXEC, {"Connection": "Upgrade", "Upgrade": "SPDY/3.1",
                                                   "X-Stream-Protocol-Version": "v9.channel.k8s.io"})
    assert code == 403
    assert body == (b"unable to upgrade: unable to negotiate protocol: client supports [v9.channel.k8s.io], server "
                    b"accepts [v4.channel.k8s.io v3.channel.k8s.io v2.channel.k8s.io]\n")
    code, _, body = _raw(lab, "POST", EXEC, {})  # no upgrade at all: the proxy's 400
    assert code == 400 and b"Upgrade request required" in body


def test_the_135_create_check_on_a_websocket_get_is_the_registrys_forbidden(lab):
    """`ensureAuthorizedForVerb` builds `NewForbidden(pods, name, reason)` and a plain RBAC denial has no reason."""
    user = "ws-get-only"
    with lab.rbac_policy(_exec_role(user, ["get"])), lab.server_version("1.35"):
        token = lab.token_for(user)
        ctx = ssl.create_default_context(cafile=lab.process.state["ca"])
        host = urllib.parse.urlsplit(lab.server)
        conn = http.client.HTTPSConnection(host.hostname, host.port, context=ctx, timeout=10)
        conn.request("GET", EXEC, headers={"Authorization": f"Bearer {token}", "Connection": "Upgrade",
                                           "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                                           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                           "Sec-WebSocket-Protocol": "v5.channel.k8s.io"})
        resp = conn.getresponse()
        body = json.loads(resp.read())
    assert resp.status == 403
    assert body["message"] == 'pods "client" is forbidden: '
    assert body["details"] == {"name": "client", "kind": "pods"}
