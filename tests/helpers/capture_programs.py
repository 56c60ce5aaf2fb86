"""The programs the capture scenarios run inside network namespaces (fixed test code, never user input).

Each server prints `ready` once it listens, so the recorder waits on that line, not on a sleep.
"""
HTTP_SERVER = r"""
import http.server, socket, sys
addr, port, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = proto
    def do_GET(self):
        body = b"x" * int(self.path.strip("/") or "100")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    allow_reuse_address = True
srv = Server((addr, port), Handler)
print("ready", flush=True)
srv.serve_forever()
"""

# Scripted TCP server: one behaviour per connection, in order, so the packet sequence is deterministic
# enough to write Zeek's history down by hand. Behaviours:
#   reply  - read the request, wait 100 ms (our pure ACK goes out first), send 200 bytes, close
#   abort  - read the request, wait 100 ms, close with SO_LINGER 0 (RST)
#   stall  - tiny receive buffer, do not read for 0.8 s (peer sees a zero window), then drain and close
#   hold   - read until the client closes, then close
#   wait-eof - read the request, wait 100 ms, send 200 bytes, close only after the client closed
TCP_SERVER = r"""
import socket, struct, sys, time
addr, port, behaviours = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
ls = socket.socket(fam, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if "stall" in behaviours:
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
ls.bind((addr, port))
ls.listen(16)
print("ready", flush=True)
for b in behaviours:
    c, _ = ls.accept()
    if b in ("stall", "hold"):
        time.sleep(0.8 if b == "stall" else 0)
        while c.recv(65536):
            pass
        c.close()
        continue
    if b == "wait-eof":  # reply, then let the client close first
        c.recv(65536)
        time.sleep(0.1)
        c.sendall(b"y" * 200)
        while c.recv(65536):
            pass
        c.close()
        continue
    c.recv(65536)
    time.sleep(0.1)  # long enough for a client that aborts (after 10 ms) to do so before we reply
    if b == "abort":
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    else:
        try:
            c.sendall(b"y" * 200)
        except OSError:  # the client already aborted (rst-reuse)
            pass
    c.close()
"""

# Scripted TCP client: connect (optionally from a fixed source port), send, read to EOF, close.
# modes: plain | reuse-twice (same source port twice; the server closes first, so the SECOND SYN
# meets the server's TIME_WAIT socket) | rst-reuse (client aborts with RST, then reuses the port:
# no TIME_WAIT anywhere) | connect-timeout (SYN to a dropped port, gives up after 1.3 s) | bulk
TCP_CLIENT = r"""
import socket, struct, sys, time
addr, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
def one(sport=0, abort=False, payload=b"hello\n"):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if sport:
        s.bind(("", sport))
    s.connect((addr, port))
    s.sendall(payload)
    if abort:
        time.sleep(0.01)  # the server's ACK is back within microseconds on a veth; its reply is not (100 ms)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        return
    s.shutdown(socket.SHUT_WR) if mode == "bulk" else None
    try:
        while s.recv(65536):
            pass
    except ConnectionResetError:
        pass
    s.close()
if mode == "plain":
    one()
elif mode == "reuse-twice":
    one(41000)
    time.sleep(0.05)
    one(41000)
elif mode == "rst-reuse":
    one(41001, abort=True)
    time.sleep(0.05)
    one(41001)
elif mode == "connect-timeout":
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(1.3)
    try:
        s.connect((addr, port))
    except OSError:
        pass
    s.close()
elif mode == "bulk":
    one(payload=b"z" * 300000)
elif mode == "midstream":  # connect, then wait for the go line on stdin (tcpdump starts in between)
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.connect((addr, port))
    print("connected", flush=True)
    sys.stdin.readline()
    s.sendall(b"hello\n")
    got = b""
    while len(got) < 200:
        got += s.recv(65536)
    time.sleep(0.05)  # our ACK of the reply goes out (delayed ACK is at most 40 ms) before our FIN
    s.close()
elif mode == "keepalive-probes":  # idle with TCP keep-alive at 1 s: two probes, each ACKed
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
    s.connect((addr, port))
    time.sleep(2.4)
    s.close()
"""

# A user-space wire between two TUN devices (one per namespace), like a WireGuard or tun-based CNI
# link: capturing on tun0 gives LINKTYPE_RAW (101) frames, IP with no link header. The process
# enters each namespace with setns(2) (os.setns needs Python 3.12) to attach to its tun0.
TUN_WIRE = r"""
import ctypes, fcntl, os, select, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
def attach(netns):
    fd = os.open("/run/netns/" + netns, os.O_RDONLY)
    if libc.setns(fd, 0x40000000) != 0:
        raise OSError(ctypes.get_errno(), "setns " + netns)
    os.close(fd)
    tun = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(tun, 0x400454CA, struct.pack("16sH", b"tun0", 0x0001 | 0x1000))  # TUNSETIFF, IFF_TUN|IFF_NO_PI
    return tun
a, b = attach(sys.argv[1]), attach(sys.argv[2])
print("ready", flush=True)
peer = {a: b, b: a}
while True:
    for fd in select.select([a, b], [], [])[0]:
        packet = os.read(fd, 65536)
        try:
            os.write(peer[fd], packet)
        except OSError:  # EIO while the far tun0 is still down: the wire drops it, as a real link would
            pass
"""

UDP_SERVER = r"""
import socket, sys
addr, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((addr, port))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(65536)
    s.sendto(data.upper() * 2, peer)
"""

# Two client sockets (two udp streams) and one datagram to a closed port (an ICMP port unreachable
# that quotes the UDP header: tshark gives it a udp.stream but keeps it out of its conversations).
UDP_CLIENT = r"""
import socket, sys
addr, port, closed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
for count in (3, 2):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(2)
    for i in range(count):
        s.sendto(b"datagram %d" % i, (addr, port))
        s.recvfrom(65536)
    s.close()
s = socket.socket(fam, socket.SOCK_DGRAM)
s.sendto(b"nobody home", (addr, closed))
"""

# Sends length-prefixed Ethernet frames from a file out of an interface (AF_PACKET), in order: how
# the replay scenarios put recorded frames, re-encapsulated, on a real wire for tcpdump to capture.
FRAME_SENDER = r"""
import socket, struct, sys
path, ifname = sys.argv[1], sys.argv[2]
data = open(path, "rb").read()
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
pos = 0
while pos < len(data):
    n = struct.unpack_from("<I", data, pos)[0]
    s.send(data[pos + 4:pos + 4 + n])
    pos += 4 + n
"""
