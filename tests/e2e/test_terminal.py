"""The live commands in a real terminal (tmux) at 80, 100, 120 and 200 columns, against the lab: every value of
their `-o json` is whole on the screen (or its column is said to be left out), nothing runs past the edge.
The offline commands get the same check in tests/cli/test_terminal.py (whose helpers this reuses)."""
from __future__ import annotations

import pytest

from tests.cli.test_terminal import SIZE_IDS, SIZES, assert_whole, stream_values
from tests.helpers.cli import run
from tests.helpers.terminal import run_in_terminal, tmux_missing, words

pytestmark = pytest.mark.skipif(tmux_missing() is not None, reason=tmux_missing() or "")
POD = "app-sidecar"


def live(lab, *args):
    return [*args, "--kubeconfig", str(lab.kubeconfig)]


@pytest.mark.parametrize("width, output", SIZES, ids=SIZE_IDS)
def test_capture(lab, tmp_path, width, output):
    """The screen of a live capture against the JSON of the very bytes it saved (`analyze -w's file`)."""
    saved = tmp_path / "c.pcap"
    screen = run_in_terminal(live(lab, "capture", POD, "-i", "any", "--duration", "2s", "-w", str(saved), "-o",
                                  output), width)
    data = run("analyze", str(saved), "-o", "json").json
    assert data["streams"] and data["connections"], screen
    values = stream_values(data["streams"])
    if output == "table":
        values.pop("FRAME")
    values["STREAMS"] = [" + ".join(map(str, c["streams"])) for c in data["connections"]]
    values["CONNECTION"] = [c["client"] for c in data["connections"]] + [c["original_dst"]
                                                                         for c in data["connections"]]
    assert_whole(screen, values)


@pytest.mark.parametrize("width, output", SIZES, ids=SIZE_IDS)
def test_rules(lab, width, output):
    data = lab.whose("rules", POD, "-o", "json").json
    rules = [r["text"].split(" ", 2)[2] for rs in data["rulesets"] if "tables" in rs and isinstance(rs["tables"], list)
             for t in rs["tables"] for c in t.get("chains", []) for r in c.get("rules", []) if "text" in r]
    assert rules
    screen = run_in_terminal(live(lab, "rules", POD, "-o", output), width)
    assert_whole(screen, {"summary": words(data["summary"]), "rules": words(*rules)})


@pytest.mark.parametrize("width, output", SIZES, ids=SIZE_IDS)
def test_trace(lab, width, output):
    args = ["trace", POD, "--to", f"{lab.service_ip}:{lab.service_port}", "--uid", "1000"]
    data = lab.whose(*args, "-o", "json").json
    screen = run_in_terminal(live(lab, *args, "-o", output), width)
    o = data["outcomes"]
    assert_whole(screen, {"DESTINATION": [x["destination"] for x in o], "VERDICT": [x["verdict"] for x in o],
                          "NAT": words(*(n for x in o for n in x["nat"])),
                          "path": words(*(s["rule"] for s in o[0]["steps"] if s["matched"]))})


@pytest.mark.parametrize("width, output", SIZES, ids=SIZE_IDS)
def test_net(lab, width, output):
    data = lab.whose("net", POD, "-o", "json").json
    screen = run_in_terminal(live(lab, "net", POD, "-o", output), width)
    listening = [s for s in data["sockets"] if s["state"] == "LISTEN"]
    assert_whole(screen, {"NAME": [i["display_name"] for i in data["interfaces"]],
                          "ADDRESSES": [f"{a['local']}/{a['prefixlen']}" for i in data["interfaces"]
                                        for a in i["addresses"] if a["scope"] != "link"],
                          "LOCAL": [s["local"] for s in listening], "OWNER": [str(s["uid"]) for s in listening],
                          "note": words("the sockets of uid 1337 show no process", "kubectl whose net app-sidecar "
                                        "--ptrace")})


@pytest.mark.parametrize("width, output", SIZES, ids=SIZE_IDS)
def test_doctor_failing_with_its_fix(lab, width, output):
    """A baseline namespace: the FIX holds the label to set, the very value that used to be cut."""
    with lab.isolated_namespace(labels={"pod-security.kubernetes.io/enforce": "baseline"}) as ns:
        lab.create_pod(ns, "p")
        data = lab.whose("doctor", "p", "-n", ns, "-o", "json")
        assert data.code != 0
        checks = data.json["checks"]
        assert any("pod-security.kubernetes.io/enforce=privileged" in c["fix"] for c in checks)
        screen = run_in_terminal(live(lab, "doctor", "p", "-n", ns, "-o", output), width)
        screen.code = 0 if screen.code == data.code else screen.code  # doctor exits with the failing check's code
        stable = [c for c in checks if c["name"] != "debug container"]
        assert_whole(screen, {"CHECK": [c["name"] for c in checks], "RESULT": [c["result"] for c in checks],
                              "DETAIL": [w for w in words(*(c["detail"] for c in stable)) if "whose-" not in w],
                              "FIX": words(*(c["fix"] for c in checks))})


@pytest.mark.parametrize("width, output", SIZES, ids=SIZE_IDS)
def test_ps(lab, width, output):
    lab.whose("net", POD, "-o", "json")  # at least one running container of ours
    data = lab.whose("ps", POD, "-o", "json").json
    screen = run_in_terminal(live(lab, "ps", POD, "-o", output), width)
    rows = data["containers"]
    assert_whole(screen, {"NAME": [r["name"] for r in rows], "IMAGE": [r["image"] for r in rows],
                          "STATE": words(*(r["state"] for r in rows)), "STARTED": [r["started"] or "-" for r in rows],
                          "CAPABILITIES": [",".join(r["capabilities"]) for r in rows] if output == "wide" else []})
