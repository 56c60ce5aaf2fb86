"""Runs that start at once, and what the API server says on the side: the lab's real conflict semantics, judged by
real kubectl first, then the plugin against them.

Oracles: the pod's spec as the API server stores it (how many debug containers), the exit code of every run, and
real kubectl's own output (a stale resourceVersion in a patch is kubectl's Conflict; a PodSecurity `warn` is the
`Warning:` line kubectl prints).
"""
import json
import re
import subprocess

from kubectl_whose.cluster.debug_container import NAME_PREFIX
from tests.helpers.netns import requires_tools

pytestmark = requires_tools("tcpdump")

RUNS = 4


def debug_names(lab, ns, pod):
    spec = lab.core_v1().read_namespaced_pod(pod, ns).spec
    return [c.name for c in spec.ephemeral_containers or [] if c.name.startswith(NAME_PREFIX)]


def test_a_stale_resource_version_in_a_patch_is_kubectls_conflict(lab):
    """The patcher's optimistic lock: a resourceVersion inside the patch is a precondition; without one, the
    server applies each patch to the newest object (no write is lost)."""
    with lab.isolated_namespace() as ns:
        lab.create_pod(ns, "p", image="busybox:1.36")
        rv = lab.core_v1().read_namespaced_pod("p", ns).metadata.resource_version
        first = {"spec": {"ephemeralContainers": [{"name": "one", "image": "busybox:1.36", "command": ["sleep", "9"]}]}}
        k = lab.kubectl("patch", "pod", "p", "-n", ns, "--subresource=ephemeralcontainers", "--type=strategic",
                        "-p", json.dumps(first))
        assert k.returncode == 0, k.stderr
        stale = {"metadata": {"resourceVersion": rv},
                 "spec": {"ephemeralContainers": [{"name": "two", "image": "busybox:1.36", "command": ["sleep", "9"]}]}}
        k = lab.kubectl("patch", "pod", "p", "-n", ns, "--subresource=ephemeralcontainers", "--type=strategic",
                        "-p", json.dumps(stale))
        assert k.returncode != 0
        assert k.stderr.strip() == ('Error from server (Conflict): Operation cannot be fulfilled on pods "p": the '
                                    'object has been modified; please apply your changes to the latest version and '
                                    'try again')
        spec = lab.core_v1().read_namespaced_pod("p", ns).spec
        assert [c.name for c in spec.ephemeral_containers] == ["one"]


def test_runs_started_together_all_succeed_and_leave_one_debug_container(lab):
    """Four captures of one pod at once: each reads the pod, one adds the container, the others' conditional
    adds are conflicts, and they wait for that container instead of adding their own."""
    with lab.isolated_namespace() as ns:
        lab.create_pod(ns, "shared", image="busybox:1.36")
        runs = [lab.popen_whose("capture", "shared", "-n", ns, "-i", "lo", "--duration", "2s", "-o", "json",
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(RUNS)]
        results = [(p.wait(timeout=120), *p.communicate()) for p in runs]
        for code, out, err in results:
            assert code == 0, err
            assert "Traceback" not in err
            json.loads(out)
        names = debug_names(lab, ns, "shared")
        assert len(names) == 1, names
        added = [err for _, _, err in results if "added debug container" in err]
        assert len(added) == 1, [err for _, _, err in results]
        assert all(names[0] in err for _, _, err in results)


def test_podsecurity_warn_is_shown_as_kubectl_shows_it(lab):
    """A namespace that warns (not enforces) at baseline: the API server answers with a `Warning:` header, which
    kubectl prints on stderr. The plugin prints the very same line, and still captures."""
    with lab.isolated_namespace({"pod-security.kubernetes.io/warn": "baseline"}) as ns:
        lab.create_pod(ns, "by-kubectl", image="busybox:1.36")
        lab.create_pod(ns, "warned", image="busybox:1.36")  # its own pod: PodSecurity judges every container in it
        k = lab.kubectl("debug", "by-kubectl", "-n", ns, "--image=busybox:1.36", "--profile=netadmin",
                        "--container=kdebug", "--", "sleep", "5")
        assert k.returncode == 0, k.stderr
        kubectl_says = [ln for ln in k.stderr.splitlines() if ln.startswith("Warning: ")]
        assert len(kubectl_says) == 1, k.stderr
        r = lab.whose("capture", "warned", "-n", ns, "-i", "lo", "--duration", "1s")
        assert r.code == 0, r.stderr
        ours = [ln for ln in r.stderr.splitlines() if ln.startswith("Warning: ")]
        name = debug_names(lab, ns, "warned")[0]
        assert ours == [re.sub(r'container "kdebug"', f'container "{name}"', kubectl_says[0])]
