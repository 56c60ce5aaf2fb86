"""`kubectl whose rules` and `kubectl whose trace` offline (--from-file): output, --save/--diff, errors, the
JSON contract."""
from __future__ import annotations

import os
import shlex

import pytest

from tests.helpers.cli import run, run_process
from tests.helpers.paths import FIXTURES as FIXTURE_ROOT

FIXTURES = str(FIXTURE_ROOT / "netfilter")
ISTIO = os.path.join(FIXTURES, "istio-sidecar-legacy-save.txt")
KUBE_PROXY = os.path.join(FIXTURES, "kube-proxy-tracepacket-nat.txt")
KUBE_PROXY_NFT = os.path.join(FIXTURES, "kube-proxy-nftables.json")
CALICO = os.path.join(FIXTURES, "calico-issue-3835.txt")


def test_rules_summary_first_and_custom_chains_nested_under_their_jump():
    r = run("rules", "--from-file", ISTIO, "--pod-ip", "10.1.2.3")
    assert r.code == 0, r.stderr
    lines = r.stdout.splitlines()
    # a claim per line, then what the probes assumed
    assert lines[0] == ("Outbound TCP is redirected to 127.0.0.1:15001, except from uid or gid 1337, to 127.0.0.1 or "
                        "to its own address 10.1.2.3 (unchanged).")
    assert lines[2] == "Inbound TCP is redirected to 10.1.2.3:15006, except to ports 15008, 15020, 15021, 15090 " \
                       "(unchanged)."
    assert "recognised: Istio sidecar" in r.stdout
    jump = next(i for i, ln in enumerate(lines) if ln.rstrip().endswith("-j ISTIO_REDIRECT"))
    chain = lines[jump + 1]
    assert chain.strip(" │└├─") == "ISTIO_REDIRECT"
    assert chain.index("ISTIO_REDIRECT") > lines[jump].index("-j")  # indented deeper than the jump rule
    assert "policy ACCEPT  (1400 pkts, 84000 bytes)" in r.stdout
    assert "-> ISTIO_IN_REDIRECT (shown above)" in r.stdout


def test_rules_json_and_filters():
    r = run("rules", "--from-file", ISTIO, "--table", "nat", "--chain", "ISTIO_REDIRECT", "-o", "json")
    assert r.code == 0, r.stderr
    d = r.json
    assert d["recognized"][0]["name"] == "Istio sidecar"
    [rs] = d["rulesets"]
    assert (rs["backend"], rs["version"], rs["family"]) == ("legacy", "1.8.11", "ipv4")
    [table] = rs["tables"]
    assert [c["name"] for c in table["chains"]] == ["ISTIO_REDIRECT"]
    assert table["chains"][0]["rules"] == [{"text": "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
                                            "target": "REDIRECT", "goto": False, "counters": None,
                                            "unsupported": None}]
    y = run("rules", "--from-file", ISTIO, "-o", "yaml")
    assert y.code == 0 and y.stdout.startswith("summary: Outbound TCP")
    claim = d["claims"][0]
    assert claim["text"].startswith("Outbound TCP is redirected to 127.0.0.1:15001")
    probe = claim["probes"][0]
    assert probe["trace"] == "--to 203.0.113.10:8080 --proto tcp --uid 1000 --gid 1000 --local-ip 192.168.77.2 " \
                             "--route 'default dev eth0'"
    assert probe["outcomes"][0]["destination"] == "127.0.0.1:15001"
    # the flags ask `trace` the very question: it answers what the claim says
    t = run("trace", "--from-file", ISTIO, *shlex.split(probe["trace"]), "-o", "json")
    assert t.code == 0, t.stderr
    assert [(o["verdict"], o["destination"], o["sender_sees"]) for o in t.json["outcomes"]] == \
        [(o["verdict"], o["destination"], o["sender_sees"]) for o in probe["outcomes"]]
    assert d["notes"] == ["The probes took 192.168.77.2 as this host's own address (pass --local-ip)."]


def test_rules_plain_nft_listing(tmp_path):
    """What users paste: `nft list ruleset` text, read into the same model as `-j`."""
    dump = tmp_path / "listing.nft"
    dump.write_text(open(os.path.join(FIXTURES, "writers/kube-proxy-nftables.nft")).read())
    r = run("rules", "--from-file", str(dump), "--pod-ip", "10.77.1.2", "-o", "json")
    assert r.code == 0, r.stderr
    assert r.json["recognized"][0]["name"] == "kube-proxy (nftables mode)"
    assert "Outbound TCP to 172.30.0.44 is refused (REJECT), except to port 80 (DNATed at random to 10.180.0.4:80 " \
           "or 10.180.0.5:80 (50% each))" in r.json["summary"]


