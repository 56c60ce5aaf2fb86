"""An API server that stops answering without closing the connection: a relay between the plugin and the lab's API
server that, once frozen, forwards nothing in either direction and keeps every socket open (a stuck load balancer,
a half-dead VPN). --duration and Ctrl-C must be honoured within 2 s; silence past the stated limit is said.

Oracles: the wall clock, tshark on the file the capture left, the exit code and the one error line.
"""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import yaml

from kubectl_whose.cluster.exec_api import SILENCE_LIMIT
from kubectl_whose.errors import ExitCode
from tests.helpers.netns import requires_tools

pytestmark = [requires_tools("tcpdump", "tshark", "ping"), pytest.mark.timing]


class FreezingProxy:
    """A TCP relay that forwards until `freeze()`, then holds every byte and every socket."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.frozen = threading.Event()
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.socks.append(client)
            if self.frozen.is_set():
                continue  # accepted, never answered
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.socks.append(upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    return
                if self.frozen.is_set():
                    self.frozen.wait()  # hold it; the sockets stay open
                    while True:
                        time.sleep(3600)
                b.sendall(data)
        except OSError:
            pass

    def freeze(self):
        self.frozen.set()

    def close(self):
        self.listener.close()
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass


@pytest.fixture
def frozen_path(lab, tmp_path):
    """(proxy, kubeconfig through it, namespace with a pod `p` of its own: what a stopped capture leaves running
    there goes with the namespace)."""
    proxy = FreezingProxy(int(lab.server.rsplit(":", 1)[1]))
    config = yaml.safe_load(open(lab.kubeconfig))
    for c in config["clusters"]:
        c["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    kc = tmp_path / "via-freezing-proxy.yaml"
    kc.write_text(yaml.safe_dump(config))
    with lab.isolated_namespace() as ns:
        lab.create_pod(ns, "p", image="busybox:1.36")
        yield proxy, kc, ns
    proxy.close()


def start(lab, kc, ns, out, *args):
    cli = subprocess.Popen([sys.executable, "-m", "kubectl_whose", "capture", "p", "-n", ns, "-i", "lo", "-w",
                            str(out), *args, "--kubeconfig", str(kc)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=dict(os.environ, PYTHONUNBUFFERED="1"))
    err = b""
    while b"capture running" not in err:
        line = cli.stderr.readline()
        assert line, err.decode()
        err += line
    listening = time.monotonic()
    lab.netns_run("p", ["ping", "-c", "3", "-i", "0.2", "127.0.0.1"], namespace=ns)
    time.sleep(0.5)
    return cli, err, listening


def finish(cli, err):
    try:
        stdout, rest = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
    err = (err + rest).decode()
    assert "Traceback" not in err, err
    return stdout.decode(), err, time.monotonic()


def frames(path):
    return subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "frame.number"], capture_output=True,
                          text=True).stdout.split()


def test_duration_is_honoured_and_the_silence_is_said(lab, frozen_path, tmp_path):
    proxy, kc, ns = frozen_path
    out = tmp_path / "d.pcap"
    cli, err, listening = start(lab, kc, ns, out, "--duration", "4s")
    proxy.freeze()
    stdout, err, ended = finish(cli, err)
    assert ended - listening <= 4 + 3.0, err  # 2 s, and the slack of process exit on a loaded machine
    assert cli.returncode == ExitCode.CONNECTION_LOST, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("kubectl-whose: error: the capture stream did not end when tcpdump was stopped: the API "
                           "server stopped answering (the last bytes arrived "), line
    assert line.endswith(f"; the {out.stat().st_size} bytes captured so far are in {out}"), line
    n = len(frames(out))
    assert n >= 6  # the pings before the freeze
    assert f"{n} packets" in stdout + err  # the summary of what arrived


def test_ctrl_c_is_honoured_within_2_s_on_a_frozen_server(lab, frozen_path, tmp_path):
    proxy, kc, ns = frozen_path
    out = tmp_path / "c.pcap"
    cli, err, _ = start(lab, kc, ns, out)
    proxy.freeze()
    time.sleep(1)
    pressed = time.monotonic()
    cli.send_signal(signal.SIGINT)
    stdout, err, ended = finish(cli, err)
    assert ended - pressed <= 2.5, err
    assert cli.returncode == ExitCode.INTERRUPTED, err
    n = len(frames(out))
    assert n >= 6 and f"{n} packets" in stdout + err


def test_silence_past_the_limit_ends_an_open_ended_capture(lab, frozen_path, tmp_path):
    proxy, kc, ns = frozen_path
    out = tmp_path / "s.pcap"
    cli, err, _ = start(lab, kc, ns, out)
    proxy.freeze()
    frozen = time.monotonic()
    stdout, err, ended = finish(cli, err)
    assert SILENCE_LIMIT - 1 <= ended - frozen <= SILENCE_LIMIT + 5 + 2.5, err  # one ping period, then 2 s
    assert cli.returncode == ExitCode.CONNECTION_LOST, err
    assert err.strip().splitlines()[-1] == (
        f"kubectl-whose: error: the API server sent nothing for {SILENCE_LIMIT:g} s, not even an answer to a ping, "
        f"while tcpdump ran in the debug container; it stopped answering without closing the connection; check it "
        f"(kubectl get --raw /readyz) and run again; the {out.stat().st_size} bytes captured so far are in {out}")
    assert len(frames(out)) >= 6
