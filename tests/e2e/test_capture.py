"""`kubectl whose capture` end to end in the lab: real API server, real exec WebSocket, real tcpdump, real traffic.

Oracles: tshark on the very file the capture wrote (stream table and handshake flags), sha256 of the copy tcpdump
wrote inside the pod, `ps` inside the pod (nothing left running), the pod's spec (no new container on reuse).
"""
import hashlib
import json
import os
import re
import signal
import subprocess
import time

import pytest

from kubectl_whose.errors import ExitCode
from tests.helpers.cli import run
from tests.helpers.netns import requires_tools

pytestmark = [requires_tools("tcpdump", "tshark", "curl"), pytest.mark.usefixtures("echo_ready")]

POD = "app-sidecar"


@pytest.fixture(scope="module")
def echo_ready(lab):
    """The echo Service answers (a freshly started lab may still be starting its servers)."""
    deadline = time.monotonic() + 30
    url = f"http://{lab.service_ip}:{lab.service_port}/"
    while lab.netns_run("client", ["curl", "-s", "-m", "2", "-o", "/dev/null", url]).returncode != 0:
        assert time.monotonic() < deadline, "the lab's echo Service does not answer"
        time.sleep(0.2)








def tshark_streams(path):
    """tcp.stream -> (ends, frames, flags), from tshark. An ICMP error quoting a TCP header is a frame of that
    header's tcp.stream (the summary counts it there too, README); its ends are the quoted header's, the last of
    the addresses tshark lists (outer first, then inner)."""
    out = subprocess.run(["tshark", "-r", str(path), "-Y", "tcp", "-T", "fields",
                          "-e", "tcp.stream", "-e", "ip.src",
                          "-e", "tcp.srcport", "-e", "ip.dst", "-e", "tcp.dstport", "-e", "tcp.flags"],
                         capture_output=True, text=True, check=True).stdout
    streams = {}
    for line in out.splitlines():
        idx, src, sport, dst, dport, flags = (f.split(",")[-1] for f in line.split("\t"))
        s = streams.setdefault(int(idx), {"ends": {f"{src}:{sport}", f"{dst}:{dport}"}, "frames": 0, "flags": []})
        s["frames"] += 1
        s["flags"].append(int(flags, 16))
    return streams


def debug_processes(lab, pattern="tcpdump"):
    out = lab.pod_run(POD, ["ps", "-eo", "pid,args"]).stdout
    return [ln for ln in out.splitlines() if pattern in ln and "ps -eo" not in ln]


def ephemeral_names(lab, pod=POD):
    return [c.name for c in (lab.core_v1().read_namespaced_pod(pod, lab.namespace).spec.ephemeral_containers or [])]


def test_acceptance_sidecar_streams_match_tshark(lab, tmp_path):
    out = tmp_path / "sidecar.pcap"
    r = lab.whose("capture", POD, "-i", "any", "--duration", "5s", "-w", str(out), "-o", "json")
    assert r.code == 0, r.stderr
    summary = r.json
    app = lab.pods[POD].ip
    svc = f"{lab.service_ip}:{lab.service_port}"
    ours = {s["index"]: s for s in summary["streams"] if s["proto"] == "tcp"}
    theirs = tshark_streams(out)
    # the same streams, ends and frame counts as tshark on the same file
    assert set(ours) == set(theirs)
    for idx, s in ours.items():
        assert {s["client"], s["server"]} == theirs[idx]["ends"], idx
        assert s["packets"] == theirs[idx]["frames"], idx
    # the talk's three kinds of stream
    to_proxy = [s for s in ours.values() if s["server"] == "127.0.0.1:15001" and s["client"].startswith(app + ":")]
    assert to_proxy, "the app's redirected stream to the sidecar on 127.0.0.1:15001"
    app_ports = {s["client"].rsplit(":", 1)[1] for s in to_proxy}
    replies = [s for s in ours.values() if svc in (s["client"], s["server"])
               and {s["client"], s["server"]} & {f"{app}:{p}" for p in app_ports}]
    assert replies, "the reply stream from the original destination to the app's port"
    upstream = [s for s in ours.values() if s["server"] == svc and s["client"].startswith(app + ":")
                and s["client"].rsplit(":", 1)[1] not in app_ports and s["flags"]["SYN"] >= 1]
    assert upstream, "the proxy's own upstream stream to the Service"
    assert "capture running" in r.stderr


