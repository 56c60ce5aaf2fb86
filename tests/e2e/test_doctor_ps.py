"""`kubectl whose doctor` and `kubectl whose ps` against the lab's real API server.

The oracle for each doctor row is what actually happens: a pod where doctor passes gets a capture; where it fails
RBAC/PodSecurity/old-server, the real capture fails with the same exit code."""
import json
import re

import pytest

from kubectl_whose.errors import ExitCode

POD = "app-sidecar"




def rows(r):
    return {c["name"]: c for c in r.json["checks"]}


def test_doctor_all_pass_on_a_healthy_pod(lab):
    r = lab.whose("doctor", POD, "-o", "json")
    assert r.code == 0, r.stderr
    assert r.json["ok"] is True
    got = rows(r)
    assert list(got) == ["kubeconfig", "ephemeral containers", "server version", "RBAC get pods",
                         "RBAC patch pods/ephemeralcontainers", "exec transport", "pod running", "PodSecurity",
                         "dry run", "debug container", "debug image"]
    # whether the node already holds the image depends on what ran there before: its own test is below
    assert all(c["result"] == "pass" for n, c in got.items() if n != "debug image"), got
    assert r.json["path"]["result"] == "pass" and "ephemeral debug container" in r.json["path"]["detail"]
    # the oracle: what doctor promised works, and the container it then names is the one the next run reuses
    first = lab.whose("capture", POD, "-i", "lo", "--count", "1")
    assert first.code == 0
    name = re.search(r"capture running in (whose-\w+)", first.stderr).group(1)
    again = rows(lab.whose("doctor", POD, "-o", "json"))["debug container"]
    assert again["detail"].startswith(f"{name} runs and will be reused (")


def test_doctor_table_in_a_pipe(lab):
    r = lab.whose("doctor", POD)
    assert r.code == 0
    assert "RBAC patch pods/ephemeralcontainers" in r.stdout and "pass" in r.stdout


def test_doctor_rbac_failure_prints_the_role_and_matches_capture(lab):
    kc = lab.kubeconfig_for("jane")
    r = lab.whose_as(kc, "doctor", POD, "-o", "json")
    assert r.code == ExitCode.FORBIDDEN
    row = rows(r)["RBAC patch pods/ephemeralcontainers"]
    assert row["result"] == "fail"
    assert row["fix"] == ("kubectl create role kubectl-whose -n default --verb=get,patch "
                          "--resource=pods/ephemeralcontainers")
    assert "the built-in edit/admin roles lack it" in row["detail"]
    assert rows(r)["exec transport"]["result"] == "pass"
    assert rows(r)["dry run"]["result"] == "fail"
    assert r.stderr.strip().startswith("kubectl-whose: error: 2 of 11 checks failed (RBAC patch "
                                       "pods/ephemeralcontainers, dry run)")
    # the oracle: capture really is forbidden where no debug container exists yet
    with lab.isolated_namespace() as ns:
        lab.create_pod(ns, "fresh", image="busybox:1.36")
        assert lab.whose_as(kc, "capture", "fresh", "-n", ns, "--count", "1").code == ExitCode.FORBIDDEN


@pytest.mark.parametrize("level", ["baseline", "restricted"])
def test_doctor_podsecurity(lab, level):
    with lab.isolated_namespace(labels={"pod-security.kubernetes.io/enforce": level}) as ns:
        lab.create_pod(ns, "p", image="busybox:1.36")
        r = lab.whose("doctor", "p", "-n", ns, "-o", "json")
        got = rows(r)
        assert r.code == ExitCode.ADMISSION_REJECTED
        assert got["PodSecurity"]["result"] == "fail"
        assert got["PodSecurity"]["detail"] == (f'namespace {ns} enforces "{level}", which forbids adding NET_ADMIN '
                                                f"and NET_RAW")
        assert got["dry run"]["result"] == "fail"
        assert f'violates PodSecurity \\"{level}:latest\\"' in r.stdout or \
            f'violates PodSecurity "{level}:latest"' in got["dry run"]["detail"]
        # nothing was added by the dry run
        assert not lab.core_v1().read_namespaced_pod("p", ns).spec.ephemeral_containers


def test_doctor_old_server(lab):
    with lab.old_server():
        r = lab.whose("doctor", "client", "-o", "json")
    got = rows(r)
    assert r.code == ExitCode.UNSUPPORTED_SERVER
    assert got["ephemeral containers"]["result"] == "fail"
    assert got["dry run"]["result"] == "fail"


