"""`capture` and `doctor` under each server release's exec rules, with a Role that grants only `create`, only
`get`, or both on pods/exec; and SPDY/3.1 end to end (byte identity, Ctrl-C, a cut connection, a proxy).

The lab presents each release (tests/lab/apiserver/versions.py) and was itself judged by the real kubectl under
the same rules (tests/lab/test_spdy.py). Oracles here: the API server's access log (GET = a WebSocket upgrade,
POST = SPDY), the pod's spec (nothing added on a refusal), sha256 of the copy tcpdump wrote inside the pod, `ps`
in the pod (no tcpdump left), tshark on what was kept.
"""
import hashlib
import re
import signal
import subprocess
import time

import pytest
import yaml

from kubectl_whose.errors import ExitCode
from tests.e2e.test_capture_errors import ConnectProxy, one_line
from tests.helpers.netns import requires_tools

pytestmark = requires_tools("tcpdump", "tshark")

VERSIONS = ("1.25", "1.29", "1.30", "1.34", "1.35", "1.37")
ROLES = {"create": ("create",), "get": ("get",), "both": ("get", "create")}
TRAFFIC = ("ping", "-i", "0.2", "127.0.0.1")  # an ICMP echo and its reply on lo, 5 times a second

# (release, role) -> the transport a capture uses and its HTTP method, or None: refused before anything is added.
MATRIX = {
    ("1.25", "create"): ("SPDY/3.1 (v4.channel.k8s.io)", "POST"),
    ("1.25", "get"): ("WebSocket (v4.channel.k8s.io, 1.25 serves no v5)", "GET"),
    ("1.25", "both"): ("WebSocket (v4.channel.k8s.io, 1.25 serves no v5)", "GET"),
    ("1.29", "create"): ("SPDY/3.1 (v4.channel.k8s.io)", "POST"),
    ("1.29", "get"): ("WebSocket (v4.channel.k8s.io, 1.29 serves no v5)", "GET"),
    ("1.29", "both"): ("WebSocket (v4.channel.k8s.io, 1.29 serves no v5)", "GET"),
    ("1.30", "create"): ("SPDY/3.1 (v4.channel.k8s.io)", "POST"),
    ("1.30", "get"): ("WebSocket (v5.channel.k8s.io)", "GET"),
    ("1.30", "both"): ("WebSocket (v5.channel.k8s.io)", "GET"),
    ("1.34", "create"): ("SPDY/3.1 (v4.channel.k8s.io)", "POST"),
    ("1.34", "get"): ("WebSocket (v5.channel.k8s.io)", "GET"),
    ("1.34", "both"): ("WebSocket (v5.channel.k8s.io)", "GET"),
    ("1.35", "create"): ("SPDY/3.1 (v4.channel.k8s.io)", "POST"),
    ("1.35", "get"): None,
    ("1.35", "both"): ("WebSocket (v5.channel.k8s.io)", "GET"),
    ("1.37", "create"): ("SPDY/3.1 (v4.channel.k8s.io)", "POST"),
    ("1.37", "get"): None,
    ("1.37", "both"): ("WebSocket (v5.channel.k8s.io)", "GET"),
}
CASES = [(v, r) for v in VERSIONS for r in ROLES]


