"""Traffic generator (the sidecar pod's "app"): GET --url every --interval seconds, for at most --max-seconds,
each request bounded by a 2 s timeout. One line per request on stdout (the container log).
With --serve-port it also answers HTTP there (the app's inbound side, which Istio's rules send via 15006)."""
import argparse
import socket
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler
from socketserver import ThreadingTCPServer


class App(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = (f"app={socket.gethostname()} addr={self.connection.getsockname()[0]} "
                f"peer={self.client_address[0]}:{self.client_address[1]} path={self.path}\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", help="What to GET; without it the app only serves --serve-port.")
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--max-seconds", type=float, default=3600)
    ap.add_argument("--serve-port", type=int, default=0)
    args = ap.parse_args()
    if args.serve_port:
        # Not http.server.HTTPServer: its server_bind() asks DNS for getfqdn() (no DNS in the lab's pods).
        ThreadingTCPServer.allow_reuse_address = True
        ThreadingTCPServer.daemon_threads = True
        srv = ThreadingTCPServer(("0.0.0.0", args.serve_port), App)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    end = time.monotonic() + args.max_seconds
    if not args.url:
        time.sleep(args.max_seconds)
        return
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < end:
        try:
            with opener.open(args.url, timeout=2) as r:
                print(r.read().decode(errors="replace").strip(), flush=True)
        except OSError as e:
            print(f"error: {e}", flush=True)
        time.sleep(args.interval)


if __name__ == "__main__":
    main()
