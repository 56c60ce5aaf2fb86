"""The Kubernetes client, built lazily from the kubectl-style resolution, and the API's errors in plain words.

`kubernetes` is imported inside functions only: `--help` and `analyze` never pay for it.
Every translated error keeps the server's own words in parentheses after our sentence, so a user can search for
them, and carries the exit code a script can rely on (`kubectl_whose.errors.ExitCode`).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any, Optional

from kubectl_whose.cluster.kubeconfig import ResolvedConfig, resolve
from kubectl_whose.errors import ExitCode, WhoseError


@dataclass
class Cluster:
    """One API server connection: the resolved kubeconfig plus lazily built API objects."""

    config: ResolvedConfig
    request_timeout: float = 30.0
    _api_client: Any = None
    _rest: Any = None

    @property
    def namespace(self) -> str:
        return self.config.namespace

    @property
    def rest(self):
        """The light transport every plugin call uses (see `cluster.rest`)."""
        if self._rest is None:
            from kubectl_whose.cluster.rest import Rest, build_transport

            self._rest = Rest(build_transport(self.config), self.request_timeout)
        return self._rest

    @property
    def api_client(self):
        """The generated kubernetes client, for callers that want it (slow to import)."""
        if self._api_client is None:
            from kubectl_whose.cluster.kube_client import build_api_client

            self._api_client = build_api_client(self.config)
        return self._api_client

    def in_namespace(self, namespace: str) -> "Cluster":
        """The same connection, for calls in another namespace (the node debug pod's)."""
        return replace(self, config=replace(self.config, namespace=namespace, namespace_from="flag"))

    @property
    def core(self):
        from kubernetes import client

        return client.CoreV1Api(self.api_client)



def connect(kube) -> Cluster:
    """`kube` is `cli.options.KubeFlags`."""
    resolved = resolve(namespace=kube.namespace, context=kube.context, kubeconfig=kube.kubeconfig)
    return Cluster(resolved, float(kube.request_timeout or 30.0))


# --- error translation ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ApiStatus:
    """The parts of a `Status` body we reason about."""

    code: int
    reason: str
    message: str
    details_name: str
    has_details: bool


def parse_status(code: int, body: Any) -> ApiStatus:
    data: dict = {}
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body.strip():
        try:
            data = json.loads(body)
        except ValueError:
            data = {"message": body.strip()}
    elif isinstance(body, dict):
        data = body
    details = data.get("details") if isinstance(data.get("details"), dict) else None
    return ApiStatus(code=int(data.get("code") or code or 0), reason=str(data.get("reason") or ""),
                     message=str(data.get("message") or "").strip(),
                     details_name=str((details or {}).get("name") or ""), has_details=bool(details))


def translate_api_error(exc: Exception, *, action: str, namespace: str, pod: str,
                        subresource: Optional[str] = None, verb: Optional[str] = None) -> WhoseError:
    """Turn an `ApiError`/`ApiException` (or a connection failure) into one sentence with the right exit code.

    `action` says what we were doing ("read pod", "add the debug container"); `subresource`/`verb` name the
    RBAC permission involved so a 403 can print the Role that grants it.
    """
    import urllib3

    from kubectl_whose.cluster.rest import ApiError

    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return WhoseError(f"the API server did not answer within the request timeout while trying to {action}; "
                          f"retry or raise --request-timeout ({exc})", ExitCode.TIMEOUT)
    if not isinstance(exc, ApiError) and type(exc).__name__ != "ApiException":
        if isinstance(exc, (OSError, urllib3.exceptions.HTTPError)):
            return connection_error(exc)
        raise exc  # a bug, not the cluster talking: let main report it as such
    status = parse_status(exc.status or 0, exc.body)
    words = f"(server: {status.message})" if status.message else f"(server: HTTP {status.code} {exc.reason or ''})"
    if status.code == 404:
        if subresource == "ephemeralcontainers" and not status.details_name:
            # A missing pod is a 404 naming the pod; a server without the subresource answers an empty-details 404
            # (go-restful's not-found handler) -- the same test kubectl uses (`Details.Name == ""`).
            return WhoseError(f"this cluster does not serve pods/ephemeralcontainers: ephemeral containers are "
                              f"disabled or the server is older than Kubernetes 1.23 {words}",
                              ExitCode.UNSUPPORTED_SERVER)
        return WhoseError(f'pod "{pod}" not found in namespace "{namespace}" {words}', ExitCode.NOT_FOUND)
    if status.code == 403:
        if "violates PodSecurity" in status.message:
            return podsecurity_error(status, namespace, words)
        if "admission webhook" in status.message:
            return WhoseError(f"an admission webhook rejected the debug container; ask the cluster admin to allow "
                              f"NET_ADMIN/NET_RAW ephemeral containers {words}", ExitCode.ADMISSION_REJECTED)
        return rbac_error(status, namespace, subresource, verb, words)
    if status.code == 401:
        return WhoseError(f"the API server did not accept the credentials of context; refresh them (e.g. log in "
                          f"again) {words}", ExitCode.CONFIG)
    if status.code == 422:
        if "static pods" in status.message:
            return WhoseError(f'pod "{pod}" is a static (mirror) pod, which cannot get ephemeral containers; debug '
                              f"it on its node instead {words}", ExitCode.ADMISSION_REJECTED)
        m = re.search(r'targetContainerName: Not found: "([^"]*)"', status.message)
        if m:
            return WhoseError(f'container "{m.group(1)}" not found in pod "{pod}" {words}', ExitCode.NOT_FOUND)
        return WhoseError(f"the API server rejected the debug container {words}", ExitCode.ADMISSION_REJECTED)
    if status.code in (408, 504) or status.reason == "Timeout":
        return WhoseError(f"the API server timed out while trying to {action}; retry or raise --request-timeout "
                          f"{words}", ExitCode.TIMEOUT)
    return WhoseError(f"could not {action} {words}", ExitCode.ERROR)


def connection_error(exc: Exception) -> WhoseError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return WhoseError(f"cannot reach the API server; check the cluster URL in your kubeconfig and your network "
                      f"({text})", ExitCode.CONNECTION_LOST)


def podsecurity_error(status: ApiStatus, namespace: str, words: str) -> WhoseError:
    level = re.search(r'violates PodSecurity "([a-z]+)', status.message)
    lvl = level.group(1) if level else "baseline"
    why = (f'the namespace "{namespace}" enforces Pod Security "{lvl}", which forbids adding NET_ADMIN and NET_RAW '
           f"(tcpdump needs NET_RAW, iptables needs NET_ADMIN) and evaluates the whole pod")
    way_out = ("ask an admin to label the namespace pod-security.kubernetes.io/enforce=privileged for the "
               "debugging session, or add --node to work from the pod's node instead (a short-lived node debug pod "
               "with hostNetwork and NET_ADMIN/NET_RAW, in a namespace that allows it: --node-namespace NS)")
    return WhoseError(f"{why}; {way_out} {words}", ExitCode.ADMISSION_REJECTED)


def role_command(namespace: str, verbs: str, resource: str, subject: Optional[str]) -> str:
    """A kubectl one-liner that grants the missing permission (built-in edit/admin lack pods/ephemeralcontainers)."""
    grant = f"kubectl create role kubectl-whose -n {namespace} --verb={verbs} --resource={resource}"
    if not subject:
        return grant
    if subject.startswith("system:serviceaccount:"):
        sa = subject.split(":", 3)
        who = f"--serviceaccount={sa[2]}:{sa[3]}" if len(sa) == 4 else f"--user={subject}"
    else:
        who = f"--user={subject}"
    return f"{grant} && kubectl create rolebinding kubectl-whose -n {namespace} --role=kubectl-whose {who}"


def rbac_error(status: ApiStatus, namespace: str, subresource: Optional[str], verb: Optional[str],
               words: str) -> WhoseError:
    m = re.search(r'cannot (\w+) resource "([^"]+)"', status.message)
    if m:
        verb, resource = m.group(1), m.group(2)
    else:
        resource = f"pods/{subresource}" if subresource else "pods"
        verb = verb or "get"
    subject = re.search(r'User "([^"]+)"', status.message)
    if resource == "pods/exec":
        verbs = "get,create"  # WebSocket exec needs get, and create on 1.35+ (and for SPDY)
    elif resource == "pods/ephemeralcontainers":
        verbs = "get,patch"
    else:
        verbs = verb
    note = "; the built-in edit and admin roles do not include it" if resource == "pods/ephemeralcontainers" else ""
    grant = role_command(namespace, verbs, resource, subject.group(1) if subject else None)
    return WhoseError(f'RBAC forbids "{verb}" on {resource} in namespace "{namespace}" {words}{note}; '
                      f"grant it with: {grant}", ExitCode.FORBIDDEN)
