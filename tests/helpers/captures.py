"""Real captures for the analysis oracles: real tcpdump, real kernel TCP/UDP, in throw-away namespaces.

Every scenario builds its own namespaces with `NetLab("B")`, starts its servers (the programs in
tests/helpers/capture_programs.py print `ready` once they listen, so nothing waits on a sleep), starts
tcpdump (tests/helpers/capture_tools.py: `--immediate-mode -U -w FILE`, waits for its "listening on" line),
makes the traffic, waits until the file stops growing, then stops tcpdump with SIGINT to its PID.
A capture is recorded once per test session (`Recorder.get` caches by name); derived files (pcapng
conversion, merged multi-interface pcapng, a truncated copy) are made from recorded ones with
editcap/mergecap, and the replay_* files from the frames of a recorded one (see "replayed" below).
`python -m tests.helpers.captures DIR [SCENARIO ...]` records files to look at by hand.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from tests.helpers.capture_programs import HTTP_SERVER, TCP_CLIENT, TCP_SERVER, TUN_WIRE, UDP_CLIENT, UDP_SERVER
from tests.helpers.capture_replay import replayed
from tests.helpers.capture_tools import (CLIENT4, OVERLAY1, OVERLAY2, OVERLAY6_1, OVERLAY6_2, SERVER4, SERVER6,
                                 SERVER_BEHIND_ROUTER, Capture, Tcpdump, curl, routed, run_client, start_server,
                                 veth_pair, wait_closed)
from tests.helpers.netns import NetLab


# --- scenarios --------------------------------------------------------------------------------------

def rec_http_short(out: Path) -> Capture:
    """Three short HTTP/1.0 connections (python http.server + curl): SYN, request, response, FINs."""
    with NetLab("B") as lab:
        c, s = veth_pair(lab)
        start_server(s, HTTP_SERVER, SERVER4, "8080", "HTTP/1.0")
        td = Tcpdump(c, out)
        curl(c, *[f"http://{SERVER4}:8080/{n}" for n in (100, 2000, 30000)])
        td.stop()
    return Capture("http_short", out)


def rec_keepalive(out: Path) -> Capture:
    """Four requests on one HTTP/1.1 connection (curl reuses it)."""
    with NetLab("B") as lab:
        c, s = veth_pair(lab)
        start_server(s, HTTP_SERVER, SERVER4, "8080", "HTTP/1.1")
        td = Tcpdump(c, out)
        curl(c, *[f"http://{SERVER4}:8080/{n}" for n in (10, 5000, 100, 70000)])
        td.stop()
    return Capture("keepalive", out)


def rec_refused(out: Path) -> Capture:
    """Two connections to a closed port: SYN answered by RST,ACK."""
    with NetLab("B") as lab:
        c, _ = veth_pair(lab)
        td = Tcpdump(c, out)
        for _ in range(2):
            curl(c, f"http://{SERVER4}:81/", check=False)
        td.stop()
    return Capture("refused", out)


def rec_dropped_syn(out: Path) -> Capture:
    """SYN to a port the server's iptables DROPs: the kernel retransmits the SYN after 1 s."""
    with NetLab("B") as lab:
        c, s = veth_pair(lab)
        s.run(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "9", "-j", "DROP"])
        td = Tcpdump(c, out)
        run_client(c, TCP_CLIENT, SERVER4, "9", "connect-timeout")
        td.stop()
    return Capture("dropped_syn", out)


def rec_abort(out: Path) -> Capture:
    """The server reads the request and aborts with SO_LINGER 0 (RST)."""
    with NetLab("B") as lab:
        c, s = veth_pair(lab)
        start_server(s, TCP_SERVER, SERVER4, "7000", "abort")
        td = Tcpdump(c, out)
        run_client(c, TCP_CLIENT, SERVER4, "7000", "plain")
        td.stop()
    return Capture("abort", out)


def rec_loss(out: Path) -> Capture:
    """300 kB through a router dropping 10% of forwarded packets at random, captured at the client.

    The drop happens before the capture point, so the client side sees gaps (lost segments), the
    server's retransmissions (retransmission / out-of-order) and the client's duplicate ACKs.
    """
    with NetLab("B") as lab:
        c, r, s = routed(lab)
        # handshake packets are spared (--tcp-flags SYN NONE): a lost SYN costs 1 s, two cost 3 s
        # and curl's connect timeout; the transfer itself is what must see the loss
        r.run(["iptables", "-A", "FORWARD", "-p", "tcp", "--tcp-flags", "SYN", "NONE", "-m", "statistic",
               "--mode", "random", "--probability", "0.1", "-j", "DROP"])
        start_server(s, HTTP_SERVER, SERVER_BEHIND_ROUTER, "8080", "HTTP/1.0")
        td = Tcpdump(c, out)
        curl(c, f"http://{SERVER_BEHIND_ROUTER}:8080/300000", check=False)
        wait_closed(s, 8080)
        td.stop()
    return Capture("loss", out)


