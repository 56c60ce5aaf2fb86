"""The debugging surface: pods/{name}/ephemeralcontainers, pods/{name}/exec, SelfSubjectAccessReview,
and the lab's own control endpoints (/lab/v1/..., admin only)."""
from __future__ import annotations

from . import ephemeral, execstream, schema, spdystreams, versions
from .admission import admit_pod
from .http import Request
from .patch import apply_patch
from .rbac import Attributes, decode_ssar_protobuf, ssar_attributes
from .status import ApiError, bad_request, conflict, forbidden, method_not_allowed, no_such_path
from .websocket import accept_key, negotiate, WebSocket


def ephemeral_containers(req: Request):
    api = req.api
    ns, name = req.params["ns"], req.params["name"]
    if not api.server_version.ephemeral_containers:
        # The subresource is only registered with the EphemeralContainers gate on: go-restful's empty 404.
        raise no_such_path()
    if req.method in ("POST", "DELETE"):
        raise method_not_allowed()
    if req.method == "GET":
        req.authorize("get", "pods", "ephemeralcontainers", namespace=ns, name=name)
        return 200, api.store.get("pods", ns, name)
    verb = "patch" if req.method == "PATCH" else "update"
    req.authorize(verb, "pods", "ephemeralcontainers", namespace=ns, name=name)
    req.dry_run()  # a bad value is a 400 before anything is written
    body = req.body()
    # The registry's GuaranteedUpdate: read, apply, write if nothing changed meanwhile, else apply again to the
    # newer object. A resourceVersion the client sent (in a PUT, or in the patch itself: the patcher's
    # optimistic lock) is a precondition instead: a stale one is the client's 409, never retried.
    while True:
        try:
            return _write_ephemeral(req, ns, name, body)
        except _Raced:
            continue


class _Raced(Exception):
    """Another write landed between our read and our write (no precondition of the client's was involved)."""


def _write_ephemeral(req: Request, ns: str, name: str, body: bytes):
    api = req.api
    store = api.store
    cur = store.get("pods", ns, name)
    if req.method == "PATCH":
        new = apply_patch(req.content_type, cur, body)
    else:
        new = req.json()
        if (new.get("metadata") or {}).get("name") not in (None, name):
            raise bad_request(f"the name of the object ({new['metadata']['name']}) does not match the name on the "
                              f"URL ({name})")
    field_warnings = schema.decode_pod(new, req.q("fieldValidation"))
    expect_rv = (new.get("metadata") or {}).get("resourceVersion") or None
    if expect_rv and expect_rv != cur["metadata"]["resourceVersion"]:
        raise conflict("pods", name)
    result = ephemeral.merge_update(cur, new)
    ephemeral.validate_update(cur, result)
    if (result["spec"].get("ephemeralContainers") or []) == (cur["spec"].get("ephemeralContainers") or []):
        return 200, cur  # nothing changed: no write, no new resourceVersion (re-sending a container is a no-op)
    warnings = (schema.warning_header(field_warnings) or []) + admit_pod(store.get("namespaces", "", ns), result,
                                                                        api.server_version.pod_security)
    headers = {"Warning": warnings} if warnings else None
    if req.dry_run():
        return 200, result, headers

    def mutate(o):
        if result["spec"].get("ephemeralContainers"):
            o["spec"]["ephemeralContainers"] = result["spec"]["ephemeralContainers"]
        else:
            o["spec"].pop("ephemeralContainers", None)
        o["metadata"]["generation"] = o["metadata"].get("generation", 1) + 1
    try:
        stored = store.update("pods", ns, name, mutate, expect_rv=cur["metadata"]["resourceVersion"])
    except ApiError as e:
        if e.code == 409 and not expect_rv:
            raise _Raced() from None
        raise
    api.kubelet.sync_ephemeral(ns, name)
    return 200, stored, headers


# -- exec ----------------------------------------------------------------------------------------------------------
def _authorize_stream(req: Request, subresource: str) -> None:
    """The verb of the HTTP method (POST = create, GET = get); then, from 1.35, the registry's extra `create` check
    on every connect (`ensureAuthorizedForVerb`, a no-op for POST). Its 403 is `NewForbidden(pods, name, reason)`,
    and the RBAC authorizer gives no reason for a plain denial: `pods "NAME" is forbidden: `."""
    api = req.api
    ns, name = req.params["ns"], req.params["name"]
    verb = "create" if req.method == "POST" else "get"
    req.authorize(verb, "pods", subresource, namespace=ns, name=name)
    if (verb != "create" and api.server_version.websocket_needs_create
            and not api.authorizer.allowed(req.user, Attributes("create", "pods", subresource, ns, name))):
        raise forbidden("pods", name, "")


def _websocket_protocols(api):
    """v5 only through the API server's stream translator (1.30+); older servers proxy to the kubelet's v4."""
    legacy = (execstream.V4, execstream.V4_B64, execstream.V1, "")  # wsstream's; "" is channel.k8s.io
    return ((execstream.V5,) if api.server_version.websocket_v5 else ()) + legacy


