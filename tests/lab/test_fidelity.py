"""Where the lab once differed from a real API server, each found by driving both with the same kubectl commands.
The judge is the real kubectl: its output and exit code, and the objects it leaves (or must not leave) behind.
"""
import datetime
import json
import re
import time

import pytest


def labels(lab, ns, pod):
    return lab.core_v1().read_namespaced_pod(pod, ns).metadata.labels or {}


@pytest.fixture
def pod_ns(lab):
    with lab.isolated_namespace(prefix="fd") as ns:
        lab.create_pod(ns, "p", image="busybox:1.36")
        yield ns


def test_server_dry_run_writes_nothing(lab, pod_ns):
    ns = pod_ns
    k = lab.kubectl("label", "pod", "p", "-n", ns, "dry=yes", "--dry-run=server")
    assert k.returncode == 0 and k.stdout.strip() == "pod/p labeled (server dry run)", k.stderr
    assert "dry" not in labels(lab, ns, "p")
    k = lab.kubectl("delete", "pod", "p", "-n", ns, "--dry-run=server")
    assert k.returncode == 0 and k.stdout.strip() == f'pod "p" deleted from {ns} namespace (server dry run)', k.stderr
    time.sleep(0.5)
    assert lab.core_v1().read_namespaced_pod("p", ns).metadata.deletion_timestamp is None
    k = lab.kubectl("delete", "namespace", ns, "--dry-run=server")
    assert k.returncode == 0 and k.stdout.strip() == f'namespace "{ns}" deleted (server dry run)', k.stderr
    assert lab.core_v1().read_namespace(ns).status.phase == "Active"
    # `kubectl create` would send protobuf, which the lab does not decode; apply sends JSON
    manifest = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"{ns}-x"}})
    k = lab.kubectl("apply", "-f", "-", "--dry-run=server", "--validate=false", input=manifest)  # no openapi
    assert k.returncode == 0 and k.stdout.strip() == f"namespace/{ns}-x created (server dry run)", k.stderr
    assert lab.kubectl("get", "namespace", f"{ns}-x").returncode != 0


def test_a_bad_dry_run_value_is_refused_before_any_write(lab, pod_ns):
    ns = pod_ns
    patch = {"spec": {"ephemeralContainers": [{"name": "e", "image": "busybox:1.36", "command": ["sleep", "9"]}]}}
    code, body, _ = lab.request("PATCH", f"/api/v1/namespaces/{ns}/pods/p/ephemeralcontainers?dryRun=Yes", patch,
                                "application/strategic-merge-patch+json")
    assert code == 400 and body["message"] == 'dryRun: Unsupported value: "Yes": supported values: "All"'
    assert not lab.core_v1().read_namespaced_pod("p", ns).spec.ephemeral_containers


def test_a_stale_resource_version_is_kubectls_conflict(lab, pod_ns):
    ns = pod_ns
    old = lab.core_v1().read_namespaced_pod("p", ns).metadata.resource_version
    assert lab.kubectl("label", "pod", "p", "-n", ns, "first=1").returncode == 0
    k = lab.kubectl("label", "pod", "p", "-n", ns, "second=2", f"--resource-version={old}")
    assert k.returncode != 0
    assert k.stderr.strip() == ('Error from server (Conflict): Operation cannot be fulfilled on pods "p": the object '
                                'has been modified; please apply your changes to the latest version and try again')
    assert "second" not in labels(lab, ns, "p")
    now = lab.core_v1().read_namespaced_pod("p", ns).metadata.resource_version
    assert lab.kubectl("label", "pod", "p", "-n", ns, "second=2", f"--resource-version={now}").returncode == 0


