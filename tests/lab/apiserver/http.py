"""HTTP/1.1 (+TLS) transport: authentication, routing, JSON and chunked answers, WebSocket upgrade."""
from __future__ import annotations

import json
import logging
import re
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, List, Optional, Pattern, Tuple
from urllib.parse import parse_qs, urlsplit

from .rbac import Attributes
from .status import ApiError, method_not_allowed, no_such_path, unauthorized, unsupported_media_type

log = logging.getLogger("lab.apiserver")

Route = Tuple[Pattern, Dict[str, Callable]]


class Request:
    """One API request as the route functions see it."""

    def __init__(self, handler: "Handler", method: str, path: str, query: Dict[str, List[str]], params: dict,
                 user: str):
        self.handler, self.method, self.path, self.query, self.params, self.user = \
            handler, method, path, query, params, user
        self.api = handler.server.api
        self._body: Optional[bytes] = None

    def q(self, name: str, default: str = "") -> str:
        return self.query.get(name, [default])[-1]

    def dry_run(self) -> bool:
        """`dryRun=All` (what `kubectl --dry-run=server` sends): validate and admit, never store. Any other value is
        the apiserver's 400 from `ValidateDryRun`, before anything happens."""
        values = self.query.get("dryRun") or []
        if not values and self.method == "DELETE" and self.handler.headers.get("Content-Length", "0") != "0":
            try:  # kubectl sends a delete's options as a DeleteOptions body
                values = list(json.loads(self.body() or b"{}").get("dryRun") or [])
            except (ValueError, AttributeError):
                values = []
        if not values:
            return False
        if values != ["All"]:
            from .status import bad_request

            raise bad_request(f'dryRun: Unsupported value: {json.dumps(values[-1])}: supported values: "All"')
        return True

    def flag(self, name: str) -> bool:
        # Convert_Slice_string_To_bool: absent/"0"/"false" are false, anything else is true.
        v = self.query.get(name)
        return bool(v) and v[-1].lower() not in ("0", "false")

    def header(self, name: str, default: str = "") -> str:
        return self.handler.headers.get(name, default)

    @property
    def content_type(self) -> str:
        return self.header("Content-Type", "application/json")

    def body(self) -> bytes:
        if self._body is None:
            h = self.handler
            h._drained = True
            if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
                parts = []
                while True:
                    size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        h.rfile.readline()
                        break
                    parts.append(h.rfile.read(size))
                    h.rfile.readline()
                self._body = b"".join(parts)
            else:
                self._body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        return self._body

    def json(self) -> dict:
        if self.content_type.startswith("application/vnd.kubernetes.protobuf"):
            # Only SelfSubjectAccessReview bodies are decoded from protobuf (rbac.py); `kubectl create` sends
            # protobuf for built-in kinds — use `kubectl apply` (JSON) or the fixture's helpers instead.
            self.body()
            raise unsupported_media_type()
        try:
            obj = json.loads(self.body() or b"{}")
        except ValueError:
            raise ApiError(400, "BadRequest", "the body of the request could not be decoded as JSON", {})
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", "the body of the request must be a JSON object", {})
        return obj

    def authorize(self, verb: str, resource: str = "", subresource: str = "", namespace: str = "",
                  name: str = "", group: str = "") -> None:
        self.api.authorizer.check(self.user, Attributes(verb, resource, subresource, namespace, name, group))

    def wants_table(self) -> bool:
        return "as=Table" in self.header("Accept")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kubectl-whose-lab"
    sys_version = ""

    def log_message(self, fmt, *args):  # noqa: D401 - route the access log to the lab log, not stderr
        log.info("%s %s", self.address_string(), fmt % args)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        self._drained = False
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        try:
            user = self.server.api.authorizer.authenticate(self.headers.get("Authorization"))
            if user is None:
                raise unauthorized()
            for pattern, methods in self.server.routes:
                m = pattern.fullmatch(url.path.rstrip("/") or "/")
                if not m:
                    continue
                fn = methods.get(method)
                if fn is None:
                    raise method_not_allowed()
                req = Request(self, method, url.path, query, m.groupdict(), user)
                result = fn(req)
                self._drain()  # a body the handler did not need (kubectl's DeleteOptions) is still read
                if result is not None:
                    code, body, *extra = result
                    self.send_json(code, body, extra[0] if extra else None)
                return
            raise no_such_path()
        except ApiError as e:
            self._drain()
            if e.plain_text:
                self.send_bytes(e.code, e.message.encode(), "text/plain; charset=utf-8")
            else:
                self.send_json(e.code, e.body(), e.headers)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, socket.timeout):
            self.close_connection = True
        except Exception:
            log.exception("internal error on %s %s", method, self.path)
            self.close_connection = True
            try:
                self.send_json(500, ApiError(500, "InternalError", "Internal error occurred: lab bug").body())
            except OSError:
                pass

    def _drain(self) -> None:
        # An unread request body would be taken for the next request on a kept-alive connection.
        n = int(self.headers.get("Content-Length") or 0)
        if n and not self._drained:
            self._drained = True
            try:
                self.rfile.read(n)
            except OSError:
                pass

    def send_bytes(self, code: int, data: bytes, ctype: str, headers: Optional[dict] = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in (headers or {}).items():
            for item in (v if isinstance(v, list) else [v]):
                self.send_header(k, item)
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, code: int, body, headers: Optional[dict] = None) -> None:
        self.send_bytes(code, json.dumps(body, separators=(",", ":")).encode(), "application/json", headers)

    # chunked streaming (watch, log follow)
    def start_chunked(self, ctype: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()

    def chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class LabHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address, api, routes: List[Route], tls: Optional[ssl.SSLContext]):
        self.api, self.routes, self.tls = api, routes, tls
        super().__init__(address, Handler)

    def finish_request(self, request, client_address):
        # The TLS handshake runs in the request's own thread, so one slow client cannot stall accept().
        if self.tls is not None:
            request.settimeout(30)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
            request.settimeout(None)
        super().finish_request(request, client_address)


def compile_routes(table: List[Tuple[str, Dict[str, Callable]]]) -> List[Route]:
    out = []
    for pattern, methods in table:
        rx = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        out.append((re.compile(rx), methods))
    return out


def serve_forever_in_thread(server: LabHTTPServer) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True,
                         name="apiserver")
    t.start()
    return t
