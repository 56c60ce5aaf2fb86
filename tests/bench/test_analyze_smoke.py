"""The benchmark script still runs end to end (tiny packet count), so it cannot rot between releases."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers.netns import requires_netns, requires_tools
from tests.helpers.paths import REPO

ROOT = REPO

pytestmark = [pytest.mark.root, pytest.mark.slow]


@requires_netns
@requires_tools("nginx", "ab", "tcpdump", "tshark", "curl")
def test_bench_records_real_traffic_and_times_both_tools(tmp_path):
    keep = tmp_path / "bench.pcap"
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_analyze.py"), "--packets", "3000",
                        "--keep", str(keep), "--json", "--pcapng", "--python-engine"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["packets"] >= 3000 and keep.exists()
    # the recorded file is what tshark reads too: same frame count, same number of TCP streams
    rows = subprocess.run(["tshark", "-n", "-r", str(keep), "-T", "fields", "-e", "tcp.stream"],
                          capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(rows) == res["packets"]
    assert len(set(rows) - {""}) == res["streams"] > 250  # ab: one connection per request
    for tool in ("ours", "tshark"):
        assert res[tool]["wall_s"] > 0 and res[tool]["peak_rss_mb"] > 1
    assert res["speedup_vs_tshark"] == pytest.approx(res["tshark"]["wall_s"] / res["ours"]["wall_s"], rel=0.02)
    assert res["flat_memory"]["quarter_packets"] == res["packets"] // 4
    assert res["ours_stream0"]["peak_rss_mb"] > 1
    assert res["engine"] in ("native", "python")
    assert res["pcapng"]["ours"]["wall_s"] > 0 and res["pcapng"]["tshark"]["peak_rss_mb"] > 1
    if res["engine"] == "native":
        assert res["ours_python_engine"]["wall_s"] > 0