def test_chunked_lists_page_with_continue_as_kubectl_asks(lab):
    """`kubectl get --chunk-size=N` sends limit=N and follows `continue`; the pages add up to the whole list."""
    whole = lab.kubectl("get", "pods", "-A", "-o", "name", "--chunk-size=0")
    paged = lab.kubectl("get", "pods", "-A", "-o", "name", "--chunk-size=2", "-v=6")
    assert whole.returncode == 0 and paged.returncode == 0, paged.stderr
    assert paged.stdout == whole.stdout and len(whole.stdout.split()) > 4
    pages = re.findall(r'verb="GET" url="\S+/api/v1/pods\?[^"]*limit=2[^"]*"', paged.stderr)
    assert len(pages) == -(-len(whole.stdout.split()) // 2) and sum("continue=" in p for p in pages) == len(pages) - 1
    one = json.loads(lab.kubectl("get", "--raw", "/api/v1/pods?limit=1").stdout)
    assert len(one["items"]) == 1 and one["metadata"]["remainingItemCount"] == len(whole.stdout.split()) - 1
    assert one["metadata"]["continue"]


def test_a_watch_or_continue_from_before_a_compaction_is_410(lab, pod_ns):
    ns = pod_ns
    old = lab.core_v1().read_namespaced_pod("p", ns).metadata.resource_version
    first = json.loads(lab.kubectl("get", "--raw", "/api/v1/pods?limit=1").stdout)
    assert lab.kubectl("label", "pod", "p", "-n", ns, "after=1").returncode == 0
    code, _, _ = lab.request("POST", "/lab/v1/compact", {})
    assert code == 200
    k = lab.kubectl("get", "--raw", f"/api/v1/namespaces/{ns}/pods?watch=1&resourceVersion={old}&timeoutSeconds=2")
    event = json.loads(k.stdout.splitlines()[0])
    assert event["type"] == "ERROR" and event["object"]["code"] == 410 and event["object"]["reason"] == "Expired"
    assert event["object"]["message"].startswith(f"too old resource version: {old} (")
    k = lab.kubectl("get", "--raw", f"/api/v1/pods?limit=1&continue={first['metadata']['continue']}")
    assert k.returncode != 0 and "Error from server (Expired): The provided continue parameter is too old" in k.stderr


def test_an_unread_request_body_is_not_taken_for_the_next_request(lab, pod_ns):
    """kubectl delete sends DeleteOptions as a body; on a kept-alive connection the next request must still be
    read as sent (kubectl printed "Unsolicited response received on idle HTTP channel" before)."""
    ns = pod_ns
    for i in range(3):
        lab.create_pod(ns, f"q{i}", image="busybox:1.36", wait=False)
    k = lab.kubectl("delete", "pod", "q0", "q1", "q2", "-n", ns, "--wait=false")
    assert k.returncode == 0, k.stderr
    assert "Unsolicited response" not in k.stderr
    assert k.stdout.split("\n")[:3] == [f'pod "q{i}" deleted from {ns} namespace' for i in range(3)]


def test_logs_of_a_container_that_cannot_pull_say_what_the_kubelet_says(lab, pod_ns):
    """validateContainerLogStatus: ErrImagePull is "image can't be pulled", ImagePullBackOff "trying and failing
    to pull image"; kubectl logs prints the apiserver's words."""
    ns = pod_ns
    patch = {"spec": {"ephemeralContainers": [{"name": "pull", "image": "nope.invalid/x:1", "command": ["true"]}]}}
    code, _, _ = lab.request("PATCH", f"/api/v1/namespaces/{ns}/pods/p/ephemeralcontainers", patch,
                             "application/strategic-merge-patch+json")
    assert code == 200
    words = {"ErrImagePull": "image can't be pulled", "ImagePullBackOff": "trying and failing to pull image"}

    def reason():
        st = lab.core_v1().read_namespaced_pod("p", ns).status.ephemeral_container_statuses or []
        return next((s.state.waiting.reason for s in st if s.name == "pull" and s.state.waiting), None)

    seen = {}
    deadline = time.monotonic() + 20
    while len(seen) < 2 and time.monotonic() < deadline:
        before = reason()
        k = lab.kubectl("logs", "p", "-n", ns, "-c", "pull")
        if before in words and reason() == before:  # the state held across the read
            seen[before] = k.stderr.strip()
        time.sleep(0.1)
    assert seen == {r: f'Error from server (BadRequest): container "pull" in pod "p" is waiting to start: {w}'
                    for r, w in words.items()}


def test_logs_timestamps_prefix_each_line_with_the_time_it_was_written(lab, pod_ns):
    ns = pod_ns
    lab.create_pod(ns, "ticker", image="busybox:1.36", command=["sh", "-c", "for i in 1 2 3 4; do echo tick $i; "
                                                                "sleep 0.3; done; sleep 60"])
    time.sleep(1.5)
    plain = lab.kubectl("logs", "ticker", "-n", ns).stdout.splitlines()
    stamped = lab.kubectl("logs", "ticker", "-n", ns, "--timestamps").stdout.splitlines()
    assert plain == [f"tick {i}" for i in range(1, 5)]
    stamps = []
    for line, text in zip(stamped, plain):
        m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d{1,9})?Z (.*)", line)
        assert m and m.group(3) == text and not (m.group(2) or ".1").endswith("0"), line
        stamps.append(datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(
            tzinfo=datetime.timezone.utc).timestamp() + float(m.group(2) or 0))
    assert all(0.2 < b - a < 1.0 for a, b in zip(stamps, stamps[1:])), stamps  # 0.3 s apart, as they were written
    assert lab.kubectl("logs", "ticker", "-n", ns, "--timestamps", "--tail=1").stdout == stamped[-1] + "\n"


