"""The echo Service's endpoint: HTTP on --port; answers who it is and who called (the peer after kube-proxy's
DNAT, so tests can see which endpoint served and whether the source was masqueraded). POST bodies are echoed."""
import argparse
import os
import socket
from http.server import BaseHTTPRequestHandler
from socketserver import ThreadingTCPServer


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self, extra: bytes = b"") -> None:
        body = (f"pod={socket.gethostname()} addr={self.connection.getsockname()[0]} "
                f"peer={self.client_address[0]}:{self.client_address[1]} path={self.path}\n").encode() + extra
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._answer()

    def do_POST(self):
        self._answer(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def log_message(self, *args):
        pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8080)
    args = ap.parse_args()
    # Not http.server.HTTPServer: its server_bind() asks DNS for getfqdn(), which a pod without DNS waits out.
    ThreadingTCPServer.allow_reuse_address = True
    ThreadingTCPServer.daemon_threads = True
    srv = ThreadingTCPServer(("0.0.0.0", args.port), Echo)
    print(f"echo: pid {os.getpid()} listening on :{args.port}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
