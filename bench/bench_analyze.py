#!/usr/bin/env python3
"""Benchmark: `kubectl whose analyze FILE -o json` against `tshark -q -z conv,tcp -r FILE`, same file, same run.

Records real traffic first: nginx (Debian's nginx-light, generated config, pid/logs/temp in a temp
dir) in one network namespace, ApacheBench (`ab`, HTTP/1.0, one connection per request; `--mode
keepalive` for `ab -k`) in another, real tcpdump on the client's veth. Then it times both tools on
the file (wall and CPU time, packets/s, peak RSS of each child via GNU time) and checks memory
flatness: our peak RSS on the first quarter of the file vs on the whole file. BENCHMARKS.md has the
method and the figures.

    sudo python3 bench/bench_analyze.py --repeat 3              # 1,000,000+ packets
    sudo python3 bench/bench_analyze.py --packets 20000 --json
    sudo python3 bench/bench_analyze.py --capture old.pcap       # no recording, time an existing file
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.capture_tools import CLIENT4, SERVER4, Tcpdump  # noqa: E402
from tests.helpers.netns import NetLab, sweep_stale  # noqa: E402

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen {addr}:80 backlog=4096;
        location / {{ return 200 "whose packet is it anyway?\\n"; }}
    }}
}}
"""
# measured with ab: HTTP/1.0 one connection per request: 5 frames each way; with -k (keep-alive,
# nginx closes after 1000 requests) about 3 frames per request
PACKETS_PER_REQUEST = {"short": 10, "keepalive": 3}


