"""`rules` and `trace` live, through the lab's API server and exec WebSocket (tests/lab): the rule recipes run
in the ephemeral debug container of the `app-sidecar` pods (Istio rules via iptables-legacy and iptables-nft).

Oracle: the pod's rules read directly in its network namespace with the real save tools, not through the
plugin."""
from __future__ import annotations

from kubectl_whose.analysis.netfilter.iptables_save import parse_iptables
from kubectl_whose.cluster.image import DEFAULT_IMAGE
from kubectl_whose.errors import ExitCode




def _direct(lab, pod, tool):
    rs = parse_iptables(lab.netns_run(pod, [tool]).stdout)
    return {t: {c: [r.key() for r in ch.rules] for c, ch in tab.chains.items()} for t, tab in rs.tables.items()}


def _seen(ruleset: dict):
    return {t["name"]: {c["name"]: [r["text"] for r in c["rules"]] for c in t["chains"]} for t in ruleset["tables"]}


def test_rules_live_reads_the_backend_that_holds_the_rules(lab):
    for pod, backend, tool in (("app-sidecar", "legacy", "iptables-legacy-save"),
                               ("app-sidecar-nft", "nft", "iptables-nft-save")):
        r = lab.whose("rules", pod, "-o", "json")
        assert r.code == 0, r.stderr
        d = r.json
        assert d["recognized"][0]["name"] == "Istio sidecar", d["recognized"]
        assert d["summary"].startswith("Outbound TCP is redirected to 127.0.0.1:15001, except from uid or gid 1337")
        ipv4 = [rs for rs in d["rulesets"] if rs.get("family") == "ipv4"]
        assert [rs["backend"] for rs in ipv4] == [backend]
        assert _seen(ipv4[0])["nat"] == _direct(lab, pod, tool)["nat"]


def test_trace_live_uses_the_pods_own_address(lab):
    pod_ip = lab.pods["app-sidecar"].ip
    r = lab.whose("trace", "app-sidecar", "--to", f"{lab.service_ip}:{lab.service_port}", "--uid", "1000",
              "-o", "json")
    assert r.code == 0, r.stderr
    assert [(o["verdict"], o["destination"]) for o in r.json["outcomes"]] == [("REDIRECT", "127.0.0.1:15001")]
    r = lab.whose("trace", "app-sidecar", "--inbound", "--from", lab.pods["client"].ip, "--to",
              f"{pod_ip}:8080", "-o", "json")
    assert r.code == 0, r.stderr
    assert [(o["verdict"], o["destination"]) for o in r.json["outcomes"]] == [("REDIRECT", f"{pod_ip}:15006")]
    assert not any("pod address" in a for a in r.json["assumptions"]), r.json["assumptions"]


def test_rules_live_errors(lab):
    r = lab.whose("rules", "no-such-pod")
    assert r.code == ExitCode.NOT_FOUND and "no-such-pod" in r.stderr and "Traceback" not in r.stderr


def test_rules_live_image_without_iptables_is_tool_missing(lab):
    # a pod of its own, so the debug container added here touches no shared lab pod
    with lab.isolated_namespace(prefix="rc") as ns:
        lab.create_pod(ns, "plain", image="busybox:1.36")
        r = lab.whose("rules", "plain", "-n", ns, "--image", "busybox:1.36")
    assert r.code == ExitCode.TOOL_MISSING, (r.code, r.stderr)
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("kubectl-whose: error")]
    assert errors == ["kubectl-whose: error: the debug image busybox:1.36 has none of iptables-legacy-save, "
                      f"iptables-nft-save, nft; pass --image with an image that carries them (e.g. {DEFAULT_IMAGE})"]
    assert "Traceback" not in r.stderr
