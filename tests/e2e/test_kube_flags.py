"""kubectl's habits against the lab: global flags before the subcommand, -v levels, --request-timeout=0."""
from __future__ import annotations

import re

from kubectl_whose.errors import ExitCode


def test_global_flags_before_the_subcommand(lab):
    """`kubectl whose -n NS ps POD` and `--context C --kubeconfig K rules POD` (both exited 2 before)."""
    with lab.isolated_namespace() as ns:
        lab.create_pod(ns, "p")
        r = lab.whose("-n", ns, "ps", "p")
        assert r.code == 0 and r.stderr == f"kubectl-whose: no kubectl-whose debug containers in pod p " \
                                           f"(namespace {ns})\n"
    context = lab.kubectl("config", "current-context").stdout.strip()
    r = lab.whose("--context", context, "--kubeconfig", str(lab.kubeconfig), "rules", "client", "-o", "json")
    assert r.code == 0, r.stderr
    r = lab.whose("--context", "nope", "rules", "client")
    assert r.code == ExitCode.CONFIG and "context 'nope' (--context) not found" in r.stderr


def test_v6_names_each_api_request_with_its_status_as_kubectl_does(lab):
    """The oracle: real kubectl -v=6 on the same GET logs the same URL and status."""
    ours = lab.whose("-v=6", "ps", "client")
    assert ours.code == 0, ours.stderr
    theirs = lab.kubectl("-v=6", "get", "pod", "client").stderr
    m = re.search(r'"Response" verb="GET" url="([^"]+/pods/client)" status="([^"]+)"', theirs)
    assert m, theirs
    url, status = m.group(1).split("?")[0], m.group(2)
    assert re.search(rf"^kubectl-whose: GET {re.escape(url)} {status} in \d+ milliseconds$", ours.stderr, re.M), \
        ours.stderr
    assert lab.whose("ps", "client").stderr.count("GET ") == 0  # silent at the default level


def test_v1_names_the_debug_container_and_the_exec_transport(lab):
    first = lab.whose("-v=1", "net", "client", "-o", "json")
    assert first.code == 0, first.stderr
    again = lab.whose("net", "client", "-o", "json", "--v=1")
    m = re.search(r"^kubectl-whose: reusing debug container (whose-\w+) of pod client \(image (\S+), "
                  r"NET_ADMIN\+NET_RAW, target none, \d+ s of its lifetime left\)$", again.stderr, re.M)
    assert m, again.stderr
    assert re.search(rf"^kubectl-whose: exec ip in {m.group(1)}: WebSocket, v5\.channel\.k8s\.io$", again.stderr,
                     re.M), again.stderr
    names = lab.kubectl("get", "pod", "client", "-o", "jsonpath={.spec.ephemeralContainers[*].name}").stdout.split()
    assert m.group(1) in names


def test_request_timeout_zero_means_no_limit(lab):
    r = lab.whose("--request-timeout=0", "ps", "client", "-o", "json")
    assert r.code == 0, r.stderr
    r = lab.whose("ps", "client", "--request-timeout", "1m30s", "-o", "json")
    assert r.code == 0, r.stderr
