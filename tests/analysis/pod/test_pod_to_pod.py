"""The pod-to-pod join's refusals: what must never join (the lab test, tests/e2e/test_many.py, proves the
joins it makes against what the echo pods saw). Rows are the summary's stream rows, the fields the join reads."""
from __future__ import annotations

from kubectl_whose.analysis.pod.pod_to_pod import PodCapture, join_pods

T = 1_700_000_000.0


def row(index, client, server, isn, synack=None, t=T):
    return {"proto": "tcp", "index": index, "client": client, "server": server, "client_isn": isn,
            "server_isn": synack, "first_abs_ts": t, "start": 0.0, "duration": 0.01}


def pods(*rows_by_pod):
    return [PodCapture(f"default/p{i}", "n1", [ip], rows) for i, (ip, rows) in enumerate(rows_by_pod)]


def test_a_serviced_connection_joins_with_its_dnat():
    links = join_pods(pods(("10.0.0.1", [row(3, "10.0.0.1:40000", "10.96.0.10:80", 111, 222)]),
                           ("10.0.0.2", [row(0, "10.0.0.1:40000", "10.0.0.2:8080", 111, 222, T + 0.001)])))
    assert len(links) == 1 and links[0]["nat"] == ["DNAT 10.96.0.10:80 -> 10.0.0.2:8080"]
    assert (links[0]["from"]["stream"], links[0]["to"]["stream"]) == (3, 0)


def test_an_isn_seen_twice_on_one_side_joins_nothing():
    # a port reuse or a copy: two SYNs with the same ISN leave the client; which one arrived is not proved
    links = join_pods(pods(("10.0.0.1", [row(0, "10.0.0.1:40000", "10.96.0.10:80", 111),
                                         row(1, "10.0.0.1:40001", "10.96.0.10:80", 111)]),
                           ("10.0.0.2", [row(0, "10.0.0.1:40000", "10.0.0.2:8080", 111)])))
    assert links == []


def test_the_same_isn_in_unrelated_pods_joins_nothing():
    links = join_pods(pods(("10.0.0.1", [row(0, "10.0.0.1:40000", "10.96.0.10:80", 111)]),
                           ("10.0.0.2", [row(0, "10.0.0.9:5555", "10.0.0.2:8080", 111)]),
                           ("10.0.0.3", [row(0, "10.0.0.8:6666", "10.0.0.3:8080", 111)])))
    assert links == []  # it arrives at two pods: not one connection's number


def test_different_server_isns_are_different_connections():
    links = join_pods(pods(("10.0.0.1", [row(0, "10.0.0.1:40000", "10.96.0.10:80", 111, 222)]),
                           ("10.0.0.2", [row(0, "10.0.0.1:40000", "10.0.0.2:8080", 111, 999)])))
    assert links == []


def test_a_sighting_too_far_apart_in_time_joins_nothing_and_two_nodes_carry_a_caveat():
    far = join_pods(pods(("10.0.0.1", [row(0, "10.0.0.1:40000", "10.0.0.2:80", 111)]),
                         ("10.0.0.2", [row(0, "10.0.0.1:40000", "10.0.0.2:80", 111, t=T + 60)])))
    assert far == []
    a, b = pods(("10.0.0.1", [row(0, "10.0.0.1:40000", "10.0.0.2:80", 111)]),
                ("10.0.0.2", [row(0, "10.0.0.1:40000", "10.0.0.2:80", 111, t=T + 0.002)]))
    b.node = "n2"
    (link,) = join_pods([a, b])
    assert link["nat"] == [] and "two clocks" in link["clock_caveat"]
