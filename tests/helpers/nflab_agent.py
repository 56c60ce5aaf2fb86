"""A tiny server/client for the netfilter lab: run inside a network namespace by the kernel tests.

    python3 nflab_agent.py serve NAME --tcp 15001,8080 --udp 15053 [--transparent]
        binds 0.0.0.0 on each port, prints "ready" once all are bound; every TCP connection gets one JSON
        line {"name", "listen_port", "local", "peer", "orig_dst"} (orig_dst = getsockopt SO_ORIGINAL_DST);
        every UDP datagram gets the same JSON back, with "local" = the datagram's header destination
        (IP_PKTINFO), which is what a REDIRECT rewrote it to.
    python3 nflab_agent.py connect tcp|udp IP PORT [--count N] [--timeout S] [--mark 0x539]
        prints one JSON list: per attempt {"result": "ok", "reply": {...}} or {"result": "timeout"|"refused"|...}
    python3 nflab_agent.py probes < [{"proto", "ip", "port", "src", "sport", "mark", "count", "timeout"}, ...]
        the same for several destinations at once (bound to src:sport when given): a JSON list of such lists
    python3 nflab_agent.py invalid SRC DST PORT TIMEOUT
        sends a lone TCP ACK from SRC (a raw socket) and prints {"result": "rst"} when DST answers with a RST

Test code only; standalone (no imports from the project) so it runs under `setpriv --reuid`.
"""
import json
import selectors
import socket
import struct
import sys

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h
IP_PKTINFO = 8
IP_TRANSPARENT = 19  # linux/in.h: accept connections TPROXY steers to this socket


def _addr(a):
    return f"[{a[0]}]:{a[1]}" if ":" in a[0] else f"{a[0]}:{a[1]}"


def _original_dst(conn):
    """SO_ORIGINAL_DST (IPv4) / IP6T_SO_ORIGINAL_DST (IPv6): where the client sent it, before NAT."""
    try:
        if conn.family == socket.AF_INET6:
            raw = conn.getsockopt(socket.IPPROTO_IPV6, SO_ORIGINAL_DST, 28)
            return f"[{socket.inet_ntop(socket.AF_INET6, raw[8:24])}]:{struct.unpack('!H', raw[2:4])[0]}"
        raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
        return f"{socket.inet_ntoa(raw[4:8])}:{struct.unpack('!H', raw[2:4])[0]}"
    except OSError:
        return None


def serve(name, tcp_ports, udp_ports, transparent=False):
    sel = selectors.DefaultSelector()
    for port in tcp_ports:
        for family, any_addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if transparent and family == socket.AF_INET:
                s.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
            s.bind((any_addr, port))
            s.listen(512)
            sel.register(s, selectors.EVENT_READ, ("tcp", port))
    for port in udp_ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_IP, IP_PKTINFO, 1)
        s.bind(("0.0.0.0", port))
        sel.register(s, selectors.EVENT_READ, ("udp", port))
    print("ready", flush=True)
    while True:
        for key, _ in sel.select():
            kind, port = key.data
            if kind == "tcp":
                conn, peer = key.fileobj.accept()
                orig = _original_dst(conn)
                reply = {"name": name, "listen_port": port, "local": _addr(conn.getsockname()),
                         "peer": _addr(peer), "orig_dst": orig}
                try:
                    conn.sendall((json.dumps(reply) + "\n").encode())
                finally:
                    conn.close()
            else:
                data, anc, _, peer = key.fileobj.recvmsg(2048, socket.CMSG_SPACE(12))
                local, anc_out = None, []
                for level, typ, cdata in anc:
                    if level == socket.SOL_IP and typ == IP_PKTINFO:
                        local = f"{socket.inet_ntoa(cdata[8:12])}:{port}"
                        # answer from the address the datagram was sent to, as DNS servers do, so conntrack
                        # maps the reply back through the REDIRECT
                        anc_out = [(socket.SOL_IP, IP_PKTINFO, struct.pack("=I4s4s", 0, cdata[8:12], b"\0" * 4))]
                reply = {"name": name, "listen_port": port, "local": local, "peer": _addr(peer), "orig_dst": None}
                key.fileobj.sendmsg([(json.dumps(reply) + "\n").encode()], anc_out, 0, peer)