def test_rules_nft_json_dump():
    r = run("rules", "--from-file", KUBE_PROXY_NFT, "--chain", "nat-output")
    assert r.code == 0, r.stderr
    assert "recognised: kube-proxy (nftables mode)" in r.stdout
    assert "numgen random mod 2 vmap" in r.stdout and "dnat to 10.180.0.5:80" in r.stdout


@pytest.mark.parametrize("args, code, message", [
    (("--table", "bogus"), 4, "--table bogus: no such table in these rules (tables: nat)"),
    (("--chain", "NOPE"), 4, "--chain NOPE: no such chain (8 chains; list them with `kubectl whose rules` "
                             "without --chain)"),
])
def test_rules_filter_errors(args, code, message):
    r = run("rules", "--from-file", ISTIO, *args)
    assert (r.code, r.stderr.strip()) == (code, f"kubectl-whose: error: {message}")


def test_save_then_diff(tmp_path):
    snap = tmp_path / "before.rules"
    r = run("rules", "--from-file", CALICO, "--save", str(snap))
    assert r.code == 0, r.stderr
    assert "saved 7 rules" in r.stderr
    # counters change, declaration order changes: no difference
    text = open(CALICO).read().replace("[4946241:436171944]", "[1:1]")
    same = tmp_path / "same.txt"
    same.write_text(text)
    r = run("rules", "--from-file", str(same), "--diff", str(snap))
    assert (r.code, r.stdout.strip()) == (0, f"no difference from {snap} (counters and ordering noise ignored)")
    # a NetworkPolicy later: one rule added, one removed
    after = tmp_path / "after.txt"
    after.write_text(text.replace('-m comment --comment "cali:hLIGQ7Yq-h6QiMAU" -m conntrack --ctstate INVALID -j DROP',
                                  '-m comment --comment "cali:NEW" -p tcp -m tcp --dport 8080 -j ACCEPT'))
    r = run("rules", "--from-file", str(after), "--diff", str(snap), "-o", "json")
    assert r.code == 0, r.stderr
    d = r.json
    assert d["identical"] is False
    [chain] = d["chains"]
    assert (chain["table"], chain["chain"], chain["status"]) == ("filter", "cali-fw-calice01ffe2489", "changed")
    # as iptables-save prints them (a comment with ':' is quoted)
    assert chain["added"] == ['-A cali-fw-calice01ffe2489 -p tcp -m comment --comment "cali:NEW" -m tcp --dport 8080 '
                              '-j ACCEPT']
    assert chain["removed"] == ['-A cali-fw-calice01ffe2489 -m comment --comment "cali:hLIGQ7Yq-h6QiMAU" -m conntrack '
                                '--ctstate INVALID -j DROP']
    text_out = run("rules", "--from-file", str(after), "--diff", str(snap)).stdout
    assert "+ -A cali-fw-calice01ffe2489 -p tcp" in text_out and "- -A cali-fw-calice01ffe2489 -m comment" in text_out


def test_save_several_dumps_is_a_snapshot_that_reads_back(tmp_path):
    snap = tmp_path / "snap.json"
    assert run("rules", "--from-file", ISTIO, "--from-file", KUBE_PROXY_NFT, "--save", str(snap)).code == 0
    r = run("rules", "--from-file", ISTIO, "--from-file", KUBE_PROXY_NFT, "--diff", str(snap), "-o", "json")
    assert r.json == {"identical": True, "chains": []}


