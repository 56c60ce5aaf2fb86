"""A small REST transport for the few API calls the plugin makes, built from the resolved kubeconfig.

Why not the generated `kubernetes` client on the hot path: importing it loads every model (~0.4 s of a 1 s
budget for "capture running" on a reused container), and we only need GET/PATCH/POST of plain JSON plus a watch.
Credentials handled here: bearer `token`/`tokenFile`, client certificate/key (file or `-data`), CA (file or
`-data`), `insecure-skip-tls-verify`, `tls-server-name`. Anything else (`exec` credential plugins,
`auth-provider`, basic auth) is delegated to the kubernetes client's own loader, so every kubeconfig kubectl
accepts still works -- those users just pay its import time.
"""
from __future__ import annotations

import atexit
import base64
import json
import os
import re
import shutil
import ssl
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Optional
from urllib.parse import urlencode, urlsplit

from kubectl_whose.cluster.kubeconfig import ResolvedConfig
from kubectl_whose.errors import ExitCode, WhoseError


class ApiError(Exception):
    """A non-2xx answer: HTTP status and the raw body (usually a `Status` JSON)."""

    def __init__(self, status: int, body: bytes, reason: str = ""):
        super().__init__(f"HTTP {status} {reason}".strip())
        self.status = status
        self.body = body
        self.reason = reason


@dataclass
class Transport:
    server: str
    ssl_context: Optional[ssl.SSLContext]
    authorization: Optional[str]
    server_hostname: Optional[str] = None
    proxy: Optional[str] = None  # http://host:port, from the cluster's proxy-url or $HTTPS_PROXY (not in $NO_PROXY)
    refresh: Optional[Callable[[], Optional[str]]] = None  # fresh header for delegated credentials (exec plugins)


_TMPDIR: Optional[str] = None


def _tmpfile(data: bytes, name: str) -> str:
    global _TMPDIR
    if _TMPDIR is None:
        _TMPDIR = tempfile.mkdtemp(prefix="kubectl-whose-")
        atexit.register(shutil.rmtree, _TMPDIR, True)
    path = os.path.join(_TMPDIR, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def _b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value)
    except ValueError:
        raise WhoseError(f"kubeconfig: {what} is not valid base64", ExitCode.CONFIG) from None


def _named(resolved: ResolvedConfig, key: str, name: str) -> dict:
    for item in resolved.merged.get(key) or []:
        if item.get("name") == name:
            return item.get(key[:-1]) or {}
    return {}


def build_transport(resolved: ResolvedConfig) -> Transport:
    cluster = _named(resolved, "clusters", resolved.cluster)
    user = _named(resolved, "users", resolved.user) if resolved.user else {}
    if any(k in user for k in ("exec", "auth-provider", "username")):
        return _delegated_transport(resolved)
    ctx = None
    if resolved.server.startswith("https://"):
        ctx = ssl.create_default_context()
        if cluster.get("insecure-skip-tls-verify"):
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif cluster.get("certificate-authority-data"):
            ctx.load_verify_locations(cadata=_b64(cluster["certificate-authority-data"],
                                                  "certificate-authority-data").decode("ascii", "replace"))
        elif cluster.get("certificate-authority"):
            try:
                ctx.load_verify_locations(cafile=cluster["certificate-authority"])
            except OSError as e:
                raise WhoseError(f"kubeconfig: cannot read certificate-authority {cluster['certificate-authority']} "
                                 f"({e.strerror})", ExitCode.CONFIG) from None
        cert, key = user.get("client-certificate"), user.get("client-key")
        if user.get("client-certificate-data"):
            cert = _tmpfile(_b64(user["client-certificate-data"], "client-certificate-data"), "client.crt")
        if user.get("client-key-data"):
            key = _tmpfile(_b64(user["client-key-data"], "client-key-data"), "client.key")
        if cert:
            try:
                ctx.load_cert_chain(cert, key)
            except (OSError, ssl.SSLError) as e:
                why = getattr(e, "strerror", None) or getattr(e, "reason", None) or str(e)
                raise WhoseError(f"kubeconfig: cannot load the client certificate {cert} and key {key or cert} of "
                                 f"user {resolved.user!r} ({why}); check client-certificate and client-key",
                                 ExitCode.CONFIG) from None
    token = user.get("token")
    if not token and user.get("tokenFile"):
        try:
            with open(user["tokenFile"], encoding="utf-8") as f:
                token = f.read().strip()
        except OSError as e:
            raise WhoseError(f"kubeconfig: cannot read tokenFile {user['tokenFile']} ({e.strerror})",
                             ExitCode.CONFIG) from None
    return Transport(resolved.server.rstrip("/"), ctx, f"Bearer {token}" if token else None,
                     cluster.get("tls-server-name"), proxy_for(resolved.server, cluster))