def connect(proto, ip, port, count, timeout, mark=0, src=None, sport=None, out=True):
    results = []
    for _ in range(count):
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
        if mark:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, mark)  # as ztunnel marks its own sockets
        s.settimeout(timeout)
        try:
            if src or sport:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((src or ("::" if family == socket.AF_INET6 else "0.0.0.0"), sport or 0))
            s.connect((ip, port))
            if proto == "udp":
                try:
                    s.send(b"q")
                except PermissionError:
                    pass  # netfilter dropped it in OUTPUT; a REJECT's ICMP error still reaches recv() below
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            if not data:
                results.append({"result": "closed without an answer"})
            else:
                results.append({"result": "ok", "reply": json.loads(data.decode())})
        except socket.timeout:
            results.append({"result": "timeout"})
        except ConnectionRefusedError:
            results.append({"result": "refused"})
        except ConnectionResetError:  # connected, then a RST (e.g. REJECT --reject-with tcp-reset of later packets)
            results.append({"result": "reset"})
        except OSError as e:
            import errno

            unreachable = e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES)
            results.append({"result": "unreachable" if unreachable else f"error: {e}"})
        finally:
            s.close()
    if out:
        print(json.dumps(results), flush=True)
    return results


def probes(batch):
    """Several connects in one process: [{"proto", "ip", "port", "src", "sport", "mark", "count", "timeout"}]."""
    return [connect(p["proto"], p["ip"], p["port"], p.get("count", 1), p.get("timeout", 1.0), p.get("mark", 0),
                    p.get("src"), p.get("sport"), out=False) for p in batch]


def _checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def invalid(src, dst, port, timeout):
    """A lone TCP ACK (no connection: conntrack calls it INVALID when nf_conntrack_tcp_loose is 0); the
    destination's stack answers it with a RST unless a rule drops it. Prints {"result": "rst"|"timeout"}."""
    import os
    import time

    sport = 40000 + os.getpid() % 20000
    seq, ack = 0x12345678, 0x9ABCDEF0
    header = struct.pack("!HHIIBBHHH", sport, port, seq, ack, 5 << 4, 0x10, 1024, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(header))
    header = header[:16] + struct.pack("!H", _checksum(pseudo + header)) + header[18:]
    rx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    rx.settimeout(0.1)
    tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    tx.bind((src, 0))
    tx.sendto(header, (dst, 0))
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            packet = rx.recv(4096)
        except socket.timeout:
            continue
        ihl = (packet[0] & 0x0F) * 4
        psrc, pdst, flags = struct.unpack("!HH", packet[ihl:ihl + 4]) + (packet[ihl + 13],)
        if socket.inet_ntoa(packet[12:16]) == dst and psrc == port and pdst == sport and flags & 0x04:
            print(json.dumps({"result": "rst"}), flush=True)
            return
    print(json.dumps({"result": "timeout"}), flush=True)


def _ports(text):
    return [int(p) for p in text.split(",") if p]


def main(argv):
    if argv[0] == "serve":
        name, args = argv[1], argv[2:]
        tcp = _ports(args[args.index("--tcp") + 1]) if "--tcp" in args else []
        udp = _ports(args[args.index("--udp") + 1]) if "--udp" in args else []
        serve(name, tcp, udp, "--transparent" in args)
    elif argv[0] == "connect":
        proto, ip, port, args = argv[1], argv[2], int(argv[3]), argv[4:]
        count = int(args[args.index("--count") + 1]) if "--count" in args else 1
        timeout = float(args[args.index("--timeout") + 1]) if "--timeout" in args else 2.0
        mark = int(args[args.index("--mark") + 1], 0) if "--mark" in args else 0
        connect(proto, ip, port, count, timeout, mark)
    elif argv[0] == "probes":
        print(json.dumps(probes(json.loads(sys.stdin.read()))), flush=True)
    elif argv[0] == "invalid":
        invalid(argv[1], argv[2], int(argv[3]), float(argv[4]))


if __name__ == "__main__":
    main(sys.argv[1:])