@pytest.mark.parametrize("content, message", [
    ("just one line of nonsense\n", "not an iptables-save, iptables -S or nft -j dump (first line: "
                                    "'just one line of nonsense')"),
    ("add table inet filter\nadd chain inet filter input\n", "this is an nft -f script (`add rule ...`), not what "
                                                             "`nft list ruleset` prints; load it and send `nft list "
                                                             "ruleset` (or `nft -j list ruleset`) output instead"),
    ("table inet filter {\n  chain input {\n    tcp dport 22 frobnicate\n  }\n}\n",
     "not `nft list ruleset` text as nft prints it (unknown expression 'frobnicate')"),
    ('{"nftables": [', "not `nft -j list ruleset` JSON"),
])
@pytest.mark.parametrize("command", [("rules",), ("trace", "--to", "10.0.0.1:80")])
def test_bad_dump_is_one_line_and_exit_3(tmp_path, content, message, command):
    bad = tmp_path / "bad.txt"
    bad.write_text(content)
    r = run(*command, "--from-file", str(bad))
    assert r.code == 3
    assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"kubectl-whose: error: {bad}: {message}")
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_missing_file_and_missing_pod():
    r = run("rules", "--from-file", "/nonexistent/rules.txt")
    assert (r.code, r.stderr.strip()) == (3, "kubectl-whose: error: --from-file /nonexistent/rules.txt: "
                                             "No such file or directory")
    r = run("rules")
    assert r.code == 2 and "give a POD, or --from-file DUMP" in r.stderr
    r = run("trace", "--to", "10.0.0.1:80", "--from-file", ISTIO, "--inbound", "--uid", "5")
    assert r.code == 2 and "--uid/--gid describe the sending process" in r.stderr
    r = run("trace", "--to", "10.0.0.1", "--from-file", ISTIO)
    assert r.code == 2 and "has no port; use IP:PORT" in r.stderr


def test_trace_json_contract():
    r = run("trace", "--from-file", KUBE_PROXY, "--to", "172.30.0.44:80", "--from", "10.0.0.2", "-o", "json")
    assert r.code == 0, r.stderr
    d = r.json
    assert d["verdict"] == "DNAT"
    assert [(o["probability"], o["destination"], o["verdict"]) for o in d["outcomes"]] == [
        (0.5, "10.180.0.4:80", "DNAT"), (0.5, "10.180.0.5:80", "DNAT")]
    for s in d["steps"]:
        assert set(s) >= {"table", "chain", "rule", "matched", "note"}
        assert isinstance(s["matched"], bool) and all(isinstance(s[k], str) for k in ("table", "chain", "rule", "note"))
    assert isinstance(d["assumptions"], list) and all(isinstance(a, str) for a in d["assumptions"])
    # the statistic rule is in the path, with its branch
    assert any("statistic random p=0.5" in s["note"] for s in d["steps"])


@pytest.mark.parametrize("args, verdict, destination", [
    (("--to", "10.0.0.3:80", "--uid", "1000"), "REDIRECT", "127.0.0.1:15001"),
    (("--to", "10.0.0.3:80", "--uid", "1337", "--gid", "1337"), "ACCEPT", "10.0.0.3:80"),
    (("--inbound", "--from", "10.0.0.9", "--to", "10.1.0.5:8080", "--pod-ip", "10.1.0.5"), "REDIRECT",
     "10.1.0.5:15006"),
    (("--inbound", "--from", "10.0.0.9", "--to", "10.1.0.5:15020", "--pod-ip", "10.1.0.5"), "ACCEPT",
     "10.1.0.5:15020"),
    (("--to", "10.0.0.3:80", "--uid", "1000", "--ctstate", "ESTABLISHED"), "ACCEPT", "10.0.0.3:80"),
])
def test_trace_istio_offline(args, verdict, destination):
    d = run("trace", "--from-file", ISTIO, *args, "-o", "json").json
    assert [(o["verdict"], o["destination"]) for o in d["outcomes"]] == [(verdict, destination)]


def test_trace_names_assumptions_and_unmodelled_matches(tmp_path):
    dump = tmp_path / "odd.rules"
    dump.write_text("*filter\n:OUTPUT ACCEPT [0:0]\n-A OUTPUT -m set --match-set blocked dst -j DROP\n"
                    "-A OUTPUT -m quota --quota 100 -j DROP\n-A OUTPUT -j WEIRDTARGET\nCOMMIT\n")
    d = run("trace", "--from-file", str(dump), "--to", "10.0.0.1:80", "-o", "json").json
    assert d["verdict"] == "ACCEPT"
    text = "\n".join(d["assumptions"])
    assert "ipset blocked: its members are not in the dump; taken as not holding this packet's addresses (pass " \
           "--in-set blocked otherwise)" in text
    assert "match -m quota --quota is not modelled; rules using it are taken as not matching" in text
    assert "target WEIRDTARGET is not a chain in this table and not modelled; assumed to continue" in text
    assert "sender uid unknown" not in text  # no owner match was evaluated
    given = run("trace", "--from-file", str(dump), "--to", "10.0.0.1:80", "--in-set", "blocked", "-o", "json").json
    assert given["verdict"] == "DROP" and given["packet"]["in_sets"] == ["blocked"]