def test_attach_to_a_container_without_stdin_streams_its_output(lab, pod_ns):
    ns = pod_ns
    lab.create_pod(ns, "talker", image="busybox:1.36", command=["sh", "-c", "sleep 1; for i in 1 2 3 4 5; do "
                                                                "echo out $i; echo err $i >&2; sleep 0.2; done"])
    k = lab.kubectl("attach", "talker", "-n", ns, timeout=30)
    assert k.returncode == 0, k.stderr
    assert [ln for ln in k.stdout.splitlines() if ln.startswith("out ")][-1] == "out 5"
    assert "err 5" in k.stderr


def _pod_manifest(name, **extra_spec):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "60"]}],
                     **extra_spec}}


def test_unknown_fields_are_dropped_with_a_warning_or_refused_when_strict(lab, pod_ns):
    ns = pod_ns
    manifest = _pod_manifest("extra", bogusField=True)
    manifest["spec"]["containers"][0]["colour"] = "blue"
    k = lab.kubectl("apply", "-n", ns, "-f", "-", "--validate=false", input=json.dumps(manifest))
    assert k.returncode == 0, k.stderr
    spec = json.loads(lab.kubectl("get", "pod", "extra", "-n", ns, "-o", "json").stdout)["spec"]
    assert "bogusField" not in spec and "colour" not in spec["containers"][0]
    code, body, headers = lab.request("POST", f"/api/v1/namespaces/{ns}/pods",
                                      dict(_pod_manifest("warned"), unknownTop=1))
    assert code == 201 and headers.get_all("Warning") == ['299 - "unknown field \\"unknownTop\\""']
    code, body, _ = lab.request("POST", f"/api/v1/namespaces/{ns}/pods?fieldValidation=Strict",
                                _pod_manifest("strict", bogusField=True))
    assert code == 400 and body["message"] == ('Pod in version "v1" cannot be handled as a Pod: strict decoding '
                                               'error: unknown field "spec.bogusField"')
    assert lab.kubectl("get", "pod", "strict", "-n", ns).returncode != 0


def test_a_value_of_the_wrong_type_is_a_400_whatever_the_validation(lab, pod_ns):
    ns = pod_ns
    manifest = _pod_manifest("typed", hostNetwork="yes")
    k = lab.kubectl("apply", "-n", ns, "-f", "-", "--validate=false", input=json.dumps(manifest))
    assert k.returncode != 0
    assert k.stderr.strip().endswith('Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal string '
                                     'into Go struct field PodSpec.spec.hostNetwork of type bool'), k.stderr
