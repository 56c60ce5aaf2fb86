#!/usr/bin/env python3
"""Benchmark: `rules` and `trace` on a large kube-proxy (iptables mode) rule set, against iptables-save in the
same run.

Generates N Services x E endpoints in proxier.go's layout (KUBE-SERVICES -> KUBE-SVC-* with -m statistic ->
KUBE-SEP-* DNAT), loads them into a throw-away network namespace with the real iptables-nft-restore, reads them
back with the real iptables-nft-save (the reference: the time to read the rules at all), then times, in child
processes with peak RSS from os.wait4:
  - `kubectl whose rules --from-file DUMP -o json` (parse + recognise + JSON)
  - `kubectl whose trace --from-file DUMP --to <the last Service>` (worst case: every KUBE-SERVICES rule passed)

    sudo python3 bench/bench_rules.py                 # 5,000 Services x 3 endpoints (~45,000 rules)
    sudo python3 bench/bench_rules.py --services 500 --json
    sudo python3 bench/bench_rules.py --compare /tmp/main-src --repeat 3   # another source tree, same run

With --compare, `rules` and `trace` of this tree and of the other tree (e.g. `git archive main | tar -x -C
/tmp/main-src`) run on the same dump, interleaved --repeat times; the fastest time and the largest peak RSS of
each are kept (the machine is shared).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETNS = f"kwCbench{os.getpid() % 100000}"


def generate(services: int, endpoints: int) -> str:
    lines = ["*nat", ":KUBE-SERVICES - [0:0]", ":KUBE-MARK-MASQ - [0:0]", ":KUBE-POSTROUTING - [0:0]"]
    rules = ['-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
             '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
             "-A POSTROUTING -j KUBE-POSTROUTING",
             "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
             "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
             "-A KUBE-POSTROUTING -j MASQUERADE",
             "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000"]
    for s in range(services):
        vip = f"10.96.{s // 250}.{s % 250 + 1}"
        svc = f"KUBE-SVC-{s:016d}"
        lines.append(f":{svc} - [0:0]")
        rules.append(f'-A KUBE-SERVICES -d {vip}/32 -p tcp -m comment --comment "ns/svc{s}:http cluster IP" '
                     f"-m tcp --dport 80 -j {svc}")
        rules.append(f"-A {svc} ! -s 10.244.0.0/16 -d {vip}/32 -p tcp -m tcp --dport 80 -j KUBE-MARK-MASQ")
        for e in range(endpoints):
            sep = f"KUBE-SEP-{s:012d}{e:04d}"
            ep = f"10.{244 + (s * endpoints + e) // 65000}.{(s * endpoints + e) // 250 % 250}.{e + 2}"
            lines.append(f":{sep} - [0:0]")
            left = endpoints - e
            stat = f"-m statistic --mode random --probability {1 / left:.11f} " if left > 1 else ""
            rules.append(f"-A {svc} {stat}-j {sep}")
            rules.append(f"-A {sep} -s {ep}/32 -j KUBE-MARK-MASQ")
            rules.append(f"-A {sep} -p tcp -m tcp -j DNAT --to-destination {ep}:8080")
    return "\n".join(lines + rules + ["COMMIT", ""])


def timed(argv, stdout=subprocess.DEVNULL, tree=None):
    """(seconds, peak RSS in MB) of one child; `tree`: the source tree whose kubectl_whose it runs."""
    env = dict(os.environ, PYTHONPATH=tree) if tree else None
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE, cwd=tree, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv[:6])} failed: {proc.stderr.read().decode()[-500:]}")
    return elapsed, usage.ru_maxrss / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=5000)
    ap.add_argument("--endpoints", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--compare", metavar="TREE", help="another source tree to time on the same dump")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (a network namespace for the real iptables)")
    work = tempfile.mkdtemp(prefix="kwC-bench-")
    subprocess.run(["ip", "netns", "add", NETNS], check=True)
    try:
        text = generate(args.services, args.endpoints)
        subprocess.run(["ip", "netns", "exec", NETNS, "iptables-nft-restore"], input=text.encode(), check=True)
        dump = os.path.join(work, "dump.rules")
        with open(dump, "wb") as f:
            save_s, save_rss = timed(["ip", "netns", "exec", NETNS, "iptables-nft-save", "-c"], stdout=f)
        rules_count = sum(1 for line in open(dump) if line.startswith("[") or line.startswith("-A"))
        py = [sys.executable, "-m", "kubectl_whose"]
        last_vip = f"10.96.{(args.services - 1) // 250}.{(args.services - 1) % 250 + 1}:80"
        trees = {"this": ROOT, **({"compared": os.path.abspath(args.compare)} if args.compare else {})}
        runs = {name: {"rules": [], "trace": []} for name in trees}
        for _ in range(max(1, args.repeat)):
            for name, tree in trees.items():
                runs[name]["rules"].append(timed(py + ["rules", "--from-file", dump, "-o", "json"], tree=tree))
                runs[name]["trace"].append(timed(py + ["trace", "--from-file", dump, "--to", last_vip, "--pod-ip",
                                                       "10.244.0.9", "-o", "json"], tree=tree))
        best = {name: {k: (min(t for t, _ in v), max(m for _, m in v)) for k, v in r.items()} for name, r in runs.items()}
        (rules_s, rules_rss), (trace_s, trace_rss) = best["this"]["rules"], best["this"]["trace"]
        startup_s, startup_rss = timed(py + ["--version"], tree=ROOT)
    finally:
        subprocess.run(["ip", "netns", "del", NETNS], check=False)
    result = {
        "services": args.services, "endpoints_per_service": args.endpoints, "rules": rules_count,
        "iptables_nft_save_s": round(save_s, 3), "iptables_nft_save_peak_rss_mb": round(save_rss, 1),
        "rules_json_s": round(rules_s, 3), "rules_peak_rss_mb": round(rules_rss, 1),
        "rules_per_s": round(rules_count / rules_s), "rules_vs_iptables_save": round(rules_s / save_s, 2),
        "trace_last_service_s": round(trace_s, 3), "trace_peak_rss_mb": round(trace_rss, 1),
        "python_startup_s": round(startup_s, 3), "python_startup_peak_rss_mb": round(startup_rss, 1),
    }
    if args.compare:
        (c_rules_s, c_rules_rss), (c_trace_s, c_trace_rss) = best["compared"]["rules"], best["compared"]["trace"]
        result.update({"compared_tree": os.path.abspath(args.compare), "repeat": args.repeat,
                       "compared_rules_json_s": round(c_rules_s, 3), "compared_rules_peak_rss_mb": round(c_rules_rss, 1),
                       "compared_trace_last_service_s": round(c_trace_s, 3),
                       "compared_trace_peak_rss_mb": round(c_trace_rss, 1)})
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:32} {v}")


if __name__ == "__main__":
    main()
