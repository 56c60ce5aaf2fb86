#!/usr/bin/env python3
"""Benchmark: joining NAT-split streams on a real sidecar capture, against tshark on the same file, same run.

Records first: the sidecar setup of tests/helpers/sidecar_lab.py (Istio's nat rules, a uid-1337 SO_ORIGINAL_DST relay,
an upstream in another namespace), the app making N sequential requests, real tcpdump on `-i any`. Then times,
each in its own child process (wall time, peak RSS from GNU time):
  tshark   `tshark -q -z conv,tcp -r FILE` (the stream table a Wireshark user starts from)
  ours     analyze_file(FILE) + join_connections (what `analyze` does with connections)
and checks the result: N joined connections, N linked upstream legs.

    sudo python3 bench/bench_connections.py                  # 2000 requests
    sudo python3 bench/bench_connections.py --requests 500 --json
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.netns import NetLab, sweep_stale  # noqa: E402
from tests.helpers.sidecar_lab import SidecarPod  # noqa: E402

OURS = """
import json, sys, time
t0 = time.perf_counter()
from kubectl_whose.analysis.streams import analyze_file
from kubectl_whose.analysis.pod.connections import join_connections
d = analyze_file(sys.argv[1]).to_dict()
t1 = time.perf_counter()
joins = join_connections(d)
t2 = time.perf_counter()
print(json.dumps({"analyze_s": t1 - t0, "join_s": t2 - t1, "joins": len(joins),
                  "linked": sum(c.upstream is not None for c in joins), "streams": len(d["streams"]),
                  "packets": d["packets"]}))
"""


def timed(argv):
    """(wall seconds, peak RSS MiB, stdout). RSS from GNU time (`%M`, KiB): a child forked straight from this
    script would start its ru_maxrss at our own size (bench/bench_analyze.py measured the same trap)."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        start = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-o", rss.name, "-f", "%M", *argv], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, cwd=ROOT)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"{argv[0]} failed (exit {proc.returncode})")
        return wall, int(rss.read().strip().splitlines()[-1]) / 1024, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces)")
    sweep_stale("F")
    work = Path(tempfile.mkdtemp(prefix="kwF-bench-"))
    try:
        with NetLab("F") as lab:
            pod = SidecarPod(lab, 99, work)
            dests = [pod.destinations()[i % 3] for i in range(args.requests)]
            run = pod.run(dests, keep=False)
        pcap = run.pcaps["any"]
        t_wall, t_rss, _ = timed(["tshark", "-q", "-z", "conv,tcp", "-r", str(pcap)])
        o_wall, o_rss, out = timed([sys.executable, "-c", OURS, str(pcap)])
        ours = json.loads(out)
        result = {
            "requests": args.requests, "packets": ours["packets"], "streams": ours["streams"],
            "joins": ours["joins"], "linked": ours["linked"],
            "tshark_s": round(t_wall, 3), "tshark_peak_rss_mib": round(t_rss, 1),
            "ours_s": round(o_wall, 3), "ours_peak_rss_mib": round(o_rss, 1),
            "analyze_s": round(ours["analyze_s"], 3), "join_s": round(ours["join_s"], 3),
            "ratio_ours_to_tshark": round(o_wall / t_wall, 2),
            "correct": ours["joins"] == args.requests and ours["linked"] == args.requests,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:>22}: {v}")
    if not result["correct"]:
        raise SystemExit("join result wrong: see joins/linked against requests")


if __name__ == "__main__":
    main()