def rec_any_router(out: Path) -> Capture:
    """`tcpdump -i any` on a router: every forwarded packet is captured twice (in on eth0, out on
    eth1). tshark does not de-duplicate: the copies are retransmissions / duplicate ACKs to it."""
    with NetLab("B") as lab:
        c, r, s = routed(lab)
        start_server(s, HTTP_SERVER, SERVER_BEHIND_ROUTER, "8080", "HTTP/1.0")
        td = Tcpdump(r, out, iface="any", extra=("tcp",))
        curl(c, f"http://{SERVER_BEHIND_ROUTER}:8080/100", f"http://{SERVER_BEHIND_ROUTER}:8080/20000")
        td.stop()
    return Capture("any_router", out)


def rec_icmp_quote(out: Path) -> Capture:
    """The router rejects TCP to port 9 and UDP to port 5302 with ICMP port unreachable, and the
    client's capture filter hides the original SYN/datagram. tshark still puts each ICMP error into
    the stream of the TCP/UDP header it quotes (research §1.5), so the quoted SYN is tcp.stream 0, a
    stream of one ICMP frame, and the real HTTP stream after it is tcp.stream 1."""
    with NetLab("B") as lab:
        c, r, s = routed(lab)
        r.run(["iptables", "-A", "FORWARD", "-p", "tcp", "--dport", "9", "-j", "REJECT",
               "--reject-with", "icmp-port-unreachable"])
        r.run(["iptables", "-A", "FORWARD", "-p", "udp", "--dport", "5302", "-j", "REJECT",
               "--reject-with", "icmp-port-unreachable"])
        start_server(s, HTTP_SERVER, SERVER_BEHIND_ROUTER, "8080", "HTTP/1.0")
        start_server(s, UDP_SERVER, SERVER_BEHIND_ROUTER, "5301")
        td = Tcpdump(c, out, extra=("not", "(", "tcp", "port", "9", "or", "udp", "port", "5302", ")"))
        curl(c, f"http://{SERVER_BEHIND_ROUTER}:9/", check=False)
        run_client(c, UDP_CLIENT, SERVER_BEHIND_ROUTER, "5301", "5302")
        curl(c, f"http://{SERVER_BEHIND_ROUTER}:8080/100")
        td.stop()
    return Capture("icmp_quote", out)


def rec_reuse(out: Path) -> Capture:
    """One 4-tuple used twice after a normal close (the server's TIME_WAIT socket takes the new SYN),
    then another 4-tuple used twice after a client RST (no TIME_WAIT anywhere)."""
    with NetLab("B") as lab:
        c, s = veth_pair(lab)
        start_server(s, TCP_SERVER, SERVER4, "7000", "reply,reply,reply,reply")
        td = Tcpdump(c, out)
        run_client(c, TCP_CLIENT, SERVER4, "7000", "reuse-twice")
        run_client(c, TCP_CLIENT, SERVER4, "7000", "rst-reuse")
        td.stop()
    return Capture("reuse", out)


def rec_ipv6(out: Path) -> Capture:
    """Two HTTP/1.0 connections over IPv6."""
    with NetLab("B") as lab:
        c, s = veth_pair(lab, v6=True)
        start_server(s, HTTP_SERVER, SERVER6, "8080", "HTTP/1.0")
        td = Tcpdump(c, out)
        curl(c, f"http://[{SERVER6}]:8080/100", f"http://[{SERVER6}]:8080/9000")
        td.stop()
    return Capture("ipv6", out)


def rec_udp(out: Path) -> Capture:
    """UDP exchanges over IPv4 and IPv6, plus a datagram to a closed port (ICMP unreachable)."""
    with NetLab("B") as lab:
        c, s = veth_pair(lab, v6=True)
        start_server(s, UDP_SERVER, SERVER4, "5300")
        start_server(s, UDP_SERVER, SERVER6, "5300")
        td = Tcpdump(c, out)
        run_client(c, UDP_CLIENT, SERVER4, "5300", "5301")
        run_client(c, UDP_CLIENT, SERVER6, "5300", "5301")
        td.stop()
    return Capture("udp", out)