def test_trace_table_output_shows_verdict_path_and_assumptions():
    r = run("trace", "--from-file", KUBE_PROXY, "--to", "172.30.0.44:80", "--from", "10.0.0.2")
    assert r.code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "TCP to 172.30.0.44:80: DNAT -> one of 10.180.0.4:80 (50.0%), 10.180.0.5:80 (50.0%)"
    assert "path 1 of 2 (p=0.5000, 10.180.0.4:80)" in r.stdout
    assert "(the other paths: -o wide)" in r.stdout
    assert "assumptions" in r.stdout
    wide = run("trace", "--from-file", KUBE_PROXY, "--to", "172.30.0.44:80", "--from", "10.0.0.2", "-o", "wide")
    assert "path 2 of 2 (p=0.5000, 10.180.0.5:80)" in wide.stdout


def test_help_has_examples_and_runs_as_a_process():
    p = run_process(["trace", "--help"])
    assert p.returncode == 0 and b"kubectl whose trace my-pod --to 10.96.0.10:80 --uid 1000" in p.stdout
    r = run("rules", "--help")
    assert r.code == 0 and "kubectl whose rules my-pod --diff before.rules" in r.stdout


def test_ctstate_is_an_assumption_unless_given(tmp_path):
    dump = tmp_path / "ct.rules"
    dump.write_text("*filter\n-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A INPUT -j DROP\nCOMMIT\n")
    base = ("trace", "--from-file", str(dump), "--inbound", "--from", "10.0.0.1", "--to", "10.0.0.2:80", "-o", "json")
    d = run(*base).json
    assert d["verdict"] == "DROP" and "conntrack state NEW (a new connection)" in d["assumptions"]
    d = run(*base, "--ctstate", "new").json
    assert d["verdict"] == "DROP" and "conntrack state NEW (a new connection)" not in d["assumptions"]
    d = run(*base, "--ctstate", "ESTABLISHED").json
    assert (d["verdict"], d["packet"]["ctstate"]) == ("ACCEPT", "ESTABLISHED")


def test_rules_wide_shows_rule_counters():
    r = run("rules", "--from-file", CALICO, "-o", "wide")
    assert r.code == 0 and "[4946241:436171944] -m comment --comment \"cali:SElIeFT_TuDlXqwG\"" in r.stdout
    assert "[4946241:436171944]" not in run("rules", "--from-file", CALICO).stdout


DOCKER_HOST_ADDR = [  # `ip -j addr` of a Docker host, trimmed to what the routing reads
    {"ifindex": 1, "ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
    {"ifindex": 2, "ifname": "eth0", "addr_info": [{"family": "inet", "local": "10.0.5.7", "prefixlen": 24}]},
    {"ifindex": 3, "ifname": "docker0", "addr_info": [{"family": "inet", "local": "172.17.0.1", "prefixlen": 16}]}]
DOCKER_HOST_ROUTES = [  # `ip -j route show table all`
    {"dst": "default", "gateway": "10.0.5.1", "dev": "eth0", "flags": []},
    {"dst": "10.0.5.0/24", "dev": "eth0", "scope": "link", "flags": []},
    {"dst": "172.17.0.0/16", "dev": "docker0", "scope": "link", "flags": []},
    {"type": "local", "dst": "10.0.5.7", "table": "local", "dev": "eth0", "flags": []},
    {"type": "local", "dst": "172.17.0.1", "table": "local", "dev": "docker0", "flags": []},
    {"type": "local", "dst": "127.0.0.0/8", "table": "local", "dev": "lo", "flags": []}]


def test_rules_summary_takes_addresses_and_routes_from_ip_dumps(tmp_path):
    """`ip -j addr` and `ip -j route` dumps beside the rules: the probes use the host's own addresses and routes
    (a Docker host: MASQUERADE takes eth0's address, the bridge network is routed to docker0), no assumption."""
    import json

    addr, route = tmp_path / "addr.json", tmp_path / "route.json"
    addr.write_text(json.dumps(DOCKER_HOST_ADDR))
    route.write_text(json.dumps(DOCKER_HOST_ROUTES))
    r = run("rules", "--from-file", os.path.join(FIXTURES, "writers/docker-bridge.rules"), "--from-file", str(addr),
            "--from-file", str(route), "-o", "json")
    assert r.code == 0, r.stderr
    assert "Outbound TCP from 172.17.0.0/16 is masqueraded to 10.0.5.7, except to 172.17.0.2 or leaving via " \
           "docker0 (unchanged)" in r.json["summary"]
    assert "Inbound TCP to port 8080 is DNATed to 172.17.0.2:80" in r.json["summary"]
    assert r.json["notes"] == []
