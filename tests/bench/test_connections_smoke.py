"""bench/bench_connections.py still runs end to end (a small request count), so it cannot rot."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers.netns import requires_netns, requires_tools
from tests.helpers.paths import REPO

ROOT = REPO


@requires_netns
@requires_tools("tcpdump", "tshark", "iptables-legacy-restore", "ip6tables-legacy-restore", "setpriv")
def test_bench_connections_joins_every_request():
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_connections.py"), "--requests", "60", "--json"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert (res["joins"], res["linked"], res["correct"]) == (60, 60, True)
    assert res["streams"] == 3 * 60 + 1  # app→proxy, its answer, the proxy's upstream; plus the end marker
    assert res["tshark_s"] > 0 and res["ours_peak_rss_mib"] > 1