def test_stream_flag_table_shows_the_handshake(lab, tmp_path):
    out = tmp_path / "hs.pcap"
    # the proxy's upstream connection on eth0 has the whole handshake (on lo the SYN-ACK of a redirected
    # connection carries the original destination as source, so it lands in another stream: the talk's point)
    r = lab.whose("capture", POD, "-i", "eth0", "-f", "tcp port 80", "--duration", "3s", "--stream", "1",
              "-w", str(out), "-o", "json")
    assert r.code == 0, r.stderr
    detail = r.json["detail"]
    assert detail["index"] == 1
    flags = [p["flags_hex"] for p in detail["packets"]]
    assert flags[:3] == ["0x002", "0x012", "0x010"]
    assert [int(f, 16) for f in flags] == tshark_streams(out)[1]["flags"]
    # the saved file analysed offline gives the very same detail (one code path, live and offline)
    offline = run("analyze", str(out), "--stream", "1", "-o", "json")
    assert offline.code == 0, offline.stderr
    assert offline.json["detail"] == detail
    table = run("analyze", str(out), "--stream", "1")
    assert "SYN,ACK 0x012" in table.stdout


def test_write_file_is_byte_identical_to_tcpdumps_own_copy(lab, tmp_path):
    """The exact pipeline `capture -w` uses (exec stream -> Tee), with tcpdump's output also tee'd inside."""
    from kubectl_whose.analysis.streams import CaptureAnalyzer
    from kubectl_whose.collect.capture import RemoteCapture, Tee as PcapSink
    from kubectl_whose.collect.tcpdump import CaptureRecipe
    from kubectl_whose.cli.options import KubeFlags
    from kubectl_whose.cluster.session import open_debug_session

    out = tmp_path / "copy.pcap"
    kube = KubeFlags(None, None, str(lab.kubeconfig), 30.0)
    script = 'echo "$$" >&2; tcpdump -U -w - "$@" | tee /tmp/whose-copy.pcap'
    with open_debug_session(kube, POD, say=None) as session:
        sink = PcapSink(str(out), CaptureAnalyzer())
        RemoteCapture(session, CaptureRecipe("any", count=300), sink, time.monotonic(),
                      argv=["sh", "-c", script, "sh", "-i", "any", "-c", "300"]).run(30)
        sink.close()
        remote = session.run(["sha256sum", "/tmp/whose-copy.pcap"]).stdout.split()[0].decode()
    assert sink.bytes > 300 * 40
    assert hashlib.sha256(out.read_bytes()).hexdigest() == remote


def test_write_dash_pipes_raw_pcap_into_tshark(lab):
    cli = lab.popen_whose("capture", POD, "-i", "any", "--count", "30", "-w", "-", stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE)
    tshark = subprocess.run(["tshark", "-r", "-", "-T", "fields", "-e", "frame.number"], stdin=cli.stdout,
                            capture_output=True, text=True, timeout=60)
    cli.stdout.close()
    err = cli.stderr.read().decode()
    assert cli.wait(timeout=30) == 0, err
    assert tshark.returncode == 0, tshark.stderr
    assert len(tshark.stdout.split()) == 30
    assert "capture running" in err  # messages went to stderr, stdout was pure pcap
    assert not debug_processes(lab)


def test_reuse_adds_no_container_and_starts_within_a_second(lab):
    first = lab.whose("capture", POD, "-i", "lo", "--count", "2")
    assert first.code == 0, first.stderr
    before = ephemeral_names(lab)
    second = lab.whose("capture", POD, "-i", "lo", "--count", "2")
    assert second.code == 0, second.stderr
    assert ephemeral_names(lab) == before
    m = re.search(r"capture running in (whose-\w+) \(reused debug container\) after ([\d.]+) s", second.stderr)
    assert m, second.stderr
    assert m.group(1) in before
    assert float(m.group(2)) <= 1.0


@pytest.mark.parametrize("args", [["--duration", "2s"], ["--count", "5"]], ids=["duration", "count"])
def test_nothing_left_running_after_duration_or_count(lab, args):
    r = lab.whose("capture", POD, "-i", "any", *args)
    assert r.code == 0, r.stderr
    assert not debug_processes(lab)


@pytest.mark.timing
def test_ctrl_c_stops_remote_tcpdump_keeps_data_prints_summary(lab, tmp_path):
    out = tmp_path / "int.pcap"
    cli = lab.popen_whose("capture", POD, "-i", "any", "-w", str(out), "-o", "json", stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE)
    err = b""
    while b"capture running" not in err:
        line = cli.stderr.readline()
        assert line, err.decode()
        err += line
    assert debug_processes(lab), "tcpdump runs in the pod while capturing"
    time.sleep(1.5)
    t = time.monotonic()
    cli.send_signal(signal.SIGINT)
    stdout, rest = cli.communicate(timeout=15)
    assert time.monotonic() - t < 3.0
    assert cli.returncode == ExitCode.INTERRUPTED, (err + rest).decode()
    assert not debug_processes(lab), (err + rest).decode()
    summary = json.loads(stdout)
    frames = subprocess.run(["tshark", "-r", str(out), "-T", "fields", "-e", "frame.number"], capture_output=True,
                            text=True, check=True).stdout.split()
    assert summary["packets"] == len(frames) > 0
    assert b"Traceback" not in rest