def _http_on_any(out: Path, extra: Sequence[str], name: str) -> Capture:
    with NetLab("B") as lab:
        c, s = veth_pair(lab)
        start_server(s, HTTP_SERVER, SERVER4, "8080", "HTTP/1.1")
        start_server(s, UDP_SERVER, SERVER4, "5301")
        td = Tcpdump(c, out, iface="any", extra=extra)
        curl(c, f"http://{SERVER4}:8080/100", f"http://{SERVER4}:8080/4000")
        run_client(c, UDP_CLIENT, SERVER4, "5301", "5302")
        td.stop()
    return Capture(name, out)


def rec_any_sll2(out: Path) -> Capture:
    """`tcpdump -i any` (LINUX_SLL2 with tcpdump 4.99 / libpcap 1.10)."""
    return _http_on_any(out, (), "any_sll2")


def rec_any_sll(out: Path) -> Capture:
    """`tcpdump -i any -y LINUX_SLL` (what older tcpdumps write)."""
    return _http_on_any(out, ("-y", "LINUX_SLL"), "any_sll")


def _vxlan(out: Path, port: int, name: str) -> Capture:
    """A kernel VXLAN tunnel (VNI 42) between two namespaces; HTTP and UDP over the overlay (IPv4 and,
    dual-stack, IPv6), captured on the underlay, so every segment is inside Ethernet/IPv4/UDP/VXLAN."""
    with NetLab("B") as lab:
        a, b = lab.ns("u1"), lab.ns("u2")
        lab.link(a, "eth0", CLIENT4 + "/24", b, "eth0", SERVER4 + "/24")
        for ns, local, remote, overlay, overlay6 in ((a, CLIENT4, SERVER4, OVERLAY1, OVERLAY6_1),
                                                     (b, SERVER4, CLIENT4, OVERLAY2, OVERLAY6_2)):
            ns.run(["ip", "link", "add", "vx0", "type", "vxlan", "id", "42", "dstport", str(port),
                    "local", local, "remote", remote, "dev", "eth0"])
            ns.run(["ip", "addr", "add", overlay + "/24", "dev", "vx0"])
            ns.run(["ip", "-6", "addr", "add", overlay6 + "/64", "dev", "vx0", "nodad"])
            ns.run(["ip", "link", "set", "vx0", "up"])
        start_server(b, HTTP_SERVER, OVERLAY2, "8080", "HTTP/1.0")
        start_server(b, HTTP_SERVER, OVERLAY6_2, "8080", "HTTP/1.0")
        start_server(b, UDP_SERVER, OVERLAY2, "5300")
        td = Tcpdump(a, out, extra=("udp", "port", str(port)))
        curl(a, f"http://{OVERLAY2}:8080/100", f"http://{OVERLAY2}:8080/3000", f"http://[{OVERLAY6_2}]:8080/2000")
        run_client(a, UDP_CLIENT, OVERLAY2, "5300", "5301")
        td.stop()
    args = ("-d", f"udp.port=={port},vxlan") if port != 4789 else ()
    return Capture(name, out, tshark_args=args,
                   notes="tshark decodes VXLAN only on 4789 by default; 8472 needs -d udp.port==8472,vxlan")


def rec_vxlan_4789(out: Path) -> Capture:
    return _vxlan(out, 4789, "vxlan_4789")


def rec_vxlan_8472(out: Path) -> Capture:
    return _vxlan(out, 8472, "vxlan_8472")


def rec_nano(out: Path) -> Capture:
    """`--time-stamp-precision=nano`: the a1b23c4d magic, nanosecond timestamps."""
    with NetLab("B") as lab:
        c, s = veth_pair(lab)
        start_server(s, HTTP_SERVER, SERVER4, "8080", "HTTP/1.0")
        td = Tcpdump(c, out, extra=("--time-stamp-precision=nano",))
        curl(c, f"http://{SERVER4}:8080/100", f"http://{SERVER4}:8080/1500")
        td.stop()
    return Capture("nano", out)


def rec_zero_window(out: Path) -> Capture:
    """A receiver with a 2 kB SO_RCVBUF that stops reading for 0.8 s: window 0 and window probes."""
    with NetLab("B") as lab:
        c, s = veth_pair(lab)
        start_server(s, TCP_SERVER, SERVER4, "7000", "stall")
        td = Tcpdump(c, out)
        run_client(c, TCP_CLIENT, SERVER4, "7000", "bulk")
        td.stop()
    return Capture("zero_window", out)