def proxy_for(server: str, cluster: dict) -> Optional[str]:
    """kubectl's choice: the cluster's `proxy-url`, else the environment's proxy for the scheme unless NO_PROXY
    covers the host. Only HTTP(S) proxies (CONNECT) are supported; socks5 URLs are refused with a clear error."""
    from urllib.request import getproxies_environment, proxy_bypass_environment

    url = cluster.get("proxy-url")
    if not url:
        parts = urlsplit(server)
        if proxy_bypass_environment(parts.hostname or ""):
            return None
        url = getproxies_environment().get(parts.scheme)
    if url and not url.startswith(("http://", "https://")):
        raise WhoseError(f"proxy {url}: only http:// and https:// proxies are supported; set proxy-url (or "
                         f"HTTPS_PROXY) to one", ExitCode.CONFIG)
    return url or None


def _delegated_transport(resolved: ResolvedConfig) -> Transport:
    from kubectl_whose.cluster.kube_client import build_api_client

    cfg = build_api_client(resolved).configuration
    ctx = None
    if cfg.host.startswith("https://"):
        ctx = ssl.create_default_context(cafile=cfg.ssl_ca_cert if cfg.verify_ssl else None)
        if not cfg.verify_ssl:  # insecure-skip-tls-verify, as the kubernetes client reads it
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if cfg.cert_file:
            ctx.load_cert_chain(cfg.cert_file, cfg.key_file)

    def refresh() -> Optional[str]:
        hook = getattr(cfg, "refresh_api_key_hook", None)
        if hook is not None:
            hook(cfg)
        setting = cfg.auth_settings().get("BearerToken")
        return setting["value"] if setting else None

    t = Transport(cfg.host.rstrip("/"), ctx, refresh(), getattr(cfg, "tls_server_name", None),
                  proxy_for(cfg.host, _named(resolved, "clusters", resolved.cluster)))
    t.refresh = refresh
    return t


