"""A sidecar proxy in the Istio style: accepts what the nat rules REDIRECT to --outbound-port (15001) and
--inbound-port (15006), reads the original destination with getsockopt(SOL_IP, SO_ORIGINAL_DST) and connects
there, relaying both ways. It must run as uid 1337: the rules exempt that uid, so its own upstream connections
are not redirected back to itself. Inbound upstreams bind 127.0.0.6 (Envoy's inbound passthrough address),
which the rules also exempt."""
import argparse
import json
import os
import socket
import struct
import threading

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h


def original_dst(conn: socket.socket):
    raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, addr = struct.unpack_from("!2xH4s", raw)
    return socket.inet_ntoa(addr), port


def pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def handle(conn: socket.socket, inbound: bool) -> None:
    try:
        ip, port = original_dst(conn)
        up = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if inbound:
            up.bind(("127.0.0.6", 0))
        up.settimeout(5)
        up.connect((ip, port))
        up.settimeout(None)
    except OSError:
        conn.close()
        return
    # one line per relay, the proxy's own account of which connection it carried on which (tests read it)
    peer, local = conn.getpeername(), up.getsockname()
    print(json.dumps({"relay": "inbound" if inbound else "outbound", "peer": f"{peer[0]}:{peer[1]}",
                      "upstream_local": f"{local[0]}:{local[1]}", "dst": f"{ip}:{port}"}), flush=True)
    t = threading.Thread(target=pipe, args=(up, conn), daemon=True)
    t.start()
    pipe(conn, up)
    t.join()
    conn.close()
    up.close()


def serve(port: int, inbound: bool) -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(128)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn, inbound), daemon=True).start()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--outbound-port", type=int, default=15001)
    ap.add_argument("--inbound-port", type=int, default=15006)
    args = ap.parse_args()
    print(f"proxy: pid {os.getpid()} uid {os.getuid()} outbound :{args.outbound_port} inbound :{args.inbound_port}",
          flush=True)
    threading.Thread(target=serve, args=(args.inbound_port, True), daemon=True).start()
    serve(args.outbound_port, False)


if __name__ == "__main__":
    main()