def count_packets(path: Path) -> int:
    """Whole records in a classic pcap (what tcpdump writes), by walking the record headers."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return 0
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    pos, n, rec = 24, 0, struct.Struct(endian + "IIII")
    while pos + 16 <= len(data):
        caplen = rec.unpack_from(data, pos)[2]
        if pos + 16 + caplen > len(data):
            break
        pos += 16 + caplen
        n += 1
    return n


def head_of_file(path: Path, out: Path, packets: int) -> None:
    """Copy the header and the first `packets` records of a classic pcap."""
    with open(path, "rb") as f:
        data = f.read()
    endian = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    pos, rec = 24, struct.Struct(endian + "IIII")
    for _ in range(packets):
        if pos + 16 > len(data):
            break
        pos += 16 + rec.unpack_from(data, pos)[2]
    out.write_bytes(data[:pos])


def record(path: Path, packets: int, concurrency: int, mode: str = "short") -> Dict[str, float]:
    """nginx + ab in namespaces tagged B, tcpdump on the client side, until `packets` are captured.

    mode "short": one connection per request (streams grow with packets, the issue's workload);
    "keepalive": `ab -k`, ~1000 requests per connection (few streams: memory must stay flat)."""
    for tool in ("nginx", "ab", "tcpdump"):
        if not shutil.which(tool):
            sys.exit(f"bench: needs {tool} (scripts/bootstrap.sh installs it)")
    sweep_stale("B")
    started = time.time()
    with NetLab("B") as lab, tempfile.TemporaryDirectory(prefix="whose-nginx-") as tmp:
        c, s = lab.ns("bc"), lab.ns("bs")
        lab.link(c, "eth0", CLIENT4 + "/24", s, "eth0", SERVER4 + "/24")
        for ns in (c, s):  # many short connections: do not run out of ephemeral ports / backlog
            ns.run(["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"])
            ns.run(["sysctl", "-qw", "net.core.somaxconn=4096"])
        c.run(["sysctl", "-qw", "net.ipv4.ip_local_port_range=1024 65000"])
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, addr=SERVER4))
        s.popen(["nginx", "-p", tmp, "-e", f"{tmp}/error.log", "-c", str(conf)])
        deadline = time.time() + 10
        while c.run(["curl", "-s", "-o", "/dev/null", f"http://{SERVER4}/"], check=False).returncode != 0:
            if time.time() > deadline:
                sys.exit(f"bench: nginx did not answer: {(Path(tmp) / 'error.log').read_text()}")
            time.sleep(0.05)
        td = Tcpdump(c, path)
        captured, rounds = 0, 0
        while captured < packets:
            requests = max(100, (packets - captured) // PACKETS_PER_REQUEST[mode] + 50)
            c.run(["ab", "-q", "-r", *(["-k"] if mode == "keepalive" else []), "-n", str(requests),
                   "-c", str(concurrency), f"http://{SERVER4}/"], timeout=3600)
            rounds += 1
            captured = count_packets(path)
        report = td.stop(allow_drops=True)
    dropped = re.search(r"^(\d+) packets dropped by kernel", report, re.M)
    return {"record_seconds": round(time.time() - started, 2), "ab_rounds": rounds,
            "tcpdump_dropped_by_kernel": int(dropped.group(1)) if dropped else None}


GNU_TIME = "/usr/bin/time"


def timed(argv: List[str], stdout: str = os.devnull, engine: Optional[str] = None) -> Dict[str, float]:
    """Run one child (stdout to a file): wall time and that child's own peak RSS.

    The RSS comes from GNU time (`%M`) when installed: `ru_maxrss` of a child forked straight from
    this process starts at *our* RSS at fork time (measured: 258 MB reported for a 67 MB run after
    we had parsed a big JSON report), so the child is forked from the small `time` process instead.
    Without GNU time, `os.wait4` of the child is used (an upper bound)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if engine:
        env["KUBECTL_WHOSE_ENGINE"] = engine
    use_time = os.access(GNU_TIME, os.X_OK)
    full = [GNU_TIME, "-f", "WHOSE-BENCH %M %U %S", *argv] if use_time else argv
    t0 = time.perf_counter()
    with open(stdout, "wb") as out:
        proc = subprocess.Popen(full, stdout=out, stderr=subprocess.PIPE, env=env)
        stderr = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    if code != 0:
        sys.exit(f"bench: {' '.join(argv)} failed ({code}): {stderr.decode(errors='replace')[-500:]}")
    rss_kb, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    if use_time:
        line = [ln for ln in stderr.decode(errors="replace").splitlines() if ln.startswith("WHOSE-BENCH ")][-1]
        kb, user, system = line.split()[1:]
        rss_kb, cpu = int(kb), float(user) + float(system)
    return {"wall_s": round(wall, 3), "peak_rss_mb": round(rss_kb / 1024, 1), "cpu_s": round(cpu, 3)}


def ours(path: Path) -> List[str]:
    return [sys.executable, "-m", "kubectl_whose", "analyze", str(path), "-o", "json"]


def best(runs: List[Dict[str, float]]) -> Dict[str, float]:
    """Fastest wall time of the repeats (the machine is shared: noise only ever adds time), and the
    largest peak RSS seen (memory is not noise)."""
    fastest = min(runs, key=lambda r: r["wall_s"])
    return {**fastest, "peak_rss_mb": max(r["peak_rss_mb"] for r in runs), "runs": len(runs),
            "wall_s_all": [r["wall_s"] for r in runs]}


def engine_in_use() -> str:
    """The analysis engine `analyze` runs by default here: native when `_engine.c` is built."""
    from kubectl_whose.analysis.streams.engine import choose

    return choose()


def bench(path: Path, repeat: int = 1, python_engine: bool = False) -> Dict[str, object]:
    packets = count_packets(path)
    engine = engine_in_use()
    result: Dict[str, object] = {
        "file": str(path), "packets": packets, "file_mb": round(path.stat().st_size / 1e6, 1), "engine": engine,
        "machine": {"cpu": _cpu(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "tshark": _tshark_version(), "kernel": platform.release()},
    }
    runs: Dict[str, List[Dict[str, float]]] = {"ours": [], "tshark": []}
    with tempfile.TemporaryDirectory(prefix="whose-bench-") as tmp:
        report = Path(tmp) / "ours.json"
        for _ in range(repeat):  # interleaved, so both tools see the same background load
            runs["ours"].append(timed(ours(path), str(report), engine))
            runs["tshark"].append(timed(["tshark", "-q", "-z", "conv,tcp", "-r", str(path)]))
        try:
            result["streams"] = len(json.loads(report.read_bytes())["streams"])
        except (ValueError, KeyError) as e:
            sys.exit(f"bench: analyze -o json printed no usable JSON ({e})")
    result["ours"], result["tshark"] = best(runs["ours"]), best(runs["tshark"])
    o, t = result["ours"], result["tshark"]
    result["speedup_vs_tshark"] = round(t["wall_s"] / o["wall_s"], 2)
    # CPU time is the steadier figure on a shared machine (wall time includes waiting for a core)
    result["cpu_speedup_vs_tshark"] = round(t["cpu_s"] / o["cpu_s"], 2) if o["cpu_s"] else None
    result["rss_ratio_ours_over_tshark"] = round(o["peak_rss_mb"] / t["peak_rss_mb"], 3)
    result["ours_packets_per_s"] = int(packets / o["wall_s"])
    result["tshark_packets_per_s"] = int(packets / t["wall_s"])
    with tempfile.TemporaryDirectory(prefix="whose-bench-") as tmp:
        quarter = Path(tmp) / "quarter.pcap"
        head_of_file(path, quarter, packets // 4)
        q = best([timed(ours(quarter), engine=engine) for _ in range(repeat)])
    # --stream N keeps per-packet rows for that stream only: its RSS must stay near the summary's
    result["ours_stream0"] = timed([*ours(path), "--stream", "0"], engine=engine)
    if python_engine and engine != "python":  # the portable engine (krew archives without the C one), once
        py = timed(ours(path), engine="python")
        result["ours_python_engine"] = {**py, "speedup_vs_tshark": round(t["wall_s"] / py["wall_s"], 2),
                                        "rss_ratio_ours_over_tshark": round(py["peak_rss_mb"] / t["peak_rss_mb"], 3)}
    result["flat_memory"] = {"quarter_packets": packets // 4, "quarter_peak_rss_mb": q["peak_rss_mb"],
                             "whole_peak_rss_mb": o["peak_rss_mb"],
                             "growth_mb": round(o["peak_rss_mb"] - q["peak_rss_mb"], 1)}
    return result


def bench_pcapng(path: Path, repeat: int) -> Dict[str, object]:
    """The same capture converted to pcapng by editcap (what dumpcap and Wireshark write), both tools."""
    engine = engine_in_use()
    with tempfile.TemporaryDirectory(prefix="whose-bench-") as tmp:
        ng = Path(tmp) / "bench.pcapng"
        subprocess.run(["editcap", "-F", "pcapng", str(path), str(ng)], check=True)
        ours_runs, tshark_runs = [], []
        for _ in range(repeat):
            ours_runs.append(timed(ours(ng), engine=engine))
            tshark_runs.append(timed(["tshark", "-q", "-z", "conv,tcp", "-r", str(ng)]))
        o, t = best(ours_runs), best(tshark_runs)
        return {"file_mb": round(ng.stat().st_size / 1e6, 1), "ours": o, "tshark": t,
                "speedup_vs_tshark": round(t["wall_s"] / o["wall_s"], 2),
                "rss_ratio_ours_over_tshark": round(o["peak_rss_mb"] / t["peak_rss_mb"], 3)}


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _tshark_version() -> str:
    out = subprocess.run(["tshark", "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "?"


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--packets", type=int, default=1_000_000, help="record at least this many packets")
    ap.add_argument("--concurrency", type=int, default=16, help="ab -c")
    ap.add_argument("--mode", choices=sorted(PACKETS_PER_REQUEST), default="short",
                    help="short: a connection per request (default); keepalive: ab -k, few long streams")
    ap.add_argument("--keep", type=Path, help="keep the recorded capture at this path")
    ap.add_argument("--capture", type=Path, help="time this existing classic pcap instead of recording")
    ap.add_argument("--repeat", type=int, default=1, help="time each tool N times (interleaved), keep the fastest")
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    ap.add_argument("--pcapng", action="store_true", help="also time both tools on the capture converted to pcapng")
    ap.add_argument("--python-engine", action="store_true",
                    help="also time the pure-Python engine once (what runs without the native one)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="whose-bench-") as tmp:
        info: Dict[str, object] = {}
        if args.capture:
            path = args.capture
        else:
            path = args.keep or Path(tmp) / "bench.pcap"
            info = {"mode": args.mode, **record(path, args.packets, args.concurrency, args.mode)}
        result = {**bench(path, max(1, args.repeat), args.python_engine), **info}
        if args.pcapng:
            result["pcapng"] = bench_pcapng(path, max(1, args.repeat))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        o, t, m = result["ours"], result["tshark"], result["flat_memory"]
        print(f"file: {result['file']}  {result['packets']} packets, {result['file_mb']} MB, "
              f"{result.get('streams', '?')} streams")
        print(f"machine: {result['machine']}")
        print(f"ours   (analyze -o json, {result['engine']}): {o['wall_s']:8.2f} s  {result['ours_packets_per_s']:>9} pkt/s  "
              f"CPU {o['cpu_s']:6.2f} s  peak RSS {o['peak_rss_mb']:7.1f} MB")
        print(f"tshark (-q -z conv,tcp):       {t['wall_s']:8.2f} s  {result['tshark_packets_per_s']:>9} pkt/s  "
              f"CPU {t['cpu_s']:6.2f} s  peak RSS {t['peak_rss_mb']:7.1f} MB")
        print(f"speed-up {result['speedup_vs_tshark']}x wall, {result['cpu_speedup_vs_tshark']}x CPU time; "
              f"RSS ratio ours/tshark {result['rss_ratio_ours_over_tshark']}")
        print(f"memory: first quarter {m['quarter_peak_rss_mb']} MB, whole file {m['whole_peak_rss_mb']} MB "
              f"(+{m['growth_mb']} MB); with --stream 0: {result['ours_stream0']['peak_rss_mb']} MB, "
              f"{result['ours_stream0']['wall_s']} s")
        ng = result.get("pcapng")
        if ng:
            print(f"as pcapng ({ng['file_mb']} MB): ours {ng['ours']['wall_s']:.2f} s {ng['ours']['peak_rss_mb']} MB, "
                  f"tshark {ng['tshark']['wall_s']:.2f} s {ng['tshark']['peak_rss_mb']} MB: "
                  f"{ng['speedup_vs_tshark']}x, RSS ratio {ng['rss_ratio_ours_over_tshark']}")
        py = result.get("ours_python_engine")
        if py:
            print(f"pure-Python engine: {py['wall_s']:.2f} s, peak RSS {py['peak_rss_mb']} MB: "
                  f"{py['speedup_vs_tshark']}x tshark, RSS ratio {py['rss_ratio_ours_over_tshark']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
