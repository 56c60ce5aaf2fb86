"""The lab API server's answers, byte for byte against the texts a real server sends (research/k8s-api-spec.md).

Each case states the request and the exact status/body a real kube-apiserver returns; the oracle is the spec's
captured texts, and the Python client / kubectl parse the same answers in test_lab_kubectl.py.
"""
import json
import threading
import time
import urllib.request

import pytest

SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
JSONPATCH = "application/json-patch+json"


def ec(name, **extra):
    c = {"name": name, "image": "busybox:1.36", "command": ["sleep", "30"], "resources": {},
         "terminationMessagePolicy": "File"}
    c.update(extra)
    return c


@pytest.fixture(scope="module")
def pod(lab):
    with lab.isolated_namespace(prefix="api") as ns:
        lab.create_pod(ns, "mypod", containers=[{"name": "app", "image": "busybox:1.36", "command": ["sleep", "600"]},
                                                {"name": "sidecar", "image": "busybox:1.36",
                                                 "command": ["sleep", "600"]}])
        yield ns


def sub(ns, name="mypod"):
    return f"/api/v1/namespaces/{ns}/pods/{name}/ephemeralcontainers"


def test_missing_pod_is_the_real_404(lab, pod):
    code, body, _ = lab.request("GET", f"/api/v1/namespaces/{pod}/pods/nope")
    assert (code, body) == (404, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                  "message": 'pods "nope" not found', "reason": "NotFound",
                                  "details": {"name": "nope", "kind": "pods"}, "code": 404})


def test_strategic_merge_adds_defaults_and_identical_resend_is_a_no_op(lab, pod):
    code, body, _ = lab.request("PATCH", sub(pod), {"spec": {"ephemeralContainers": [ec("dbg", targetContainerName="app")]}}, SMP)
    assert code == 200, body
    got = body["spec"]["ephemeralContainers"][0]
    assert got == {**ec("dbg", targetContainerName="app"), "terminationMessagePath": "/dev/termination-log",
                   "imagePullPolicy": "IfNotPresent"}
    code, again, _ = lab.request("PATCH", sub(pod), {"spec": {"ephemeralContainers": [ec("dbg", targetContainerName="app")]}}, SMP)
    assert code == 200 and again["metadata"]["generation"] == body["metadata"]["generation"]
    assert again["spec"] == body["spec"]
    # kubectl's second-container form: $setElementOrder + only the new item.
    code, body, _ = lab.request("PATCH", sub(pod), {"spec": {
        "$setElementOrder/ephemeralContainers": [{"name": "dbg"}, {"name": "dbg2"}],
        "ephemeralContainers": [ec("dbg2")]}}, SMP)
    assert code == 200, body
    assert [c["name"] for c in body["spec"]["ephemeralContainers"]] == ["dbg", "dbg2"]


def test_changing_or_removing_an_existing_ephemeral_container_is_422(lab, pod):
    lab.request("PATCH", sub(pod), {"spec": {"ephemeralContainers": [ec("keep")]}}, SMP)
    code, body, _ = lab.request("PATCH", sub(pod), {"spec": {"ephemeralContainers": [ec("other")]}}, MERGE)
    assert code == 422
    assert body["reason"] == "Invalid"
    assert 'spec.ephemeralContainers: Forbidden: existing ephemeral containers "keep" may not be removed\n' in body["message"]
    assert body["message"].startswith('Pod "mypod" is invalid: ')
    code, body, _ = lab.request("PATCH", sub(pod), {"spec": {"ephemeralContainers": [ec("keep", command=["sh"])]}},
                                SMP)
    assert code == 422
    assert 'spec.ephemeralContainers: Forbidden: existing ephemeral containers "keep" may not be changed\n' in body["message"]


