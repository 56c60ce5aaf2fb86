"""The pure debug-container builder and the state rules around it, as tables (kubectl's TestGenerateDebugContainer).

Whether the API server accepts what is built is proved in the lab (tests/e2e/test_capture.py); here the shape is
pinned down field by field, because every field is a decision (root, capabilities, never privileged, the marker).
"""
import copy
import random

import pytest

from kubectl_whose.cluster.debug_container import (
    CAPABILITIES, MARKER_ENV, PTRACE, TTL_ENV, DebugSpec, build_debug_container, build_patch, check_container_start, check_pod_running,
    debug_containers, find_reusable, random_suffix)
from kubectl_whose.errors import ExitCode, WhoseError

IMG = "nicolaka/netshoot:v0.13"


def pod(**spec_extra):
    p = {"metadata": {"name": "web", "namespace": "default"},
         "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "nginx"},
                                                       {"name": "istio-proxy", "image": "proxyv2"}],
                  **spec_extra},
         "status": {"phase": "Running"}}
    return p


def expected(name="whose-abcde", ttl=600, target=None, caps=("NET_ADMIN", "NET_RAW")):
    c = {"name": name, "image": IMG, "command": ["sleep", str(ttl)],
         "env": [{"name": MARKER_ENV, "value": "1"}, {"name": TTL_ENV, "value": str(ttl)}],
         "terminationMessagePolicy": "File", "resources": {},
         "securityContext": {"capabilities": {"add": list(caps)}, "runAsUser": 0,
                             "runAsNonRoot": False}}
    if target:
        c["targetContainerName"] = target
    return c


@pytest.mark.parametrize("the_pod,spec,want", [
    (pod(), DebugSpec(IMG), expected()),
    (pod(), DebugSpec(IMG, target="app"), expected(target="app")),
    (pod(), DebugSpec(IMG, ttl_seconds=90), expected(ttl=90)),
    # pod-level runAsNonRoot/runAsUser would be inherited: the container says root explicitly (kubernetes#113006)
    (pod(securityContext={"runAsNonRoot": True, "runAsUser": 1000}), DebugSpec(IMG), expected()),
    (pod(initContainers=[{"name": "init", "image": "busybox"}]), DebugSpec(IMG, target="init"),
     expected(target="init")),
    # --ptrace: SYS_PTRACE on top, nothing else, still not privileged
    (pod(), DebugSpec(IMG, capabilities=CAPABILITIES + (PTRACE,)), expected(caps=("NET_ADMIN", "NET_RAW",
                                                                                  "SYS_PTRACE"))),
], ids=["plain", "target", "ttl", "pod-runAsNonRoot", "target-init-container", "ptrace"])
def test_build_debug_container(the_pod, spec, want):
    before = copy.deepcopy(the_pod)
    got = build_debug_container(the_pod, spec, "abcde")
    assert got == want
    assert the_pod == before, "the builder must not modify the pod"
    assert "privileged" not in got["securityContext"]


def test_patch_is_strategic_merge_with_only_the_new_container():
    c = expected()
    assert build_patch(c) == {"spec": {"ephemeralContainers": [c]}}


@pytest.mark.parametrize("target", ["nope", "whose-old"], ids=["unknown", "ephemeral-not-allowed"])
def test_unknown_target_is_not_found_with_choices(target):
    p = pod(ephemeralContainers=[{"name": "whose-old", "image": IMG}])
    with pytest.raises(WhoseError) as e:
        build_debug_container(p, DebugSpec(IMG, target=target), "abcde")
    assert e.value.code == ExitCode.NOT_FOUND
    assert e.value.message == f'container "{target}" not found in pod "web"; -c must name one of: app, istio-proxy'


def test_name_collision_asks_for_another_suffix():
    p = pod(ephemeralContainers=[{"name": "whose-abcde", "image": IMG}])
    with pytest.raises(ValueError):
        build_debug_container(p, DebugSpec(IMG), "abcde")


def test_random_suffix_is_a_dns_label_part():
    s = {random_suffix(random.Random(i)) for i in range(50)}
    assert len(s) == 50
    assert all(len(x) == 5 and x.isalnum() and x.islower() for x in s)


NOW = 1_700_000_000.0
STARTED = "2023-11-14T22:10:00Z"  # == NOW - 200 s


def with_debug(name, *, image=IMG, state=None, marker=True, caps=("NET_ADMIN", "NET_RAW"), target=None, ttl=600,
               privileged=False):
    c = build_debug_container(pod(), DebugSpec(image, target=target, ttl_seconds=ttl), name[len("whose-"):])
    if not marker:
        c["env"] = []
    c["securityContext"]["capabilities"]["add"] = list(caps)
    if privileged:
        c["securityContext"]["privileged"] = True
    status = {"name": name, "state": state if state is not None else {"running": {"startedAt": STARTED}}}
    return c, status


def pod_with(*entries):
    p = pod()
    p["spec"]["ephemeralContainers"] = [c for c, _ in entries]
    p["status"]["ephemeralContainerStatuses"] = [s for _, s in entries]
    return p