def rec_midstream(out: Path) -> Capture:
    """tcpdump starts after the handshake: no SYN in the file (tshark: base seq = first seq - 1,
    client = first sender; Zeek: both endpoints go INACTIVE -> PARTIAL)."""
    with NetLab("B") as lab:
        c, s = veth_pair(lab)
        start_server(s, TCP_SERVER, SERVER4, "7000", "wait-eof")
        client = c.popen([sys.executable, "-c", TCP_CLIENT, SERVER4, "7000", "midstream"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        if client.stdout.readline().strip() != b"connected":
            raise RuntimeError("midstream client did not connect")
        td = Tcpdump(c, out)
        client.stdin.write(b"go\n")
        client.stdin.close()
        if client.wait(timeout=10) != 0:
            raise RuntimeError("midstream client failed")
        td.stop()
    return Capture("midstream", out)


def rec_tcp_keepalive(out: Path) -> Capture:
    """An idle connection with SO_KEEPALIVE (idle 1 s, interval 1 s): keep-alive probes and their ACKs."""
    with NetLab("B") as lab:
        c, s = veth_pair(lab)
        start_server(s, TCP_SERVER, SERVER4, "7000", "hold")
        td = Tcpdump(c, out)
        run_client(c, TCP_CLIENT, SERVER4, "7000", "keepalive-probes")
        td.stop()
    return Capture("tcp_keepalive", out)


def rec_no_syn(out: Path) -> Capture:
    """A capture filter that hides pure SYNs (`tcp[tcpflags] & (tcp-syn|tcp-ack) != tcp-syn`): each
    stream starts with the server's SYN-ACK, the case where tshark takes the client's base seq from
    the first ACK and the contract's client is the first sender. Server port 47000 is not a port any
    Zeek analyzer registers (no likely-server-port flip when the connection is created)."""
    with NetLab("B") as lab:
        c, s = veth_pair(lab)
        start_server(s, HTTP_SERVER, SERVER4, "47000", "HTTP/1.0")
        td = Tcpdump(c, out, extra=("tcp[tcpflags] & (tcp-syn|tcp-ack) != tcp-syn",))
        curl(c, f"http://{SERVER4}:47000/100", f"http://{SERVER4}:47000/3000")
        td.stop()
    return Capture("no_syn", out)


def rec_tun_raw(out: Path) -> Capture:
    """HTTP over two TUN devices joined by a user-space wire, captured on tun0: LINKTYPE_RAW."""
    if not Path("/dev/net/tun").exists():
        import pytest

        pytest.skip("needs /dev/net/tun for the LINKTYPE_RAW capture (a TUN device)")
    with NetLab("B") as lab:
        c, s = lab.ns("tc"), lab.ns("ts")
        for ns in (c, s):
            ns.run(["ip", "tuntap", "add", "tun0", "mode", "tun"])
        start_server(c, TUN_WIRE, c.name, s.name)
        for ns, addr in ((c, CLIENT4), (s, SERVER4)):
            ns.run(["ip", "addr", "add", addr + "/24", "dev", "tun0"])
            ns.run(["ip", "link", "set", "tun0", "up"])
        start_server(s, HTTP_SERVER, SERVER4, "8080", "HTTP/1.0")
        td = Tcpdump(c, out, iface="tun0")
        curl(c, f"http://{SERVER4}:8080/100", f"http://{SERVER4}:8080/5000")
        td.stop()
    return Capture("tun_raw", out)


def rec_pipe(out: Path) -> Capture:
    """`tcpdump -U -w -` to a pipe, as `capture` streams it from the pod: the chunks as read (record
    boundaries fall anywhere) are kept for the analyser, the same bytes go to the file for tshark."""
    with NetLab("B") as lab:
        c, s = veth_pair(lab)
        start_server(s, HTTP_SERVER, SERVER4, "8080", "HTTP/1.1")
        td = Tcpdump(c, out, pipe=True)
        curl(c, *[f"http://{SERVER4}:8080/{n}" for n in (100, 60000, 3000)])
        curl(c, f"http://{SERVER4}:8080/500")
        td.stop()
    return Capture("pipe", out, chunks=td.chunks)


def rec_nflog(out: Path) -> Capture:
    """`tcpdump -i nflog:5` in the client's namespace, where iptables' NFLOG target logs every TCP
    packet it sends (OUTPUT) and receives (INPUT): LINKTYPE_NFLOG, what a node's NFLOG rules give."""
    with NetLab("B") as lab:
        c, s = veth_pair(lab)
        for chain in ("OUTPUT", "INPUT"):
            c.run(["iptables", "-A", chain, "-p", "tcp", "-j", "NFLOG", "--nflog-group", "5", "--nflog-prefix",
                   f"whose-{chain.lower()}"])
        start_server(s, HTTP_SERVER, SERVER4, "8080", "HTTP/1.0")
        td = Tcpdump(c, out, iface="nflog:5")
        curl(c, f"http://{SERVER4}:8080/100", f"http://{SERVER4}:8080/3000")
        td.stop()
    return Capture("nflog", out)


# --- derived files ----------------------------------------------------------------------------------

def derive_pcapng(rec: "Recorder", out: Path) -> Capture:
    """`editcap -F pcapng` of the short-HTTP capture."""
    subprocess.run(["editcap", "-F", "pcapng", str(rec.get("http_short").path), str(out)], check=True,
                   capture_output=True)
    return Capture("pcapng", out)


def derive_pcapng_nano(rec: "Recorder", out: Path) -> Capture:
    """`editcap -F pcapng` of the nanosecond capture: an interface block with if_tsresol = 9."""
    subprocess.run(["editcap", "-F", "pcapng", str(rec.get("nano").path), str(out)], check=True,
                   capture_output=True)
    return Capture("pcapng_nano", out)


def derive_pcapng_multi(rec: "Recorder", out: Path) -> Capture:
    """`mergecap -F pcapng` of an Ethernet and an SLL2 capture: two interface blocks, two link types."""
    subprocess.run(["mergecap", "-F", "pcapng", "-w", str(out), str(rec.get("http_short").path),
                    str(rec.get("any_sll2").path)], check=True, capture_output=True)
    return Capture("pcapng_multi", out)


def derive_truncated(rec: "Recorder", out: Path) -> Capture:
    """The keep-alive capture cut in the middle of its last record (a `tcpdump -w -` killed mid-write)."""
    data = rec.get("keepalive").path.read_bytes()
    out.write_bytes(data[: len(data) - 25])
    return Capture("truncated", out, truncated=True)


RECORDED: Dict[str, Callable[[Path], Capture]] = {
    "http_short": rec_http_short,
    "keepalive": rec_keepalive,
    "refused": rec_refused,
    "dropped_syn": rec_dropped_syn,
    "abort": rec_abort,
    "loss": rec_loss,
    "reuse": rec_reuse,
    "ipv6": rec_ipv6,
    "udp": rec_udp,
    "any_sll2": rec_any_sll2,
    "any_sll": rec_any_sll,
    "vxlan_4789": rec_vxlan_4789,
    "vxlan_8472": rec_vxlan_8472,
    "nano": rec_nano,
    "zero_window": rec_zero_window,
    "midstream": rec_midstream,
    "tcp_keepalive": rec_tcp_keepalive,
    "tun_raw": rec_tun_raw,
    "any_router": rec_any_router,
    "icmp_quote": rec_icmp_quote,
    "pipe": rec_pipe,
    "no_syn": rec_no_syn,
    "nflog": rec_nflog,
}
DERIVED: Dict[str, Callable[["Recorder", Path], Capture]] = {
    "pcapng": derive_pcapng,
    "pcapng_multi": derive_pcapng_multi,
    "pcapng_nano": derive_pcapng_nano,
    **{f"replay_{kind}": (lambda rec, out, kind=kind: replayed(rec.get("http_short").path, out, kind))
       for kind in ("vlan", "qinq", "ipip", "gre", "geneve", "mpls_vlan", "pppoe_qinq", "pbb", "vntag")},
    "truncated": derive_truncated,
}
SCENARIOS: List[str] = [*RECORDED, *DERIVED]


class Recorder:
    """Records each scenario at most once (per test session) into `workdir`."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._cache: Dict[str, Capture] = {}

    def get(self, name: str) -> Capture:
        if name not in self._cache:
            ext = "pcapng" if name.startswith("pcapng") else "pcap"
            out = self.workdir / f"{name}.{ext}"
            if name in RECORDED:
                self._cache[name] = RECORDED[name](out)
            else:
                self._cache[name] = DERIVED[name](self, out)
        return self._cache[name]


def recording_unavailable_reason() -> Optional[str]:
    from tests.helpers.netns import netns_unavailable_reason

    reason = netns_unavailable_reason()
    if reason:
        return reason
    tools = ("tcpdump", "tshark", "editcap", "mergecap", "curl", "iptables", "ethtool")
    missing = [t for t in tools if not shutil.which(t)]
    return f"needs {', '.join(missing)} installed (.ci/run installs it)" if missing else None


if __name__ == "__main__":  # python -m tests.helpers.captures DIR [SCENARIO ...]: record files to look at by hand
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "captures")
    rec = Recorder(target)
    for scenario in sys.argv[2:] or SCENARIOS:
        t0 = time.time()
        cap = rec.get(scenario)
        print(f"{scenario:14s} {time.time() - t0:5.2f}s {cap.path}  {' '.join(cap.tshark_args)}")