@pytest.mark.parametrize("container, message, cause", [
    (ec("p1", ports=[{"containerPort": 80}]),
     'Pod "mypod" is invalid: spec.ephemeralContainers[{i}].ports: Forbidden: cannot be set for an Ephemeral Container',
     {"reason": "FieldValueForbidden", "message": "Forbidden: cannot be set for an Ephemeral Container",
      "field": "spec.ephemeralContainers[{i}].ports"}),
    (ec("app"), 'Pod "mypod" is invalid: spec.ephemeralContainers[{i}].name: Duplicate value: "app"',
     {"reason": "FieldValueDuplicate", "message": 'Duplicate value: "app"', "field": "spec.ephemeralContainers[{i}].name"}),
    (ec("t1", targetContainerName="nope"),
     'Pod "mypod" is invalid: spec.ephemeralContainers[{i}].targetContainerName: Not found: "nope"',
     {"reason": "FieldValueNotFound", "message": 'Not found: "nope"',
      "field": "spec.ephemeralContainers[{i}].targetContainerName"}),
    ({"name": "noimg", "resources": {}}, 'Pod "mypod" is invalid: spec.ephemeralContainers[{i}].image: Required value',
     {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.ephemeralContainers[{i}].image"}),
], ids=["ports", "duplicate-name", "bad-target", "no-image"])
def test_validation_errors_have_the_real_text(lab, pod, container, message, cause):
    code, cur, _ = lab.request("GET", sub(pod))
    i = len(cur["spec"].get("ephemeralContainers") or [])
    code, body, _ = lab.request("PATCH", sub(pod), {"spec": {"ephemeralContainers": [container]}}, SMP)
    assert code == 422
    assert body["message"] == message.format(i=i)
    assert body["details"]["causes"] == [{k: v.format(i=i) for k, v in cause.items()}]


def test_json_patch_needs_the_list_to_exist(lab):
    with lab.isolated_namespace(prefix="jp") as ns:
        lab.create_pod(ns, "fresh")
        op = [{"op": "add", "path": "/spec/ephemeralContainers/-", "value": ec("x")}]
        code, body, _ = lab.request("PATCH", sub(ns, "fresh"), op, JSONPATCH)
        assert (code, body["message"], body["details"]) == (
            422, "the server rejected our request due to an error in our request", {})
        op = [{"op": "add", "path": "/spec/ephemeralContainers", "value": [ec("x")]}]
        code, body, _ = lab.request("PATCH", sub(ns, "fresh"), op, JSONPATCH)
        assert code == 200 and body["spec"]["ephemeralContainers"][0]["name"] == "x"


def test_other_methods_types_and_versions(lab, pod):
    code, body, _ = lab.request("PATCH", sub(pod), b"{}", "text/plain")
    assert (code, body["message"], body["reason"]) == (415, "415: Unsupported Media Type", "UnsupportedMediaType")
    code, body, _ = lab.request("POST", sub(pod), {})
    assert (code, body["reason"], body["message"]) == (
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    code, cur, _ = lab.request("GET", sub(pod))
    stale = dict(cur, metadata=dict(cur["metadata"], resourceVersion="1"))
    code, body, _ = lab.request("PUT", sub(pod), stale)
    assert code == 409
    assert body["message"] == ('Operation cannot be fulfilled on pods "mypod": the object has been modified; please '
                               'apply your changes to the latest version and try again')
    # current resourceVersion, nothing changed: accepted. The lab's kubelet may move the new pod's status
    # (a new resourceVersion) between our GET and PUT, so a 409 counts only if the version had not moved.
    for _ in range(20):
        code, body, _ = lab.request("PUT", sub(pod), cur)
        if code == 200:
            break
        _, now, _ = lab.request("GET", sub(pod))
        assert code == 409 and now["metadata"]["resourceVersion"] != cur["metadata"]["resourceVersion"], body
        cur = now
        time.sleep(0.1)
    assert code == 200


def test_old_server_answers_404_with_empty_details_and_hides_the_subresource(lab, pod):
    with lab.old_server():
        code, body, _ = lab.request("PATCH", sub(pod), {"spec": {"ephemeralContainers": [ec("o")]}}, SMP)
        _, disc, _ = lab.request("GET", "/api/v1")
    assert (code, body["message"], body["details"]) == (404, "the server could not find the requested resource", {})
    assert "pods/ephemeralcontainers" not in {r["name"] for r in disc["resources"]}
    _, disc, _ = lab.request("GET", "/api/v1")
    assert "pods/ephemeralcontainers" in {r["name"] for r in disc["resources"]}


def test_unauthenticated_requests_get_401(lab):
    code, body, _ = lab.request("GET", "/api/v1/namespaces/default/pods", token="nobody.123")
    assert (code, body) == (401, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                  "message": "Unauthorized", "reason": "Unauthorized", "code": 401})


def test_rbac_403_and_self_subject_access_review(lab):
    jane = lab.token_for("jane")
    code, body, _ = lab.request("PATCH", "/api/v1/namespaces/default/pods/client/ephemeralcontainers",
                                {"spec": {"ephemeralContainers": [ec("j")]}}, SMP, token=jane)
    assert (code, body["message"], body["details"]) == (
        403, 'pods "client" is forbidden: User "jane" cannot patch resource "pods/ephemeralcontainers" in API '
             'group "" in the namespace "default"', {"name": "client", "kind": "pods"})
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": {"namespace": "default", "verb": "patch", "resource": "pods",
                                              "subresource": "ephemeralcontainers"}}}
    for user, allowed in (("jane", False), ("debugger", True), ("viewer", False)):
        code, body, _ = lab.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review,
                                    token=lab.token_for(user))
        assert code == 201 and body["status"]["allowed"] is allowed, (user, body)
        assert body["kind"] == "SelfSubjectAccessReview"
    with lab.rbac_policy({"users": [{"name": "jane", "rules": [{"namespaces": ["default"],
                                                                  "resources": ["pods/ephemeralcontainers"],
                                                                  "verbs": ["patch"]}]}]}):
        code, body, _ = lab.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review,
                                    token=jane)
        assert body["status"]["allowed"] is True
    code, body, _ = lab.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review, token=jane)
    assert body["status"]["allowed"] is False