@pytest.mark.parametrize("entries,spec,min_left,want", [
    ([with_debug("whose-aaaaa")], DebugSpec(IMG), 60, "whose-aaaaa"),
    ([with_debug("whose-aaaaa", image="busybox")], DebugSpec(IMG), 60, None),
    ([with_debug("whose-aaaaa", state={"terminated": {"exitCode": 0, "reason": "Completed"}})], DebugSpec(IMG), 60,
     None),
    ([with_debug("whose-aaaaa", state={"waiting": {"reason": "ContainerCreating"}})], DebugSpec(IMG), 60, None),
    ([with_debug("whose-aaaaa", marker=False)], DebugSpec(IMG), 60, None),
    ([with_debug("whose-aaaaa", caps=("NET_ADMIN",))], DebugSpec(IMG), 60, None),
    ([with_debug("whose-aaaaa", privileged=True)], DebugSpec(IMG), 60, None),
    ([with_debug("whose-aaaaa")], DebugSpec(IMG), 401, None),  # 400 s of its 600 s left
    ([with_debug("whose-aaaaa")], DebugSpec(IMG, target="app"), 60, None),
    ([with_debug("whose-aaaaa", target="app")], DebugSpec(IMG), 60, "whose-aaaaa"),
    ([with_debug("whose-aaaaa", ttl=300), with_debug("whose-bbbbb", ttl=900)], DebugSpec(IMG), 60, "whose-bbbbb"),
    # a container with SYS_PTRACE is never reused for a run without it, nor one without it for --ptrace
    ([with_debug("whose-aaaaa", caps=("NET_ADMIN", "NET_RAW", "SYS_PTRACE"))], DebugSpec(IMG), 60, None),
    ([with_debug("whose-aaaaa")], DebugSpec(IMG, capabilities=CAPABILITIES + (PTRACE,)), 60, None),
    ([with_debug("whose-aaaaa"), with_debug("whose-bbbbb", caps=("NET_RAW", "SYS_PTRACE", "NET_ADMIN"))],
     DebugSpec(IMG, capabilities=CAPABILITIES + (PTRACE,)), 60, "whose-bbbbb"),
], ids=["same", "other-image", "terminated", "waiting", "not-ours", "other-caps", "privileged", "too-old",
        "target-wanted", "any-target-ok", "most-lifetime-left", "ptrace-not-for-plain", "plain-not-for-ptrace",
        "ptrace-for-ptrace"])
def test_find_reusable(entries, spec, min_left, want):
    found = find_reusable(pod_with(*entries), spec, NOW, min_left)
    assert (found.name if found else None) == want


def test_debug_containers_view_of_a_running_one():
    [v] = debug_containers(pod_with(with_debug("whose-aaaaa", target="app")))
    assert (v.name, v.image, v.target, v.state, v.ttl_seconds) == ("whose-aaaaa", IMG, "app", "running", 600)
    assert v.remaining(NOW) == pytest.approx(400)


@pytest.mark.parametrize("state,want", [
    ({"running": {"startedAt": STARTED}}, True),
    ({"waiting": {"reason": "ContainerCreating"}}, False),
    (None, False),
    ({"waiting": {"reason": "ErrImagePull", "message": "pull access denied for nope"}},
     (ExitCode.IMAGE_PULL, "the debug image nicolaka/netshoot:v0.13 cannot be pulled: ErrImagePull (pull access "
                           "denied for nope); the debug container whose-aaaaa stays in pod web, never started "
                           "(ephemeral containers cannot be removed); pass --image with an image the nodes can pull "
                           "(or set KUBECTL_WHOSE_IMAGE)")),
    ({"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "x"'}}, (ExitCode.IMAGE_PULL, None)),
    ({"waiting": {"reason": "CreateContainerConfigError", "message": "container has runAsNonRoot and image will run "
                  "as root"}},
     (ExitCode.POD_NOT_RUNNING, "the debug container whose-aaaaa cannot start: CreateContainerConfigError (container "
                                "has runAsNonRoot and image will run as root); `kubectl describe pod web` shows the "
                                "kubelet's events")),
    ({"terminated": {"exitCode": 0, "reason": "Completed"}},
     (ExitCode.POD_NOT_RUNNING, 'debug container whose-aaaaa in pod "web" exited (Completed) (exit code 0); run '
                                'again to add a fresh one')),
], ids=["running", "creating", "no-status-yet", "ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError",
        "terminated"])
def test_check_container_start(state, want):
    entry = with_debug("whose-aaaaa", state=state if state is not None else {})
    p = pod_with(entry)
    if state is None:
        p["status"]["ephemeralContainerStatuses"] = []
    if isinstance(want, bool):
        assert check_container_start(p, "whose-aaaaa", IMG) is want
        return
    with pytest.raises(WhoseError) as e:
        check_container_start(p, "whose-aaaaa", IMG)
    assert e.value.code == want[0]
    if want[1]:
        assert e.value.message == want[1]


@pytest.mark.parametrize("mutate,message", [
    (lambda p: p["status"].update(phase="Succeeded"),
     'pod "web" has finished (phase Succeeded); the kubelet starts no containers in a finished pod, pick a '
     'running one'),
    (lambda p: (p["status"].update(phase="Pending"), p["spec"].pop("nodeName")),
     'pod "web" is not scheduled on a node yet (phase Pending); wait until it runs'),
    (lambda p: p["status"].update(phase="Pending"), 'pod "web" is not running (phase Pending); wait until it runs'),
    (lambda p: p["metadata"].update(deletionTimestamp="2024-01-01T00:00:00Z"),
     'pod "web" is being deleted; pick a running pod'),
], ids=["succeeded", "unscheduled", "pending", "deleting"])
def test_pod_not_running(mutate, message):
    p = pod()
    mutate(p)
    with pytest.raises(WhoseError) as e:
        check_pod_running(p)
    assert (e.value.code, e.value.message) == (ExitCode.POD_NOT_RUNNING, message)


def test_running_pod_passes():
    check_pod_running(pod())
