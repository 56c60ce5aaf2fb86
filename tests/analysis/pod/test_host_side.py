"""Finding a pod's host-side interface from the node's own tables, on outputs the real tools printed in the lab
(`ip -j route get`, `ip -d -j link show`, `ip -j neigh show`, `bridge -j fdb show`, iputils `arping`): both CNI
styles, a stale ARP entry, and the failure that lists the candidates. The end-to-end proof against the kernel's
own veth pairing is tests/e2e/test_node.py."""
from __future__ import annotations

import json

import pytest

from kubectl_whose.analysis.pod.host_side import arping_mac, find_host_interface
from kubectl_whose.errors import ExitCode, WhoseError

LINKS = json.dumps([
    {"ifindex": 2, "ifname": "cbr0", "linkinfo": {"info_kind": "bridge"}},
    {"ifindex": 7, "ifname": "veth0005", "master": "cbr0", "linkinfo": {"info_kind": "veth"}},
    {"ifindex": 8, "ifname": "veth0001", "master": "cbr0", "linkinfo": {"info_kind": "veth"}},
    {"ifindex": 9, "ifname": "cali0000000000a", "linkinfo": {"info_kind": "veth"}},
])
BRIDGED_ROUTE = '[{"dst":"10.244.0.20","dev":"cbr0","prefsrc":"10.244.0.1","flags":[],"uid":0,"cache":[]}]'
ROUTED_ROUTE = '[{"dst":"10.244.1.1","dev":"cali0000000000a","prefsrc":"10.244.0.1","flags":[],"uid":0,"cache":[]}]'
NEIGH = '[{"dst":"10.244.0.20","dev":"cbr0","lladdr":"7a:23:42:99:d9:c9","state":["STALE"]}]'
FDB = json.dumps([
    {"mac": "33:33:00:00:00:01", "ifname": "cbr0", "flags": ["self"], "state": "permanent"},
    {"mac": "7a:23:42:99:d9:c9", "ifname": "veth0005", "flags": [], "master": "cbr0", "state": ""},
    {"mac": "fa:48:6b:3f:d0:91", "ifname": "veth0005", "flags": [], "master": "cbr0", "state": "permanent"},
    {"mac": "a6:24:5a:99:72:26", "ifname": "veth0001", "flags": [], "master": "cbr0", "state": ""},
])


def test_a_routed_cni_is_named_by_the_route_alone():
    found = find_host_interface("10.244.1.1", ROUTED_ROUTE, LINKS, "[]", "[]", "lab-node")
    assert (found.name, found.style) == ("cali0000000000a", "routed")
    assert "ip route get 10.244.1.1" in found.why


def test_a_bridged_cni_goes_from_the_arp_entry_to_the_bridge_port():
    found = find_host_interface("10.244.0.20", BRIDGED_ROUTE, LINKS, NEIGH, FDB, "lab-node")
    assert (found.name, found.style, found.bridge, found.mac) == ("veth0005", "bridged", "cbr0", "7a:23:42:99:d9:c9")
    assert "the node's ARP entry" in found.why


def test_a_port_own_permanent_address_is_not_the_pods():
    # veth0005's own MAC is a permanent fdb entry on that port; only a learned entry is the pod behind it
    neigh = '[{"dst":"10.244.0.20","dev":"cbr0","lladdr":"fa:48:6b:3f:d0:91","state":["REACHABLE"]}]'
    with pytest.raises(WhoseError):
        find_host_interface("10.244.0.20", BRIDGED_ROUTE, LINKS, neigh, FDB, "lab-node")


def test_a_stale_arp_entry_gives_way_to_the_pods_own_answer():
    stale = '[{"dst":"10.244.0.20","dev":"cbr0","lladdr":"de:ad:be:ef:00:01","state":["STALE"]}]'
    with pytest.raises(WhoseError) as e:
        find_host_interface("10.244.0.20", BRIDGED_ROUTE, LINKS, stale, FDB, "lab-node")
    assert e.value.code == ExitCode.BAD_INTERFACE
    assert e.value.message.endswith("pass -i with one of the bridge's ports: veth0005, veth0001")
    reply = ("ARPING 10.244.0.20 from 10.244.0.1 cbr0\nUnicast reply from 10.244.0.20 [A6:24:5A:99:72:26]  0.598ms\n"
             "Sent 1 probes (1 broadcast(s))\nReceived 1 response(s)\n")
    found = find_host_interface("10.244.0.20", BRIDGED_ROUTE, LINKS, stale, FDB, "lab-node", arp_reply=reply)
    assert found.name == "veth0001" and "its answer to an ARP request" in found.why


def test_no_route_and_no_answer_are_one_line_each():
    with pytest.raises(WhoseError) as e:
        find_host_interface("10.9.9.9", "[]", LINKS, "[]", "[]", "lab-node")
    assert e.value.code == ExitCode.BAD_INTERFACE and "no route to the pod's address 10.9.9.9" in e.value.message
    with pytest.raises(WhoseError) as e:
        find_host_interface("10.244.0.20", BRIDGED_ROUTE, LINKS, "[]", FDB, "lab-node", arp_reply="Sent 1 probes\n")
    assert "answers no ARP request from the node" in e.value.message


def test_arping_mac_reads_iputils_output():
    assert arping_mac("Unicast reply from 10.0.0.1 [7A:79:0F:00:8B:04]  0.6ms") == "7a:79:0f:00:8b:04"
    assert arping_mac("Timeout\n") is None
