"""Inbound connections through the sidecar, linked to the proxy's local leg, in the lab: another pod calls
`app-sidecar-nft:8080`, Istio's PREROUTING rules REDIRECT it to the proxy on 15006, and the proxy opens its own
connection from 127.0.0.6 to the app. The oracle is the proxy itself: it logs, for every connection it relays,
the peer it accepted and the local end of the connection it opened (tests/lab/proxy.py)."""
from __future__ import annotations

import json
import threading
import time

from tests.helpers.cli import run

POD = "app-sidecar-nft"


def test_every_inbound_connection_is_linked_to_the_leg_the_proxy_really_opened(lab, tmp_path):
    target = lab.pods[POD].ip
    stop = threading.Event()

    def calls():
        time.sleep(1.5)  # let tcpdump start
        for _ in range(5):
            lab.netns_run("client", ["curl", "-s", "-m", "2", f"http://{target}:8080/"], check=False)
            time.sleep(0.3)
        stop.set()

    t = threading.Thread(target=calls, daemon=True)
    t.start()
    saved = tmp_path / "in.pcap"
    r = lab.whose("capture", POD, "-i", "any", "--duration", "5s", "-f", "tcp port 8080", "-o", "json",
                  "-w", str(saved))
    t.join()
    assert r.code == 0, r.stderr
    relays = [json.loads(line) for line in lab.kubectl("logs", POD, "-c", "istio-proxy").stdout.splitlines()
              if line.startswith("{")]
    truth = {x["peer"]: x["upstream_local"] for x in relays
             if x["relay"] == "inbound" and x["peer"].startswith(lab.pods["client"].ip + ":")}
    links = r.json["inbound"]
    ours = {x["client"]: x["local_client"] for x in links}
    seen = {k: v for k, v in truth.items() if k in ours}
    assert len(seen) == 5, (truth, ours)
    assert ours == seen  # every link is one the proxy really made, and none is missing
    for x in links:
        assert x["service"] == f"{target}:8080" and not x["by_timing_only"] and x["mesh"] == "istio"
        assert any("127.0.0.6" in e for e in x["evidence"])
    # offline, the same links from the saved file once the pod's address is given
    offline = run("analyze", str(saved), "--local-ip", target, "-o", "json")
    assert offline.code == 0, offline.stderr
    assert {x["client"]: x["local_client"] for x in offline.json["inbound"]} == ours