def _stream_options(req: Request):
    """stdin/stdout/stderr/tty as the kubelet takes them: a tty has no separate stderr."""
    tty = req.flag("tty")
    return req.flag("stdin"), req.flag("stdout"), req.flag("stderr") and not tty, tty


def _spdy_upgrade(req: Request) -> bool:
    return (req.method == "POST" and "upgrade" in req.header("Connection").lower()
            and "spdy/3.1" in req.header("Upgrade").lower())


def _open_channels(req: Request, running: bool, cname: str):
    """Negotiate and upgrade (WebSocket or SPDY); None when an answer was already sent."""
    h = req.handler
    stdin, stdout, stderr, tty = _stream_options(req)
    if _spdy_upgrade(req):
        offered = req.handler.headers.get_all("X-Stream-Protocol-Version") or []
        if not running:  # the kubelet answers before upgrading, in plain text
            raise ApiError(500, "InternalError", f'container not found ("{cname}")', plain_text=True)
        if not offered:
            # httpstream.Handshake fails and ServeExec returns without writing: the Go server's empty 200
            h.send_bytes(200, b"", "text/plain; charset=utf-8")
            return None
        proto = spdystreams.negotiate(offered)
        if proto is None:
            text = (f"unable to upgrade: unable to negotiate protocol: client supports "
                    f"[{' '.join(p.strip() for v in offered for p in v.split(','))}], server accepts "
                    f"[{' '.join(spdystreams.SUPPORTED)}]\n")
            h.send_bytes(403, text.encode(), "text/plain; charset=utf-8",
                         {"X-Accepted-Stream-Protocol-Versions": list(spdystreams.SUPPORTED)})
            return None
        channels = spdystreams.SpdyChannels(spdystreams.accept(req, proto), proto, stdin, stdout, stderr, tty)
        return channels if channels.wait_for_streams() else None
    proto = negotiate(req.header("Sec-WebSocket-Protocol"), _websocket_protocols(req.api))
    if proto is None:
        # golang.org/x/net/websocket: no common subprotocol → 403 with an empty body.
        h.send_bytes(403, b"", "text/plain")
        return None
    if not running and proto != execstream.V5:
        # The kubelet answers before upgrading, in plain text (the v5 translator upgrades first).
        raise ApiError(500, "InternalError", f'container not found ("{cname}")', plain_text=True)
    return execstream.WebSocketChannels(_switch_protocols(req, proto), proto)


def _upgrade_requested(req: Request) -> bool:
    return req.header("Upgrade").lower() == "websocket" or _spdy_upgrade(req)


def pod_exec(req: Request):
    api = req.api
    ns, name = req.params["ns"], req.params["name"]
    _authorize_stream(req, "exec")
    pod = api.store.get("pods", ns, name)
    if not _upgrade_requested(req):
        # The upgrade-aware proxy (upgradeRequired) refuses a plain request.
        raise bad_request("Upgrade request required")
    cname = execstream.validate_exec(pod, req.q("container"))
    stdin, stdout, stderr, tty = _stream_options(req)
    if not (stdin or stdout or stderr):
        raise bad_request("you must specify at least 1 of stdin, stdout, stderr")
    rt = api.kubelet.get(ns, name)
    c = rt.containers.get(cname) if rt else None
    running = c is not None and c.running
    channels = _open_channels(req, running, cname)
    if channels is None:
        return None
    session = execstream.ExecSession(channels, stdin, stdout, stderr,
                                     drop_after=int(api.config.get("dropExecAfterBytes") or 0))
    api.stream_started()
    try:
        session.open()
        if not running:
            session.finish(execstream.status_internal(f'unable to upgrade connection: container not found ("{cname}")'))
            return None
        session.run(rt.sandbox, c.main_pid, c.identity, c.env, req.query.get("command", []), tty=tty)
    except execstream.Closed:
        pass
    finally:
        api.stream_ended()
    return None


def _switch_protocols(req: Request, proto: str) -> WebSocket:
    h = req.handler
    h.send_response(101, "Switching Protocols")
    h.send_header("Upgrade", "websocket")
    h.send_header("Connection", "Upgrade")
    h.send_header("Sec-WebSocket-Accept", accept_key(req.header("Sec-WebSocket-Key")))
    if proto:  # the "" protocol is answered without the header
        h.send_header("Sec-WebSocket-Protocol", proto)
    h.end_headers()
    h.wfile.flush()
    h.close_connection = True
    return WebSocket(h.connection, h.rfile)


