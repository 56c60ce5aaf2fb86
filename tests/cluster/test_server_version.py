"""The release read from /version and the rules it implies (each sourced in kubectl_whose/cluster/server_version.py).

The lab enforces the same rules per release and the real kubectl judges the lab (tests/lab/test_spdy.py); here
the table is held to what the sources say, release by release."""
import pytest

from kubectl_whose.cluster.server_version import ServerRules, parse_version


@pytest.mark.parametrize("info, minor", [
    ({"major": "1", "minor": "35", "gitVersion": "v1.35.0"}, 35),
    ({"major": "1", "minor": "29+", "gitVersion": "v1.29.3-gke.1200"}, 29),  # GKE
    ({"major": "1", "minor": "", "gitVersion": "v1.30.2+k3s1"}, 30),  # minor missing: from gitVersion
    ({"major": "", "minor": "", "gitVersion": "v1.27.16-eks-a18cd3a"}, 27),
    ({"gitVersion": "unknown"}, None),
    ({}, None),
], ids=["plain", "gke-plus", "k3s", "eks", "garbage", "empty"])
def test_parse_version_reads_managed_clusters_too(info, minor):
    assert parse_version(info).minor == minor


# minor: (v5 served, WebSocket verbs, ephemeral containers, PodSecurity, label enforced)
RULES = {
    22: (False, ("get",), "alpha, off by default", "alpha, off by default", False),
    23: (False, ("get",), "beta, on by default", "beta, on by default", True),
    25: (False, ("get",), "GA", "GA", True),
    29: (False, ("get",), "GA", "GA", True),  # TranslateStreamCloseWebsocketRequests alpha, off
    30: (True, ("get",), "GA", "GA", True),  # ... beta, on
    34: (True, ("get",), "GA", "GA", True),
    35: (True, ("get", "create"), "GA", "GA", True),  # AuthorizePodWebsocketUpgradeCreatePermission beta, on
    37: (True, ("get", "create"), "GA", "GA", True),
    None: (True, ("get", "create"), "GA", "GA", True),  # unknown: the newest rules
}


@pytest.mark.parametrize("minor", list(RULES), ids=[str(m) for m in RULES])
def test_each_release_rules(minor):
    rules = ServerRules(f"v1.{minor}.0" if minor else "", minor)
    v5, verbs, ephemeral, psa, enforced = RULES[minor]
    assert rules.websocket_v5 is v5
    assert rules.websocket_protocol == ("v5.channel.k8s.io" if v5 else "v4.channel.k8s.io")
    assert rules.websocket_verbs == verbs
    assert rules.spdy_verbs == ("create",)
    assert (rules.ephemeral_stage, rules.pod_security_stage, rules.pod_security_enforced) == (ephemeral, psa, enforced)