class Rest:
    """JSON over HTTPS with one connection pool; every non-2xx answer raises `ApiError`."""

    def __init__(self, transport: Transport, timeout: Optional[float], log: Optional[Callable[[str], None]] = None,
                 warn: Optional[Callable[[str], None]] = None):
        """`timeout`: seconds for each answer (None: no limit); `log`: told every request and its status (-v=6);
        `warn`: told the text of each distinct `Warning:` header (RFC 7234 code 299), once per process, as
        client-go's default handler does (default: `chatter.warning`)."""
        import urllib3

        from kubectl_whose import chatter

        self.t = transport
        self.timeout = timeout
        self.log = log
        self.warn = warn or chatter.warning
        self.warned: set = set()
        kw = {"ssl_context": transport.ssl_context} if transport.ssl_context is not None else {}
        if transport.server_hostname:
            kw["server_hostname"] = transport.server_hostname
        if transport.proxy:
            self.pool = urllib3.ProxyManager(transport.proxy, num_pools=2, retries=False, **kw)
        else:
            self.pool = urllib3.PoolManager(num_pools=2, retries=False, **kw)

    def authorization(self) -> Optional[str]:
        if self.t.refresh is not None:
            self.t.authorization = self.t.refresh()
        return self.t.authorization

    def request(self, method: str, path: str, query: Optional[Dict[str, str]] = None, body=None,
                content_type: str = "application/json", stream: bool = False, timeout: Optional[float] = None):
        import urllib3

        url = self.t.server + path + (("?" + urlencode(query)) if query else "")
        headers = {"Accept": "application/json", "User-Agent": "kubectl-whose"}
        auth = self.authorization()
        if auth:
            headers["Authorization"] = auth
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        started = time.monotonic()
        try:
            resp = self.pool.request(method, url, body=data, headers=headers, preload_content=not stream,
                                     timeout=urllib3.Timeout(connect=self.timeout, read=timeout or self.timeout))
        except Exception as e:
            if self.log:
                self.log(f"{method} {url} failed after {(time.monotonic() - started) * 1000:.0f} milliseconds ({e})")
            raise
        if self.log:
            self.log(f"{method} {url} {resp.status} {resp.reason or ''} in "
                     f"{(time.monotonic() - started) * 1000:.0f} milliseconds".replace("  ", " "))
        for text in warning_texts(resp.headers.getlist("Warning")):
            if text not in self.warned:
                self.warned.add(text)
                self.warn(text)
        if resp.status >= 300:
            raw = resp.data if not stream else resp.read()
            raise ApiError(resp.status, raw, resp.reason or "")
        return resp

    def get(self, path: str, query: Optional[Dict[str, str]] = None) -> dict:
        return json.loads(self.request("GET", path, query).data)

    def patch(self, path: str, body, content_type: str, query: Optional[Dict[str, str]] = None) -> dict:
        return json.loads(self.request("PATCH", path, query, body, content_type).data)

    def post(self, path: str, body, query: Optional[Dict[str, str]] = None) -> dict:
        return json.loads(self.request("POST", path, query, body).data)

    def watch(self, path: str, query: Dict[str, str], timeout: float) -> Iterator[dict]:
        """The events of a watch (one JSON object per line of a chunked answer)."""
        resp = self.request("GET", path, {**query, "watch": "true"}, stream=True, timeout=timeout)
        buf = b""
        try:
            for chunk in resp.stream(8192, decode_content=True):
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        finally:
            resp.release_conn()

    def websocket_proxy(self) -> dict:
        """websocket-client's proxy options (it would read $HTTPS_PROXY itself, but not a kubeconfig proxy-url)."""
        if not self.t.proxy:
            return {}
        p = urlsplit(self.t.proxy)
        return {"http_proxy_host": p.hostname, "http_proxy_port": p.port or (443 if p.scheme == "https" else 80),
                "proxy_type": "http"}

    def websocket_sslopt(self) -> dict:
        if self.t.ssl_context is None:
            return {}
        opts = {"context": self.t.ssl_context}
        if self.t.server_hostname:
            opts["server_hostname"] = self.t.server_hostname
        return opts

    def open_socket(self, timeout: float):
        """A connected socket to the API server, TLS done (and an HTTP proxy's CONNECT tunnel crossed), for the
        protocols urllib3 cannot carry: the SPDY upgrade. No ALPN is offered, so the server speaks HTTP/1.1."""
        import socket

        parts = urlsplit(self.t.server)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if self.t.proxy:
            proxy = urlsplit(self.t.proxy)
            if proxy.scheme != "http":
                raise WhoseError(f"proxy {self.t.proxy}: exec over SPDY supports http:// proxies only",
                                 ExitCode.CONFIG)
            sock = socket.create_connection((proxy.hostname, proxy.port or 80), timeout=timeout)
            _connect_tunnel(sock, host, port)
        else:
            sock = socket.create_connection((host, port), timeout=timeout)
        if self.t.ssl_context is not None:
            try:
                sock = self.t.ssl_context.wrap_socket(sock, server_hostname=self.t.server_hostname or host)
            except (OSError, ssl.SSLError):
                sock.close()
                raise
        return sock

    def websocket_url(self, path: str) -> str:
        parts = urlsplit(self.t.server)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}{path}"


def _connect_tunnel(sock, host: str, port: int) -> None:
    """HTTP CONNECT through a proxy; anything but a 2xx answer is a connection failure."""
    sock.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("the proxy closed the connection during CONNECT")
        head += chunk
        if len(head) > 65536:
            raise ConnectionError("the proxy's CONNECT answer is too long")
    line = head.split(b"\r\n", 1)[0]
    status = line.split()
    if len(status) < 2 or not status[1].startswith(b"2"):
        raise ConnectionError(f"the proxy refused CONNECT ({line.decode('latin-1')})")


def warning_texts(values) -> List[str]:
    """The texts of `Warning: 299 - "text"` headers (client-go's `ParseWarningHeaders`: code 299 only, the text a
    quoted string with backslash escapes, several warnings per header separated by commas)."""
    out: List[str] = []
    for value in values:
        i = 0
        while i < len(value):
            m = _WARNING.match(value, i)
            if m is None:
                break
            if m.group(1) == "299":
                out.append(re.sub(r"\\(.)", r"\1", m.group(2)))
            i = m.end()
    return out


_WARNING = re.compile(r'\s*(\d{3})\s+\S+\s+"((?:[^"\\]|\\.)*)"(?:\s+"[^"]*")?\s*,?')