def pod_attach(req: Request):
    """`kubectl debug -i/-it` and `kubectl attach`: the container's own stdio, over the exec channel protocols."""
    api = req.api
    ns, name = req.params["ns"], req.params["name"]
    _authorize_stream(req, "attach")
    pod = api.store.get("pods", ns, name)
    if not _upgrade_requested(req):
        raise bad_request("Upgrade request required")
    cname = execstream.validate_exec(pod, req.q("container"))
    stdin, stdout, stderr, tty = _stream_options(req)
    rt = api.kubelet.get(ns, name)
    c = rt.containers.get(cname) if rt else None
    if c is None or not c.running:
        if not _spdy_upgrade(req) and negotiate(req.header("Sec-WebSocket-Protocol"),
                                                _websocket_protocols(api)) is None:
            req.handler.send_bytes(403, b"", "text/plain")
            return None
        raise ApiError(500, "InternalError", f'container not found ("{cname}")', plain_text=True)
    channels = _open_channels(req, True, cname)
    if channels is None:
        return None
    session = execstream.ExecSession(channels, stdin, stdout, stderr)
    try:
        session.open()
        session.attach(c.io, tty=tty)
        # The kubelet's ServeAttach reports Success whenever the streams end, whatever the exit code.
        session.finish(execstream.status_success())
    except execstream.Closed:
        pass
    return None


# -- SelfSubjectAccessReview ---------------------------------------------------------------------------------------
def ssar(req: Request):
    if req.content_type.startswith("application/vnd.kubernetes.protobuf"):
        try:
            spec = decode_ssar_protobuf(req.body())
        except (ValueError, StopIteration, IndexError):
            raise bad_request("the body of the request could not be decoded as a SelfSubjectAccessReview")
    else:
        spec = req.json().get("spec") or {}
    attrs = ssar_attributes(spec)
    allowed = req.api.authorizer.allowed(req.user, attrs)
    status = {"allowed": allowed}
    if allowed and not attrs.non_resource:
        status["reason"] = f'RBAC: allowed by lab policy for user "{req.user}"'
    return 201, {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                 "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}


def served_from_1_28(route):
    """authentication.k8s.io/v1 exists from 1.28 on; before, go-restful's empty 404."""
    def guarded(req: Request):
        if not req.api.server_version.self_subject_review:
            raise no_such_path()
        return route(req)
    return guarded


def self_review(req: Request):
    """SelfSubjectReview (`kubectl auth whoami`): who the token belongs to. The body carries nothing to read (JSON,
    or the protobuf envelope kubectl sends), so it is drained, not decoded."""
    req.body()
    user = req.api.authorizer.users.get(req.user) or {}
    groups = list(user.get("groups") or []) + ["system:authenticated"]
    return 201, {"kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
                 "metadata": {"creationTimestamp": None}, "status": {"userInfo": {"username": req.user,
                                                                                 "groups": groups}}}


# -- lab control -----------------------------------------------------------------------------------------------------
def _admin(req: Request) -> None:
    if not req.api.authorizer.allowed(req.user, Attributes("*", "*")):
        raise ApiError(403, "Forbidden", "lab control is for the admin user", {})


def lab_config(req: Request):
    _admin(req)
    if req.method == "PUT":
        body = req.json()
        if "version" in body:
            try:
                versions.parse(body["version"])
            except ValueError as e:
                raise bad_request(str(e))
        req.api.config.update({k: v for k, v in body.items() if k in req.api.config})
        if "version" in body:
            _set_kubelet_version(req.api)
        if "delays" in body:
            for k, v in body["delays"].items():
                setattr(req.api.kubelet.delays, k, float(v))
    return 200, dict(req.api.config)


def _set_kubelet_version(api) -> None:
    """The node reports the kubelet of the same release (what `kubectl get nodes` shows as VERSION)."""
    git = api.server_version.git_version
    for node in api.store.names("nodes", "", lambda o: True):
        def mutate(o):
            o["status"]["nodeInfo"].update(kubeletVersion=git, kubeProxyVersion=git)
        api.store.update("nodes", "", node, mutate)


def lab_rbac(req: Request):
    _admin(req)
    if req.method == "PUT":
        req.api.authorizer.set_policy(req.json())
    return 200, req.api.authorizer.policy


def lab_pods(req: Request):
    """Where each pod really is: network namespace, PID-namespace init, IP, container PIDs."""
    _admin(req)
    out = {}
    for (ns, name), rt in list(req.api.kubelet.pods.items()):
        out[f"{ns}/{name}"] = {"namespace": ns, "name": name, "netns": rt.netns, "ip": rt.ip,
                               "init_pid": rt.sandbox.init_pid,
                               "containers": {c.name: (c.main_pid if c.running else None)
                                              for c in rt.containers.values()}}
    return 200, out


def lab_compact(req: Request):
    """etcd's compaction, on demand: older watches and continue tokens are answered 410 Expired."""
    _admin(req)
    return 200, {"compacted": req.api.store.compact()}


def lab_token(req: Request):
    _admin(req)
    return 200, {"user": req.params["user"], "token": req.api.authorizer.token_for(req.params["user"])}