# What deploy/rbac.yaml grants, with pods/exec cut down to each Role's verbs.
POLICY = {"users": [{"name": f"exec-{role}", "rules": [
    {"namespaces": ["*"], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
    {"namespaces": ["*"], "resources": ["pods/ephemeralcontainers"], "verbs": ["get", "patch", "update"]},
    {"namespaces": ["*"], "resources": ["namespaces"], "verbs": ["get"]},
    {"namespaces": ["*"], "resources": ["pods/exec"], "verbs": list(verbs)}]} for role, verbs in ROLES.items()]}


@pytest.fixture(scope="module")
def target(lab):
    """A pod pinging itself on lo, in its own namespace; the three Roles' users and a kubeconfig for each."""
    with lab.isolated_namespace(prefix="transports") as ns, lab.rbac_policy(POLICY):
        lab.create_pod(ns, "talker", image="nicolaka/netshoot:v0.13", command=TRAFFIC)
        yield ns, {role: lab.kubeconfig_for(f"exec-{role}", ns) for role in ROLES}


@pytest.fixture
def as_role(lab, target):
    ns, kubeconfigs = target

    def run(role, *args):
        return lab.whose_as(kubeconfigs[role], *args)
    return run


def ephemeral_count(lab, ns, pod="talker"):
    return len(lab.core_v1().read_namespaced_pod(pod, ns).spec.ephemeral_containers or [])


def refusal(version: str, ns: str, role: str) -> str:
    answers = {"get": "get allowed, create denied", "create": "get denied, create allowed"}[role]
    return (f'RBAC forbids exec in namespace "{ns}": {version} authorizes every exec as "create" on pods/exec (a '
            f'WebSocket exec also as "get"), and {answers}; nothing was added to the pod; grant it with: kubectl '
            f'create role kubectl-whose -n {ns} --verb=get,create --resource=pods/exec && kubectl create rolebinding '
            f'kubectl-whose -n {ns} --role=kubectl-whose --user=exec-{role}')


@pytest.mark.parametrize("version, role", CASES, ids=[f"{v}-{r}" for v, r in CASES])
def test_capture_under_each_releases_rules(lab, target, as_role, version, role):
    ns, _ = target
    before_spec, before_log = ephemeral_count(lab, ns), len(lab.exec_requests(ns, "talker"))
    with lab.server_version(version):
        r = as_role(role, "capture", "talker", "-i", "lo", "-f", "icmp", "--count", "1", "-o", "json")
    execs = lab.exec_requests(ns, "talker")[before_log:]
    expected = MATRIX[(version, role)]
    if expected is None:
        assert r.code == ExitCode.FORBIDDEN
        assert one_line(r) == refusal(version, ns, role)
        assert ephemeral_count(lab, ns) == before_spec and execs == []
        return
    assert r.code == 0, r.stderr
    assert r.json["packets"] == 1
    assert re.search(r"capture running in whose-\w+ \((new|reused) debug container\) after [\d.]+ s", r.stderr)
    method = expected[1]
    assert execs and {m for m, _ in execs} == {method}, execs  # every exec went over the planned transport
    assert all(code == 101 for _, code in execs), execs


# (release) -> the doctor's "server version" row
SERVER_ROWS = {
    "1.25": "Kubernetes v1.25.0+lab: ephemeral containers GA, PodSecurity GA; WebSocket exec v4.channel.k8s.io, "
            "authorized as get; SPDY/3.1 exec authorized as create",
    "1.29": "Kubernetes v1.29.0+lab: ephemeral containers GA, PodSecurity GA; WebSocket exec v4.channel.k8s.io, "
            "authorized as get; SPDY/3.1 exec authorized as create",
    "1.30": "Kubernetes v1.30.0+lab: ephemeral containers GA, PodSecurity GA; WebSocket exec v5.channel.k8s.io, "
            "authorized as get; SPDY/3.1 exec authorized as create",
    "1.34": "Kubernetes v1.34.0+lab: ephemeral containers GA, PodSecurity GA; WebSocket exec v5.channel.k8s.io, "
            "authorized as get; SPDY/3.1 exec authorized as create",
    "1.35": "Kubernetes v1.35.0+lab: ephemeral containers GA, PodSecurity GA; WebSocket exec v5.channel.k8s.io, "
            "authorized as get and create; SPDY/3.1 exec authorized as create",
    "1.37": "Kubernetes v1.37.0+lab: ephemeral containers GA, PodSecurity GA; WebSocket exec v5.channel.k8s.io, "
            "authorized as get and create; SPDY/3.1 exec authorized as create",
}


def exec_row(version: str, role: str) -> str:
    minor = int(version.split(".")[1])
    answers = {"get": "get allowed, create denied", "create": "get denied, create allowed",
               "both": "get allowed, create allowed"}[role]
    if minor >= 35:
        rule = f'{version} authorizes every exec as "create" on pods/exec (a WebSocket exec also as "get")'
    else:
        rule = f'{version} authorizes a WebSocket exec as "get" and a SPDY exec as "create" on pods/exec'
    expected = MATRIX[(version, role)]
    if expected is None:
        return f"denied: {rule}; {answers}"
    if expected[1] == "POST":
        return f"{expected[0]}: {rule}; {answers}"
    verbs = "get and create" if minor >= 35 else "get"
    return f"{expected[0]}: {version} authorizes it as {verbs} on pods/exec, allowed"


@pytest.mark.parametrize("version, role", CASES, ids=[f"{v}-{r}" for v, r in CASES])
def test_doctor_under_each_releases_rules_says_what_capture_does(lab, target, as_role, version, role):
    ns, _ = target
    with lab.server_version(version):
        r = as_role(role, "doctor", "talker", "-o", "json")
    rows = {c["name"]: c for c in r.json["checks"]}
    assert rows["server version"] == {"name": "server version", "result": "pass", "detail": SERVER_ROWS[version],
                                      "fix": ""}
    row = rows["exec transport"]
    assert row["detail"] == exec_row(version, role)
    refused = MATRIX[(version, role)] is None
    assert row["result"] == ("fail" if refused else "pass")
    assert row["fix"] == (f"kubectl create role kubectl-whose -n {ns} --verb=get,create --resource=pods/exec"
                          if refused else "")
    # doctor fails exactly where capture fails, and with capture's exit code
    failed = [c["name"] for c in r.json["checks"] if c["result"] == "fail"]
    assert failed == (["exec transport"] if refused else [])
    assert r.code == (ExitCode.FORBIDDEN if refused else 0), r.stderr


@pytest.fixture
def spdy_session(lab, target):
    """A debug session as the create-only user: every exec goes over SPDY/3.1."""
    from kubectl_whose.cli.options import KubeFlags
    from kubectl_whose.cluster.session import open_debug_session

    ns, kubeconfigs = target
    with open_debug_session(KubeFlags(None, None, str(kubeconfigs["create"]), 30.0), "talker", say=None) as s:
        yield s


def test_spdy_capture_is_byte_identical_to_tcpdumps_own_copy(lab, spdy_session, tmp_path):
    from kubectl_whose.analysis.streams import CaptureAnalyzer
    from kubectl_whose.collect.capture import RemoteCapture, Tee
    from kubectl_whose.collect.tcpdump import CaptureRecipe

    assert spdy_session.transport == "SPDY/3.1"
    out = tmp_path / "spdy.pcap"
    script = 'echo "$$" >&2; tcpdump -U -w - "$@" | tee /tmp/whose-spdy.pcap'
    sink = Tee(str(out), CaptureAnalyzer())
    runner = RemoteCapture(spdy_session, CaptureRecipe("lo", count=40), sink, time.monotonic(),
                           argv=["sh", "-c", script, "sh", "-i", "lo", "-s", "0", "-c", "40"])
    runner.run(30)
    sink.close()
    assert runner.result.transport == "SPDY/3.1" and runner.result.exit_code == 0, runner.result
    remote = spdy_session.run(["sha256sum", "/tmp/whose-spdy.pcap"])
    assert remote.transport == "SPDY/3.1"
    assert hashlib.sha256(out.read_bytes()).hexdigest() == remote.stdout.split()[0].decode()
    frames = subprocess.run(["tshark", "-r", str(out), "-T", "fields", "-e", "frame.number"], capture_output=True,
                            text=True, check=True).stdout.split()
    assert len(frames) == 40


def test_spdy_exec_moves_megabytes_and_reports_exit_codes_and_missing_binaries(spdy_session):
    chunks = []
    r = spdy_session.stream(["sh", "-c", "head -c 3000000 /dev/urandom > /tmp/whose-big; sha256sum /tmp/whose-big >&2;"
                                         " cat /tmp/whose-big"], on_stdout=chunks.append)
    assert r.exit_code == 0 and r.error is None
    assert hashlib.sha256(b"".join(chunks)).hexdigest() == r.stderr.split()[0].decode()
    assert (spdy_session.run(["sh", "-c", "echo e >&2; exit 7"]).exit_code,
            spdy_session.run(["sh", "-c", "exit 7"]).stderr) == (7, b"")
    missing = spdy_session.run(["no-such-tool"])
    assert missing.exit_code == 127 and 'exec: "no-such-tool": executable file not found in $PATH' in missing.error


def tcpdumps(lab, ns):
    out = lab.pod_run("talker", ["ps", "-eo", "args"], namespace=ns).stdout
    return [ln for ln in out.splitlines() if "tcpdump" in ln and "ps -eo" not in ln]


def test_ctrl_c_over_spdy_stops_the_remote_tcpdump_and_keeps_the_data(lab, target, tmp_path):
    ns, kubeconfigs = target
    out = tmp_path / "int.pcap"
    cli = lab.popen_whose("capture", "talker", "-n", ns, "-i", "lo", "-w", str(out), "-o", "json",
                          kubeconfig=kubeconfigs["create"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err = b""
    while b"capture running" not in err:
        line = cli.stderr.readline()
        assert line, err.decode()
        err += line
    assert tcpdumps(lab, ns), "tcpdump runs in the pod while capturing"
    time.sleep(1.0)
    t = time.monotonic()
    cli.send_signal(signal.SIGINT)
    stdout, rest = cli.communicate(timeout=15)
    assert time.monotonic() - t < 3.0
    assert cli.returncode == ExitCode.INTERRUPTED, (err + rest).decode()
    assert not tcpdumps(lab, ns), (err + rest).decode()
    assert {m for m, _ in lab.exec_requests(ns, "talker")[-2:]} == {"POST"}  # the capture and the kill -INT
    frames = subprocess.run(["tshark", "-r", str(out), "-T", "fields", "-e", "frame.number"], capture_output=True,
                            text=True, check=True).stdout.split()
    assert len(frames) >= 5 and b"Traceback" not in rest


def test_a_spdy_stream_cut_mid_capture_keeps_the_data(lab, target, as_role, tmp_path):
    ns, _ = target
    out = tmp_path / "cut.pcap"
    with lab.exec_drop_after(3000):
        r = as_role("create", "capture", "talker", "-i", "lo", "--duration", "20", "-w", str(out))
    assert r.code == ExitCode.CONNECTION_LOST, r.stderr
    size = out.stat().st_size
    assert 24 < size <= 3000  # what crossed before the cut (tcpdump's stderr counts towards the 3000 too)
    assert one_line(r) == ("the API connection was lost while tcpdump ran in the debug container (the server closed "
                           f"the connection before the command ended); the {size} bytes captured so far are in {out}")


def test_spdy_through_the_kubeconfigs_http_proxy(lab, target, tmp_path):
    ns, kubeconfigs = target
    proxy = ConnectProxy()
    try:
        config = yaml.safe_load(open(kubeconfigs["create"]))
        for c in config["clusters"]:
            c["cluster"]["proxy-url"] = f"http://127.0.0.1:{proxy.port}"
        kc = tmp_path / "spdy-via-proxy.yaml"
        kc.write_text(yaml.safe_dump(config))
        r = lab.whose_as(kc, "capture", "talker", "-i", "lo", "--count", "2")
    finally:
        proxy.close()
    assert r.code == 0, r.stderr
    assert set(proxy.connects) == {lab.server.split("://", 1)[1]}
    assert lab.exec_requests(ns, "talker")[-1] == ("POST", 101)


def test_a_wrong_review_still_falls_back_like_kubectl_and_then_sticks(lab, target, as_role, monkeypatch):
    """When the reviews cannot tell, WebSocket goes first; its refused upgrade sends us to SPDY, which is then used
    for every later exec of the run (the capture's own, the kill, the owners and rules)."""
    import kubectl_whose.cluster.access as access

    ns, _ = target
    monkeypatch.setattr(access, "can_i", lambda *a, **k: None)
    before = len(lab.exec_requests(ns, "talker"))
    r = as_role("create", "capture", "talker", "-i", "lo", "-f", "icmp", "--count", "1")
    assert r.code == 0, r.stderr
    execs = lab.exec_requests(ns, "talker")[before:]
    assert execs[0] == ("GET", 403) and {e for e in execs[1:]} == {("POST", 101)}, execs
