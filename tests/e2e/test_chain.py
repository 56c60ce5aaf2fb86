"""One connection from app to app across two nodes, with sidecars on both sides: web-client (on lab-node-2) calls
the web Service, kube-proxy's rules on its node pick web-0 (lab-node) or web-1 (lab-node-2), and each side's
sidecar proxy carries the connection (outbound through 15001, inbound through 15006 and 127.0.0.6).

Oracles: the proxies' own logs (tests/lab/proxy.py writes, for every relay, the peer it accepted, the local end of
the connection it opened, and the original destination); the server app's answer, which names the app that
answered and the peer it saw (tests/lab/traffic.py); the node's kube-proxy rules and their counters
(iptables-nft-save -c in the node's namespace) for the rule that chose the endpoint.
"""
from __future__ import annotations

import json

import pytest

from tests.helpers.netns import requires_tools

pytestmark = [requires_tools("tcpdump", "tshark")]
SERVICE = "10.96.0.20:80"


def relays(lab, pod: str, kind: str) -> list:
    return [x for x in (json.loads(line) for line in lab.kubectl("logs", pod, "-c", "istio-proxy").stdout.splitlines()
                        if line.startswith("{")) if x["relay"] == kind]


def truth(lab) -> dict:
    """(upstream local end of the client sidecar, server pod) -> (the app ends that sidecar relayed from that local
    end, the server proxy's local leg). A local port may serve two connections to two endpoints (a port is unique
    per destination), so the server pod is part of the key and the app end a set."""
    out: dict = {}
    for x in relays(lab, "web-client", "outbound"):
        if x["dst"] == SERVICE:
            out.setdefault(x["upstream_local"], set()).add(x["peer"])
    chains = {}
    for pod in ("web-0", "web-1"):
        for x in relays(lab, pod, "inbound"):
            if x["peer"] in out:
                chains[(x["peer"], f"default/{pod}")] = (out[x["peer"]], x["upstream_local"])
    return chains


@pytest.fixture(scope="module")
def chain_capture(lab, tmp_path_factory):
    merged = tmp_path_factory.mktemp("chain") / "web.pcapng"
    r = lab.whose("capture", "deploy/web-client", "deploy/web", "--duration", "5s", "-f", "tcp", "-o", "json",
                  "-w", str(merged))
    assert r.code == 0, r.stderr
    return r, merged


def test_every_chain_the_proxies_made_is_found_and_none_is_invented(lab, chain_capture):
    r, _ = chain_capture
    rows = {(f"{p['namespace']}/{p['pod']}", s["index"]): s for p in r.json["pods"] for s in p["streams"]}
    known = truth(lab)
    ours = {}
    for link in r.json["links"]:
        assert link["from"]["pod"] == "default/web-client", link
        hops = {h["what"]: h for h in link["hops"]}
        assert list(hops) == ["app -> sidecar", "leaves", "arrives", "sidecar -> app"], link["text"]
        app_leg = rows[("default/web-client", hops["app -> sidecar"]["streams"][0])]
        local_leg = rows[(link["to"]["pod"], hops["sidecar -> app"]["streams"][0])]
        ours[(link["from"]["client"], link["to"]["pod"])] = (app_leg["client"], local_leg["client"])
        assert link["nat"] == [f"DNAT {SERVICE} -> {link['to']['server']}"]  # pod to pod: no SNAT
    # a connection both captures saw from its first SYN on is in the proxies' logs, and the reverse
    # (the pods' captures start a little apart: a connection opened in between is seen from its SYN by one only)
    syns_seen = {s["client"] for (pod, _), s in rows.items() if pod != "default/web-client" and s["client_isn"]}
    client_syns = {s["client"] for (pod, _), s in rows.items() if pod == "default/web-client" and s["client_isn"]}
    assert ours, r.stderr
    seen = {k for k, (apps, _) in known.items() if k[0] in syns_seen and k[0] in client_syns and apps & client_syns}
    assert set(ours) == seen
    for k, (app, local) in ours.items():
        assert app in known[k][0] and local == known[k][1], k


def test_across_nodes_the_clock_caveat_is_said_and_on_one_node_it_is_not(lab, chain_capture):
    r, _ = chain_capture
    nodes = {f"{p['namespace']}/{p['pod']}": p["node"] for p in r.json["pods"]}
    assert nodes == {"default/web-client": "lab-node-2", "default/web-0": "lab-node", "default/web-1": "lab-node-2"}
    by_server = {}
    for link in r.json["links"]:
        by_server.setdefault(link["to"]["pod"], []).append(link)
    assert set(by_server) == {"default/web-0", "default/web-1"}, "both endpoints should have been chosen"
    assert all("lab-node-2" in x["clock_caveat"] and "lab-node" in x["clock_caveat"] for x in by_server["default/web-0"])
    assert all(x["clock_caveat"] is None for x in by_server["default/web-1"])


def test_from_the_nodes_each_service_hop_names_the_kube_proxy_rule_that_chose_its_endpoint(lab):
    r = lab.whose("capture", "deploy/web-client", "deploy/web", "--node", "--duration", "5s", "-f", "tcp port 80 or "
                  "tcp port 8080", "-o", "json")
    assert r.code == 0, r.stderr
    links = [x for x in r.json["links"] if x["from"]["server"] == SERVICE]
    assert links, r.stderr
    # the kernel's own dump of the client node's rules, with counters
    nat = lab.node_run(["iptables-nft-save", "-c", "-t", "nat"], node="lab-node-2").stdout.splitlines()
    for link in links:
        rule = link["service_rule"]
        assert rule["node"] == "lab-node-2" and rule["chain"].startswith("KUBE-SEP-"), link
        assert rule["rule"].endswith(f"--to-destination {link['to']['server']}")
        assert rule["endpoints"] == 2 and rule["probability"] == 0.5
        used = [line for line in nat if line.split("] ", 1)[-1] == rule["rule"]]
        assert len(used) == 1 and not used[0].startswith("[0:0]"), (rule, used)
        assert any(rule["chain"] in p for p in link["proof"])
