"""Bring-up and tear-down of the lab itself: idempotent, nothing left behind, and a killed lab is swept.

Oracles: `ip netns list`, `ip netns pids`, /proc — the kernel's view, not the lab's bookkeeping.
"""
import os
import re
import signal
import subprocess
import time


from tests.lab.fixture import LabProcess, requires_lab
from tests.lab.network import sweep_stale
from tests.helpers.paths import REPO

pytestmark = requires_lab

MINI = """
node: {name: mini-node, podCIDR: 10.244.0.0/24, clusterCIDR: 10.244.0.0/16, serviceCIDR: 10.96.0.0/16,
       proxyBackend: legacy}
pods:
  - name: solo
    ip: 10.244.0.50
    labels: {app: solo}
    containers:
      - {name: main, image: "busybox:1.36", command: [sleep, "3600"]}
services:
  - name: solo
    clusterIP: 10.96.0.50
    ports: [{name: http, port: 80, targetPort: 8080, protocol: TCP}]
    selector: {app: solo}
"""


def namespaces_with(prefix):
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [ln.split()[0] for ln in out.splitlines() if ln.startswith(prefix)]


def test_clean_stop_leaves_nothing_behind(tmp_path):
    topo = tmp_path / "mini.yaml"
    topo.write_text(MINI)
    lab = LabProcess(tmp_path / "state", topology=topo, tls=False)
    prefix = lab.state["prefix"]
    netns = namespaces_with(prefix)
    assert sorted(netns) == [prefix + "fabric", prefix + "node", prefix + "solo"]
    pids = subprocess.run(["ip", "netns", "pids", prefix + "solo"], capture_output=True, text=True).stdout.split()
    assert len(pids) >= 2  # the pod's PID 1 and its container
    assert lab.state["bringup_seconds"]["total"] < 20
    lab.stop()
    assert lab.proc.returncode == 0
    assert namespaces_with(prefix) == []
    assert not any(os.path.exists(f"/proc/{p}") for p in pids)
    assert not (tmp_path / "state" / "state.json").exists()


def test_a_killed_lab_is_swept_by_the_next_one(tmp_path):
    topo = tmp_path / "mini.yaml"
    topo.write_text(MINI)
    lab = LabProcess(tmp_path / "state", topology=topo, tls=False)
    prefix = lab.state["prefix"]
    pids = subprocess.run(["ip", "netns", "pids", prefix + "solo"], capture_output=True, text=True).stdout.split()
    os.kill(lab.proc.pid, signal.SIGKILL)
    lab.proc.wait()
    # The kill left the namespaces and the pod's processes behind, as a crashed run would.
    assert sorted(namespaces_with(prefix)) == [prefix + "fabric", prefix + "node", prefix + "solo"]
    assert all(os.path.exists(f"/proc/{p}") for p in pids)
    removed = sweep_stale()
    assert sorted(removed) == [prefix + "fabric", prefix + "node", prefix + "solo"]
    assert namespaces_with(prefix) == []
    deadline = time.monotonic() + 5
    while any(os.path.exists(f"/proc/{p}") for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(os.path.exists(f"/proc/{p}") for p in pids)


def test_lab_sh_up_is_idempotent_and_down_cleans(tmp_path):
    env = dict(os.environ, LAB_STATE_DIR=str(tmp_path / "shlab"))
    script = str(REPO / "scripts" / "lab.sh")
    first = subprocess.run(["bash", script, "up", "--no-tls", "--topology", str(_mini(tmp_path))], env=env,
                           capture_output=True, text=True, timeout=90)
    assert first.returncode == 0, first.stderr
    assert f"kubeconfig: {tmp_path}/shlab/kubeconfig" in first.stdout
    pid = int((tmp_path / "shlab" / "lab.pid").read_text())
    second = subprocess.run(["bash", script, "up"], env=env, capture_output=True, text=True, timeout=30)
    assert second.returncode == 0 and "already running" in second.stderr
    assert int((tmp_path / "shlab" / "lab.pid").read_text()) == pid
    status = subprocess.run(["bash", script, "status"], env=env, capture_output=True, text=True)
    assert "solo" in status.stdout and "10.244.0.50" in status.stdout
    down = subprocess.run(["bash", script, "down"], env=env, capture_output=True, text=True, timeout=60)
    assert down.returncode == 0
    assert not os.path.exists(f"/proc/{pid}")
    assert namespaces_with(f"kwL{pid % 100000}-") == []
    assert subprocess.run(["bash", script, "status"], env=env, capture_output=True).returncode == 3


def _mini(tmp_path):
    p = tmp_path / "mini-sh.yaml"
    p.write_text(MINI)
    return p


def test_a_lab_whose_test_session_was_killed_tears_itself_down(tmp_path):
    """pytest killed with SIGKILL: the lab follows its parent and removes everything (no orphan lab)."""
    topo = _mini(tmp_path)
    script = ("import sys, time; from pathlib import Path; from tests.lab.fixture import LabProcess; "
              "lab = LabProcess(Path(sys.argv[1]), topology=Path(sys.argv[2]), tls=False); "
              "print(lab.state['prefix'], lab.proc.pid, flush=True); time.sleep(600)")
    fake_session = subprocess.Popen(["python3", "-c", script, str(tmp_path / "st"), str(topo)],
                                    cwd=str(REPO), stdout=subprocess.PIPE, text=True)
    prefix, lab_pid = fake_session.stdout.readline().split()
    assert namespaces_with(prefix)
    fake_session.kill()
    fake_session.wait()
    deadline = time.monotonic() + 20
    while (os.path.exists(f"/proc/{lab_pid}") or namespaces_with(prefix)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert namespaces_with(prefix) == []
    assert not os.path.exists(f"/proc/{lab_pid}") or open(f"/proc/{lab_pid}/stat").read().split()[2] == "Z"


def test_an_exec_stream_outlives_the_servers_graceful_shutdown(tmp_path):
    """SIGTERM: the lab stops accepting, as kube-apiserver does, but an exec already streaming runs to its end;
    then the lab tears down and leaves nothing. The judge is the real kubectl's exec."""
    topo = tmp_path / "mini.yaml"
    topo.write_text(MINI)
    lab = LabProcess(tmp_path / "state", topology=topo)  # TLS: kubectl sends no token over plain HTTP
    prefix, kc = lab.state["prefix"], lab.state["kubeconfig"]
    exec_ = subprocess.Popen(["kubectl", "--kubeconfig", kc, "exec", "solo", "--", "sh", "-c",
                              "echo started; sleep 2; echo survived"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    first = exec_.stdout.readline()
    assert first == "started\n", exec_.stderr.read()
    os.kill(lab.proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while True:  # no new requests once shutting down, while the exec still streams
        late = subprocess.run(["kubectl", "--kubeconfig", kc, "get", "pods", "--request-timeout=5s"],
                              capture_output=True, text=True)
        if late.returncode != 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert re.search(r"was refused|connection refused", late.stderr) and exec_.poll() is None, late.stderr
    rest, err = exec_.communicate(timeout=30)
    assert (exec_.returncode, rest) == (0, "survived\n"), err
    lab.proc.wait(30)
    assert lab.proc.returncode == 0
    assert namespaces_with(prefix) == []
