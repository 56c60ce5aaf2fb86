"""Capture benchmarks: start-up to "capture running", pcap throughput through the exec stream, live analysis rate.

    python3 bench/bench_capture.py            # all three (the lab parts need root; they bring the lab up)
    python3 bench/bench_capture.py --no-lab   # only the live-analysis rate (no API server needed)

1. Time from command start to "capture running" (the CLI's own stderr line, printed when tcpdump says it
   listens), for a NEW debug container (a fresh image tag forces one) and for a REUSED one. Goal: reused <= 1 s.
2. Throughput of binary data through the exec WebSocket into `collect.capture.Tee` (the `-w` write path), sha256 checked
   against the file in the pod. Goal >= 50 MB/s.
3. Highest packet rate the live analysis keeps up with: a synthetic pcap of small TCP packets fed in 64 KiB chunks
   through `collect.capture.Tee` (file write + `CaptureAnalyzer.feed`, the exact live path), against tshark reading the same
   file in the same run (`tshark -r F -q -z conv,tcp`). Goal >= 200k pkt/s. Peak RSS is reported.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

POD = "app-sidecar"


def synthetic_pcap(path: str, packets: int, streams: int = 2000, payload: int = 16) -> int:
    """Ethernet/IPv4/TCP packets spread over `streams` connections; returns the file size."""
    rng = random.Random(7)
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        seqs = [rng.randrange(1 << 31) for _ in range(streams)]
        body = b"x" * payload
        for i in range(packets):
            s = i % streams
            src = bytes([10, 1, s >> 8 & 255, s & 255])
            dst = bytes([10, 2, 0, 1])
            tcp = struct.pack("!HHIIBBHHH", 40000 + s % 20000, 80, seqs[s], 1, 5 << 4, 0x18, 65535, 0, 0) + body
            seqs[s] = (seqs[s] + payload) & 0xFFFFFFFF
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i & 0xFFFF, 0, 64, 6, 0, src, dst) + tcp
            frame = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip
            ts = 1_700_000_000 + i // 1000
            f.write(struct.pack("<IIII", ts, (i % 1000) * 1000, len(frame), len(frame)) + frame)
    return os.path.getsize(path)


def bench_live_analysis(packets: int) -> dict:
    from kubectl_whose.analysis.streams import CaptureAnalyzer
    from kubectl_whose.collect.capture import Tee as PcapSink

    tmp = tempfile.mkdtemp(prefix="whose-bench-")
    try:
        src = os.path.join(tmp, "in.pcap")
        size = synthetic_pcap(src, packets)
        with open(src, "rb") as f:
            data = f.read()
        sink = PcapSink(os.path.join(tmp, "out.pcap"), CaptureAnalyzer())
        t = time.perf_counter()
        for off in range(0, len(data), 65536):
            sink.write(data[off:off + 65536])
            if off % (65536 * 64) == 0:
                sink.snapshot()  # the live view asks ~4x/s; here far more often
        summary = sink.analyzer.finish()
        ours = time.perf_counter() - t
        sink.close()
        assert summary.to_dict()["packets"] == packets, "analysis lost packets"
        tshark_s = None
        if shutil.which("tshark"):
            t = time.perf_counter()
            subprocess.run(["tshark", "-r", src, "-q", "-z", "conv,tcp"], capture_output=True, check=True)
            tshark_s = time.perf_counter() - t
        return {"packets": packets, "bytes": size, "seconds": ours, "pkt_per_s": packets / ours,
                "tshark_seconds": tshark_s, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def time_to_running(kubeconfig: str, image: str) -> float:
    cmd = [sys.executable, "-m", "kubectl_whose", "capture", POD, "-i", "lo", "--count", "1", "--image", image,
           "--kubeconfig", kubeconfig]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ,
                                                                                             PYTHONUNBUFFERED="1"))
    wall = None
    for line in proc.stderr:
        if b"capture running" in line:
            wall = time.perf_counter() - t
            break
    proc.communicate(timeout=60)
    if wall is None:
        raise RuntimeError(f"capture did not start (exit {proc.returncode})")
    return wall


def bench_exec_throughput(kubeconfig: str, mbytes: int) -> dict:
    from kubectl_whose.collect.capture import Tee as PcapSink
    from kubectl_whose.cli.options import KubeFlags
    from kubectl_whose.cluster.session import open_debug_session

    kube = KubeFlags(None, None, kubeconfig, 30.0)
    with open_debug_session(kube, POD, say=None) as session:
        # The exec stream is content-agnostic (binary frames), so the payload is random bytes made in the pod
        # (incompressible, every byte value); identity is checked by sha256 on both ends.
        make = ("head -c %d /dev/urandom > /tmp/whose-bench.bin && sha256sum /tmp/whose-bench.bin" % (mbytes << 20))
        r = session.run(["sh", "-c", make], timeout=120)
        remote = r.stdout.split()[0].decode()
        tmp = tempfile.mkdtemp(prefix="whose-bench-")
        try:
            out = os.path.join(tmp, "x.bin")
            sink = PcapSink(out, _NullAnalyzer())
            t = time.perf_counter()
            res = session.stream(["cat", "/tmp/whose-bench.bin"], on_stdout=sink.write)
            secs = time.perf_counter() - t
            sink.close()
            with open(out, "rb") as f:
                local = hashlib.sha256(f.read()).hexdigest()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        session.run(["rm", "-f", "/tmp/whose-bench.bin"])
    return {"mbytes": mbytes, "seconds": secs, "mb_per_s": mbytes / secs, "identical": local == remote,
            "exit": res.exit_code, "protocol": res.protocol}


class _NullAnalyzer:
    def feed(self, data):
        pass

    def snapshot(self):
        return {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-lab", action="store_true")
    ap.add_argument("--packets", type=int, default=500_000)
    ap.add_argument("--mbytes", type=int, default=200)
    ap.add_argument("--kubeconfig", help="use a running lab (scripts/lab.sh up) instead of starting one")
    args = ap.parse_args()
    live = bench_live_analysis(args.packets)
    print(f"live analysis: {live['packets']} packets ({live['bytes'] / 1e6:.1f} MB) in {live['seconds']:.2f} s = "
          f"{live['pkt_per_s'] / 1000:.0f}k pkt/s (goal >= 200k); tshark conv,tcp on the same file "
          f"{live['tshark_seconds']:.2f} s; peak RSS {live['peak_rss_mib']:.0f} MiB")
    if args.no_lab:
        return
    kubeconfig = args.kubeconfig or _lab_up()
    new = time_to_running(kubeconfig, f"nicolaka/netshoot:bench-{random.randrange(1 << 30):x}")
    reused = [time_to_running(kubeconfig, "nicolaka/netshoot:v0.13") for _ in range(4)][1:]
    print(f"time to 'capture running': new container {new:.2f} s; reused {min(reused):.2f}-{max(reused):.2f} s "
          f"(goal <= 1 s)")
    thr = bench_exec_throughput(kubeconfig, args.mbytes)
    print(f"exec stream: {thr['mbytes']} MiB in {thr['seconds']:.2f} s = {thr['mb_per_s']:.0f} MiB/s over "
          f"{thr['protocol']} (goal >= 50), byte-identical: {thr['identical']}")


def _lab_up() -> str:
    out = subprocess.run(["bash", os.path.join(ROOT, "scripts", "lab.sh"), "up"], capture_output=True, text=True,
                         check=True).stdout
    m = re.search(r"(/\S+kubeconfig\S*)", out)
    if not m:
        raise SystemExit(f"could not find the kubeconfig in `scripts/lab.sh up` output:\n{out}")
    return m.group(1)


if __name__ == "__main__":
    main()
