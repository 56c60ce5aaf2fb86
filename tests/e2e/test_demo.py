"""The README's demo command, run as a newcomer would: it must work end to end on the lab."""
import os
import subprocess

from tests.helpers.netns import requires_netns
from tests.helpers.paths import REPO

ROOT = REPO


@requires_netns
def test_demo_runs_the_main_jobs_on_the_lab_and_tears_down(tmp_path):
    env = {**os.environ, "LAB_STATE_DIR": str(tmp_path / "lab"), "TERM": "dumb"}
    try:
        r = subprocess.run(["bash", "scripts/demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out[-3000:]
        assert "app-sidecar" in out and "Running" in out                   # real kubectl against the lab
        # the NAT-split streams joined, the proxy named by its uid (1337) and the rule that redirected them
        assert "→ [istio-proxy 127.0.0.1:15001] → 10.96.0.10:80" in out
        assert "all redirected by nat/ISTIO_REDIRECT: -A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001" in out
        assert "0x002" in out and "0x012" in out                           # the handshake's flag table
        assert "Outbound TCP is redirected to 127.0.0.1:15001" in out      # rules explained
        assert "REDIRECT" in out and "Traceback" not in out
        assert (tmp_path / "lab" / "demo" / "app-sidecar.pcap").stat().st_size > 24
    finally:
        down = subprocess.run(["bash", "scripts/demo.sh", "--down"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert not (tmp_path / "lab" / "lab.pid").exists() or "not running" in down.stdout + down.stderr
