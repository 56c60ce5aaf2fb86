"""The API's answers -> one line and an exit code. Inputs are the verbatim Status bodies of a real server
(research/k8s-api-spec.md §3, §6, §7); the lab tests provoke the same answers for real."""
import json

import pytest

from kubectl_whose.cluster.client import translate_api_error
from kubectl_whose.cluster.exec_api import exec_path, parse_status
from kubectl_whose.cluster.rest import ApiError
from kubectl_whose.errors import ExitCode


def status(code, reason, message, details):
    return json.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
                       "reason": reason, "details": details, "code": code}).encode()


@pytest.mark.parametrize("code,body,sub,want_code,want_start", [
    (404, status(404, "NotFound", 'pods "nope" not found', {"name": "nope", "kind": "pods"}), None,
     ExitCode.NOT_FOUND, 'pod "web" not found in namespace "default" (server: pods "nope" not found)'),
    (404, status(404, "NotFound", "the server could not find the requested resource", {}), "ephemeralcontainers",
     ExitCode.UNSUPPORTED_SERVER, "this cluster does not serve pods/ephemeralcontainers"),
    (404, status(404, "NotFound", 'pods "web" not found', {"name": "web", "kind": "pods"}), "ephemeralcontainers",
     ExitCode.NOT_FOUND, 'pod "web" not found'),
    (403, status(403, "Forbidden", 'pods "web" is forbidden: violates PodSecurity "baseline:latest": non-default '
                 'capabilities (container "dbg" must not include "NET_ADMIN", "NET_RAW" in '
                 'securityContext.capabilities.add)', {"name": "web", "kind": "pods"}), "ephemeralcontainers",
     ExitCode.ADMISSION_REJECTED, 'the namespace "default" enforces Pod Security "baseline"'),
    (403, status(403, "Forbidden", 'admission webhook "deny.example.com" denied the request: no debugging',
                 {"name": "web", "kind": "pods"}), "ephemeralcontainers",
     ExitCode.ADMISSION_REJECTED, "an admission webhook rejected the debug container"),
    (403, status(403, "Forbidden", 'pods "web" is forbidden: User "system:serviceaccount:ci:deployer" cannot patch '
                 'resource "pods/ephemeralcontainers" in API group "" in the namespace "default"',
                 {"name": "web", "kind": "pods"}), "ephemeralcontainers", ExitCode.FORBIDDEN,
     'RBAC forbids "patch" on pods/ephemeralcontainers'),
    (422, status(422, "Invalid", 'Pod "web" is invalid: : Forbidden: static pods do not support ephemeral '
                 "containers", {"name": "web", "kind": "Pod"}), "ephemeralcontainers", ExitCode.ADMISSION_REJECTED,
     'pod "web" is a static (mirror) pod'),
    (422, status(422, "Invalid", 'Pod "web" is invalid: spec.ephemeralContainers[0].targetContainerName: Not '
                 'found: "nope"', {"name": "web", "kind": "Pod"}), "ephemeralcontainers", ExitCode.NOT_FOUND,
     'container "nope" not found in pod "web"'),
], ids=["pod-404", "old-server-404", "pod-404-on-subresource", "podsecurity", "webhook", "rbac-serviceaccount",
        "static-pod", "bad-target"])
def test_translate(code, body, sub, want_code, want_start):
    err = translate_api_error(ApiError(code, body), action="add the debug container", namespace="default",
                              pod="web", subresource=sub, verb="patch")
    assert err.code == want_code
    assert err.message.startswith(want_start), err.message
    assert "(server: " in err.message


def test_rbac_role_names_the_service_account():
    body = status(403, "Forbidden", 'pods "web" is forbidden: User "system:serviceaccount:ci:deployer" cannot patch '
                  'resource "pods/ephemeralcontainers" in API group "" in the namespace "default"', {})
    err = translate_api_error(ApiError(403, body), action="x", namespace="default", pod="web",
                              subresource="ephemeralcontainers")
    assert err.message.endswith("--role=kubectl-whose --serviceaccount=ci:deployer")


@pytest.mark.parametrize("payload,want", [
    (b'{"metadata":{},"status":"Success"}', (0, None)),
    (b'{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: command terminated '
     b'with exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}',
     (3, None)),
    (b'{"metadata":{},"status":"Failure","message":"Internal error occurred: error executing command in container: '
     b'failed to exec in container: exec: \\"tcpdump\\": executable file not found in $PATH: unknown","reason":'
     b'"InternalError","details":{"causes":[{"message":"error executing command in container"}]},"code":500}',
     (127, 'Internal error occurred: error executing command in container: failed to exec in container: exec: '
           '"tcpdump": executable file not found in $PATH: unknown')),
], ids=["success", "exit-3", "missing-binary"])
def test_channel3_status(payload, want):
    assert parse_status(payload) == want


def test_exec_path_keeps_each_argv_element_as_one_parameter():
    path = exec_path("default", "web", "whose-abcde", ["tcpdump", "-f", "port 80; rm -rf /", "--", "a&b"])
    assert path == ("/api/v1/namespaces/default/pods/web/exec?command=tcpdump&command=-f&command=port+80%3B+rm+-rf+%2F"
                    "&command=--&command=a%26b&container=whose-abcde&stdout=true&stderr=true")