def test_podsecurity_warn_label_becomes_a_warning_header(lab):
    with lab.isolated_namespace(labels={"pod-security.kubernetes.io/warn": "baseline"}, prefix="warn") as ns:
        lab.create_pod(ns, "w")
        code, body, headers = lab.request("PATCH", sub(ns, "w"), {"spec": {"ephemeralContainers": [
            ec("n", securityContext={"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}})]}}, SMP)
    assert code == 200
    assert headers.get_all("Warning") == [
        '299 - "would violate PodSecurity \\"baseline:latest\\": non-default capabilities (container \\"n\\" must '
        'not include \\"NET_ADMIN\\", \\"NET_RAW\\" in securityContext.capabilities.add)"']


def test_watch_from_the_list_resource_version_sees_the_ephemeral_container_start(lab, pod):
    """kubectl's waitForContainer: list with fieldSelector, then watch from the list's resourceVersion."""
    code, lst, _ = lab.request("GET", f"/api/v1/namespaces/{pod}/pods?fieldSelector=metadata.name%3Dmypod&limit=500")
    rv = lst["metadata"]["resourceVersion"]
    assert [p["metadata"]["name"] for p in lst["items"]] == ["mypod"]
    events = []

    def watch():
        req = urllib.request.Request(
            f"{lab.server}/api/v1/namespaces/{pod}/pods?fieldSelector=metadata.name%3Dmypod&resourceVersion={rv}"
            "&timeoutSeconds=5&watch=true", headers={"Authorization": f"Bearer {lab.token_for('admin')}"})
        with urllib.request.urlopen(req, context=lab._ssl, timeout=10) as r:
            for line in r:
                ev = json.loads(line)
                events.append(ev)
                sts = ev["object"].get("status", {}).get("ephemeralContainerStatuses") or []
                if any(s["name"] == "watched" and "running" in s["state"] for s in sts):
                    return
    t = threading.Thread(target=watch)
    t.start()
    time.sleep(0.2)
    lab.request("PATCH", sub(pod), {"spec": {"ephemeralContainers": [ec("watched")]}}, SMP)
    t.join(10)
    states = [next((list(s["state"])[0] for s in e["object"]["status"].get("ephemeralContainerStatuses") or []
                    if s["name"] == "watched"), None) for e in events]
    assert {e["type"] for e in events} == {"MODIFIED"}
    assert states[0] is None and "waiting" in states and states[-1] == "running", states


def test_exec_errors_before_the_upgrade(lab, pod):
    base = f"/api/v1/namespaces/{pod}/pods/mypod/exec?command=true&stdout=true"
    code, body, _ = lab.request("GET", base + "&container=app")
    assert (code, body["message"]) == (400, "Upgrade request required")
    ws = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
          "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "v5.channel.k8s.io"}
    code, body, _ = lab.request("GET", base + "&container=nope", headers=ws)
    assert (code, body["message"]) == (400, "container nope is not valid for pod mypod")
    code, body, _ = lab.request("GET", base, headers=ws)
    assert (code, body["message"]) == (400, "a container name must be specified for pod mypod, choose one of: "
                                             "[app sidecar] or one of the ephemeral containers: "
                                             + "[" + " ".join(c["name"] for c in lab.request("GET", sub(pod))[1]["spec"]["ephemeralContainers"]) + "]")
    code, body, _ = lab.request("GET", base + "&container=app", headers=dict(ws, **{"Sec-WebSocket-Protocol": "v9"}))
    assert (code, body) == (403, b"")


def test_static_pods_refuse_ephemeral_containers(lab):
    with lab.isolated_namespace(prefix="mirror") as ns:
        lab._ok("POST", f"/api/v1/namespaces/{ns}/pods", {"metadata": {"name": "static", "annotations": {
            "kubernetes.io/config.mirror": "abc"}}, "spec": {"containers": [
                {"name": "c", "image": "busybox:1.36", "command": ["sleep", "60"]}]}})
        code, body, _ = lab.request("PATCH", sub(ns, "static"), {"spec": {"ephemeralContainers": [ec("d")]}}, SMP)
    assert (code, body["message"]) == (422, 'Pod "static" is invalid: : Forbidden: static pods do not support '
                                            'ephemeral containers')


def test_dry_run_admits_but_stores_nothing(lab, pod):
    code, before, _ = lab.request("GET", sub(pod))
    code, body, _ = lab.request("PATCH", sub(pod) + "?dryRun=All", {"spec": {"ephemeralContainers": [ec("dry")]}}, SMP)
    assert code == 200 and "dry" in [c["name"] for c in body["spec"]["ephemeralContainers"]]
    code, after, _ = lab.request("GET", sub(pod))
    assert "dry" not in [c["name"] for c in after["spec"].get("ephemeralContainers") or []]
    assert after["spec"] == before["spec"]


def test_logs_of_a_container_that_never_started(lab, pod):
    lab.request("PATCH", sub(pod), {"spec": {"ephemeralContainers": [dict(ec("pull"), image="nope.invalid/x:1")]}},
                SMP)
    lab.wait_pod(pod, "mypod", lambda p: any(s["name"] == "pull" and "waiting" in s["state"] and
                                              s["state"]["waiting"]["reason"] in ("ErrImagePull", "ImagePullBackOff")
                                              for s in p["status"].get("ephemeralContainerStatuses") or []))
    code, body, _ = lab.request("GET", f"/api/v1/namespaces/{pod}/pods/mypod/log?container=pull")
    assert code == 400
    assert body["message"] in ('container "pull" in pod "mypod" is waiting to start: trying and failing to pull image',
                               'container "pull" in pod "mypod" is waiting to start: image can\'t be pulled')