def test_doctor_missing_pod(lab):
    r = lab.whose("doctor", "nope", "-o", "json")
    assert r.code == ExitCode.NOT_FOUND
    assert rows(r)["pod running"]["detail"] == ('pod "nope" not found in namespace "default" '
                                                '(server: pods "nope" not found)')
    assert rows(r)["dry run"]["result"] == "skip"


def test_ps_lists_our_debug_container_as_reusable(lab):
    assert lab.whose("capture", POD, "-i", "lo", "--count", "1").code == 0
    r = lab.whose("ps", POD, "-o", "json")
    assert r.code == 0
    spec_names = [c.name for c in lab.core_v1().read_namespaced_pod(POD, "default").spec.ephemeral_containers]
    listed = r.json["containers"]
    assert [c["name"] for c in listed] == [n for n in spec_names if n.startswith("whose-")]
    reusable = [c for c in listed if c["reusable"]]
    assert reusable and reusable[0]["state"] == "running"
    assert reusable[0]["capabilities"] == ["NET_ADMIN", "NET_RAW"]
    table = lab.whose("ps", POD)
    assert reusable[0]["name"] in table.stdout and "yes" in table.stdout


def test_ps_on_a_pod_without_debug_containers(lab):
    with lab.isolated_namespace() as ns:
        lab.create_pod(ns, "fresh", image="busybox:1.36")
        r = lab.whose("ps", "fresh", "-n", ns)
        assert lab.whose("ps", "fresh", "-n", ns, "-o", "json").json["containers"] == []
    assert r.code == 0
    assert r.stderr.strip() == f"kubectl-whose: no kubectl-whose debug containers in pod fresh (namespace {ns})"


def test_exec_credential_plugin_kubeconfig_works(lab, tmp_path):
    """Credentials from an `exec` plugin (EKS/GKE style) go through the kubernetes client's own loader."""
    import json
    import stat

    import yaml

    config = yaml.safe_load(lab.kubeconfig.read_text())
    token = config["users"][0]["user"].pop("token")
    plugin = tmp_path / "cred-plugin"
    plugin.write_text("#!/bin/sh\necho '" + json.dumps({"apiVersion": "client.authentication.k8s.io/v1",
                                                          "kind": "ExecCredential", "status": {"token": token}})
                      + "'\n")
    plugin.chmod(plugin.stat().st_mode | stat.S_IEXEC)
    config["users"][0]["user"]["exec"] = {"apiVersion": "client.authentication.k8s.io/v1", "command": str(plugin),
                                          "interactiveMode": "Never"}
    kc = tmp_path / "exec-plugin.yaml"
    kc.write_text(yaml.safe_dump(config))
    assert lab.whose("capture", POD, "-i", "lo", "--count", "1").code == 0
    r = lab.whose_as(kc, "ps", POD, "-o", "json")
    assert r.code == 0, r.stderr
    assert r.json["containers"]
    assert lab.whose_as(kc, "capture", POD, "-i", "lo", "--count", "1").code == 0


def test_doctor_says_whether_the_node_already_holds_the_debug_image(lab):
    """A pull that fails leaves a container that never starts and can never be removed, and no dry run tells in
    advance: doctor reads the node's `status.images`, which the kubelet fills with what it pulled."""
    with lab.isolated_namespace(prefix="di") as ns:
        lab.create_pod(ns, "p", image="busybox:1.36")
        held = lab.whose("doctor", "p", "-n", ns, "--image", "busybox:1.36", "-o", "json")
        missing = lab.whose("doctor", "p", "-n", ns, "--image", "registry.invalid/nope:1", "-o", "json")
    node = held.json["checks"][-1]
    assert (node["name"], node["result"]) == ("debug image", "pass")
    assert node["detail"] == "node lab-node already holds busybox:1.36: nothing to pull"
    row = {c["name"]: c for c in missing.json["checks"]}["debug image"]
    assert row["result"] == "warn" and row["detail"].startswith("node lab-node does not hold registry.invalid/nope:1")
    assert "stays in the pod, never started (ephemeral containers cannot be removed)" in row["detail"]
    nodes = json.loads(lab.kubectl("get", "node", "lab-node", "-o", "json").stdout)
    assert any("docker.io/library/busybox:1.36" in i["names"] for i in nodes["status"]["images"])