@pytest.mark.timing
def test_live_view_on_a_terminal_updates_at_least_twice_a_second(lab):
    """stderr is a real pty: the rich live view draws packets/rate/elapsed and redraws >= 2 times per second."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    cli = lab.popen_whose("capture", POD, "-i", "any", "--duration", "3s", stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    screen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the pty
            break
        if not chunk:
            break
        screen += chunk
    stdout, _ = cli.communicate(timeout=30)
    os.close(master)
    assert cli.returncode == 0
    text = screen.decode("utf-8", "replace")
    # once the figures grow, the view wraps its clock onto a second line (tables that fit, issue 18)
    frames = re.findall(r"capturing pod/app-sidecar -i any\s+(\d+) packets [^\r\n]*? pkt/s [^\r\n]*?/s[ \t]*"
                        r"(?:\r?\n[ \t]*)?([\d.]+) s", text)
    elapsed = [float(e) for _, e in frames]
    # redrawn at least twice a second over the time it was shown (the clock the view itself prints)
    shown = max(elapsed) - min(elapsed)
    assert shown >= 1.5 and len(set(elapsed)) >= 2 * shown, (elapsed, text[-2000:])
    assert max(int(p) for p, _ in frames) > 0
    assert b"STREAM" in stdout  # the final summary went to stdout, not into the live view


def test_closing_the_pcap_reader_ends_quietly_and_stops_tcpdump(lab):
    """`-w - | wireshark`: when the reader goes away, no BrokenPipe traceback, exit 0, nothing left in the pod."""
    cli = lab.popen_whose("capture", POD, "-i", "any", "-w", "-", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = cli.stdout.read(24)  # the pcap file header, then the reader closes
    cli.stdout.close()
    _, err = cli.communicate(timeout=30)
    assert head[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x0a\x0d\x0d\x0a")
    assert cli.returncode == 0, err.decode()
    assert b"Traceback" not in err and b"BrokenPipe" not in err
    assert not debug_processes(lab)


def test_target_container_shares_its_process_namespace(lab):
    """-c app: a debug container with targetContainerName=app (reused only for the same target)."""
    r = lab.whose("capture", POD, "-c", "app", "-i", "lo", "--count", "1")
    assert r.code == 0, r.stderr
    name = re.search(r"capture running in (whose-\w+)", r.stderr).group(1)
    spec = {c.name: c for c in lab.core_v1().read_namespaced_pod(POD, lab.namespace).spec.ephemeral_containers}
    assert spec[name].target_container_name == "app"
    assert spec[name].security_context.capabilities.add == ["NET_ADMIN", "NET_RAW"]
    assert not spec[name].security_context.privileged
    again = lab.whose("capture", POD, "-c", "app", "-i", "lo", "--count", "1")
    assert f"capture running in {name} (reused debug container)" in again.stderr


def test_stream_out_of_range_names_the_valid_range(lab):
    r = lab.whose("capture", POD, "-i", "lo", "--count", "4", "--stream", "99")
    assert r.code == ExitCode.NOT_FOUND
    assert re.search(r"^kubectl-whose: error: --stream 99: the capture has (no TCP streams|1 TCP stream \(0\)|"
                     r"\d+ TCP streams \(0–\d+\))$", r.stderr, re.M), r.stderr


def test_exec_falls_back_to_v4_and_stays_binary_safe(lab):
    """A server without the v5 translator (the lab's old-server mode) answers v4: same bytes, same exit codes."""
    from kubectl_whose.cli.options import KubeFlags
    from kubectl_whose.cluster.session import open_debug_session

    kube = KubeFlags(None, None, str(lab.kubeconfig), 30.0)
    with open_debug_session(kube, POD, say=None) as session:  # exists and runs before the switch
        v5 = session.run(["sh", "-c", "head -c 300000 /dev/urandom | tee /tmp/whose-v4.bin >/dev/null; "
                                      "sha256sum /tmp/whose-v4.bin"])
        assert v5.protocol == "v5.channel.k8s.io"
        with lab.old_server():
            chunks = []
            r = session.stream(["cat", "/tmp/whose-v4.bin"], on_stdout=chunks.append)
            failed = session.run(["sh", "-c", "exit 3"])
    assert r.protocol == "v4.channel.k8s.io" and r.exit_code == 0
    assert hashlib.sha256(b"".join(chunks)).hexdigest() == v5.stdout.split()[0].decode()
    assert (failed.exit_code, failed.error) == (3, None)


def kubectl_debug(lab, ns, pod):
    k = lab.kubectl("debug", pod, "-n", ns, "--image=nicolaka/netshoot:v0.13", "--profile=netadmin", "-c", "kdebug",
                    "--", "sleep", "600")
    assert k.returncode == 0, k.stderr
    st = lab.wait_pod(ns, pod, lambda p: any(
        s["name"] == "kdebug" and ("running" in s["state"] or s["state"].get("waiting", {}).get("reason", "")
                                   not in ("", "ContainerCreating"))
        for s in (p.get("status") or {}).get("ephemeralContainerStatuses") or []))
    return [s for s in st["status"]["ephemeralContainerStatuses"] if s["name"] == "kdebug"][0]["state"]


@pytest.mark.parametrize("pod_sc,main_sc", [({"runAsNonRoot": True}, {"runAsUser": 1000}),
                                            ({"runAsNonRoot": True, "runAsUser": 1000}, None)],
                         ids=["runAsNonRoot", "runAsNonRoot-runAsUser-1000"])
def test_non_root_pod_gets_a_root_debug_container_where_kubectl_debug_fails(lab, pod_sc, main_sc):
    """Pod-level non-root settings: kubectl debug --profile=netadmin's container either never starts
    (CreateContainerConfigError, kubernetes#113006) or runs as uid 1000 where NET_RAW is not effective; ours says
    runAsUser 0 / runAsNonRoot false explicitly and captures."""
    with lab.isolated_namespace() as ns:
        lab.create_pod(ns, "nonroot", image="busybox:1.36", pod_security_context=pod_sc, security_context=main_sc)
        state = kubectl_debug(lab, ns, "nonroot")
        if "runAsUser" in pod_sc:
            assert "running" in state
            k = lab.kubectl("exec", "nonroot", "-n", ns, "-c", "kdebug", "--", "tcpdump", "-i", "lo", "-c", "1",
                            "-w", "/dev/null")
            assert k.returncode != 0 and "permission" in k.stderr.lower(), k.stderr
        else:
            assert state["waiting"]["reason"] == "CreateContainerConfigError"
        r = lab.whose("capture", "nonroot", "-n", ns, "-i", "lo", "--duration", "1s")
        assert r.code == 0, r.stderr
        assert "capture running" in r.stderr


def test_filter_words_and_snaplen_reach_tcpdump_intact(lab, tmp_path):
    """-f with several words (argv, never a shell) and --snaplen: tshark on the file sees only what was asked."""
    out = tmp_path / "f.pcap"
    svc = lab.service_ip
    r = lab.whose("capture", POD, "-i", "eth0", "-f", f"tcp and dst host {svc} and dst port 80", "--snaplen", "60",
              "--count", "6", "-w", str(out))
    assert r.code == 0, r.stderr
    fields = subprocess.run(["tshark", "-r", str(out), "-T", "fields", "-e", "ip.dst", "-e", "tcp.dstport",
                             "-e", "frame.cap_len", "-e", "frame.len"], capture_output=True, text=True,
                            check=True).stdout.splitlines()
    assert len(fields) == 6
    for line in fields:
        dst, dport, cap_len, length = line.split("\t")
        assert (dst, dport) == (svc, "80")
        assert int(cap_len) <= 60 <= int(length) or int(cap_len) == int(length) <= 60
    assert int.from_bytes(out.read_bytes()[16:20], "little") == 60  # the pcap header's snaplen


def test_capture_names_the_proxy_and_the_redirect_rule_of_each_joined_connection(lab, echo_ready):
    """Issue 6 in the live path: the sidecar's joins carry the rule the kernel applied (the lab loaded Istio's
    rules with real iptables) and the proxy named by its real listener's uid (1337, the lab's proxy process)."""
    r = lab.whose("capture", POD, "-i", "any", "--duration", "3s", "-o", "json")
    assert r.code == 0, r.stderr
    conns = r.json["connections"]
    assert conns, "the app calls the echo Service every 0.5 s: at least one redirected connection"
    for c in conns:
        assert c["original_dst"] == f"{lab.service_ip}:{lab.service_port}"
        assert c["rule"] == "nat/ISTIO_REDIRECT: -A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001"
        assert c["proxy_owner"]["kind"] == "proxy" and "1337" in c["proxy_owner"]["evidence"]
    plain = lab.whose("capture", POD, "-i", "any", "--duration", "2s", "-o", "json", "--no-owners")
    assert plain.code == 0 and all(c["rule"] is None and c["proxy_owner"] is None for c in plain.json["connections"])
