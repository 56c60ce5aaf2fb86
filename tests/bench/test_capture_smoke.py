"""bench/bench_capture.py still runs (tiny packet count, no lab), so it cannot rot between releases."""
import re
import subprocess
import sys
from tests.helpers.paths import REPO

ROOT = REPO


def test_live_analysis_bench_runs_and_counts_every_packet():
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_capture.py"), "--no-lab", "--packets", "3000"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^live analysis: 3000 packets \([\d.]+ MB\) in [\d.]+ s = \d+k pkt/s", r.stdout, re.M), r.stdout
