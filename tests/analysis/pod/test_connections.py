"""THE PROOF: NAT-split streams joined, in real namespaces with real Istio rules, a real SO_ORIGINAL_DST
proxy (uid 1337), real tcpdump on `-i any` and `-i lo`, streams from the analysis engine.

Ground truth comes from outside our code: the app records which destination it chose and its own port;
the proxy records what the kernel told it (SO_ORIGINAL_DST) and the port of its upstream socket; tshark
gives tcp.stream, raw seq/ack and addresses of every frame.
"""
from __future__ import annotations

import copy
import io
import subprocess
from typing import Dict, List

import pytest

from kubectl_whose.analysis.pod.connections import join_connections
from kubectl_whose.analysis.pod.netinfo import build_netinfo
from kubectl_whose.analysis.netfilter.iptables_save import parse_iptables
from kubectl_whose.analysis.streams import analyze_file
from kubectl_whose.collect.netinfo import RECIPES
from tests.helpers.netns import NetLab, requires_netns, requires_tools, sweep_stale
from tests.helpers.sidecar_lab import SidecarPod

pytestmark = [requires_netns, requires_tools("tcpdump", "tshark", "iptables-legacy-restore", "ip6tables-legacy-restore",
                                             "setpriv", "ss")]

N = 6  # requests per scenario, cycling over three destinations (two hosts, two ports)
BURST = 12  # connections opened back to back before any is used, over two destinations
IFACES = ("any", "lo")


def collect_net(pod):
    return {name: pod.run(list(r.argv), check=False).stdout for name, r in RECIPES.items()}


def tshark_frames(path) -> List[Dict]:
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-E", "separator=|", "-e", "tcp.stream",
                          "-e", "ip.src", "-e", "ipv6.src", "-e", "tcp.srcport", "-e", "ip.dst", "-e", "ipv6.dst",
                          "-e", "tcp.dstport", "-e", "tcp.flags", "-e", "tcp.seq_raw", "-e", "tcp.ack_raw",
                          "-e", "frame.time_epoch"], capture_output=True, text=True, check=True).stdout
    frames = []
    for line in out.splitlines():
        st, src4, src6, sp, dst4, dst6, dp, flags, seq, ack, t = line.split("|")
        src = src4 or f"[{src6}]"
        dst = dst4 or f"[{dst6}]"
        frames.append({"stream": int(st), "src": f"{src}:{sp}", "dst": f"{dst}:{dp}", "flags": int(flags, 16),
                       "seq": int(seq), "ack": int(ack), "t": float(t)})
    return frames


def analyse(run, iface, with_net=True, with_rules=None):
    path = run.pcaps[iface]
    summary = analyze_file(path).to_dict()
    net = build_netinfo(run.collected) if with_net and run.collected else None
    joins = join_connections(summary, sockets=net.sockets if net else None, rules=with_rules,
                             local_addresses=net.local_addresses() if net else ())
    return summary, joins


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory):
    sweep_stale("F")
    work = tmp_path_factory.mktemp("kwF-connections")
    with NetLab("F") as lab:
        sidecar = SidecarPod(lab, 11, work)
        rules = parse_iptables(sidecar.pod.run(["iptables-legacy-save"]).stdout)
        dests = [sidecar.destinations()[i % 3] for i in range(N)]
        side_run = sidecar.run(dests, collect=collect_net)
        plain = SidecarPod(lab, 12, work, redirect=False, proxy=False)
        plain_run = plain.run([plain.destinations()[i % 3] for i in range(N)], collect=collect_net)
        closed = SidecarPod(lab, 13, work, proxy=False)
        closed_run = closed.run([closed.destinations()[i % 3] for i in range(N)], collect=collect_net)
        linkerd = SidecarPod(lab, 14, work, mesh="linkerd")
        linkerd_rules = parse_iptables(linkerd.pod.run(["iptables-legacy-save"]).stdout)
        linkerd_run = linkerd.run([linkerd.destinations()[i % 3] for i in range(N)], collect=collect_net)
        v6 = SidecarPod(lab, 17, work)
        v6_rules = parse_iptables(v6.pod.run(["ip6tables-legacy-save"]).stdout)
        v6_run = v6.run([v6.destinations6()[i % 3] for i in range(N)], collect=collect_net)
        # uid 1337 calling the pod's own address: Istio's `-o lo ... --uid-owner 1337 -j ISTIO_IN_REDIRECT`
        # (how an app reaching itself through a Service comes back in through the inbound listener)
        inbound = SidecarPod(lab, 18, work, inbound=True)
        inbound_run = inbound.run([f"{inbound.pod_ip}:8080"] * 3, collect=collect_net, uid=1337)
        same = SidecarPod(lab, 16, work)
        same_run = same.run(same.destinations(), collect=collect_net, mode="sameport")
        burst = SidecarPod(lab, 15, work)
        burst_run = burst.run([burst.destinations()[i % 2] for i in range(BURST)], collect=collect_net, mode="burst")
    return {"sidecar": side_run, "rules": rules, "plain": plain_run, "closed": closed_run,
            "linkerd": linkerd_run, "linkerd_rules": linkerd_rules, "burst": burst_run, "sameport": same_run,
            "v6": v6_run, "v6_rules": v6_rules, "inbound": inbound_run, "inbound_pod_ip": inbound.pod_ip}


@pytest.mark.parametrize("iface", IFACES)
def test_every_request_is_one_joined_connection(scenarios, iface):
    run = scenarios["sidecar"]
    assert all("reply" in r for r in run.requests), run.requests
    _, joins = analyse(run, iface)
    assert len(joins) == N
    for r in run.requests:
        mine = [c for c in joins if c.client == r["client"]]
        assert len(mine) == 1, (r, [c.text for c in joins])
        c = mine[0]
        assert (c.original_dst, c.proxy, c.redirect_port, c.state, c.mesh) == \
            (r["dst"], "127.0.0.1:15001", 15001, "established", "istio")
        assert c.text.endswith(f"{r['client']} → [istio-proxy 127.0.0.1:15001] → {r['dst']}")


@pytest.mark.parametrize("iface", IFACES)
def test_join_agrees_with_tshark(scenarios, iface):
    run = scenarios["sidecar"]
    _, joins = analyse(run, iface)
    frames = tshark_frames(run.pcaps[iface])
    for c in joins:
        syn = next(f for f in frames if f["flags"] & 0x12 == 0x02 and f["src"] == c.client)
        synack = next(f for f in frames if f["flags"] & 0x12 == 0x12 and f["dst"] == c.client)
        assert (syn["stream"], syn["dst"]) == (c.syn_stream, "127.0.0.1:15001")
        assert (synack["stream"], synack["src"]) == (c.reply_stream, c.original_dst)
        assert synack["ack"] == syn["seq"] + 1 and syn["stream"] != synack["stream"]


def test_upstream_leg_is_the_proxys_own_connection(scenarios):
    run = scenarios["sidecar"]
    _, joins = analyse(run, "any")
    frames = tshark_frames(run.pcaps["any"])
    proxy_said = {p["client"]: p for p in run.proxy_log}
    for c in joins:
        up = c.upstream
        assert up is not None, c.text
        # the proxy's own record: the kernel's SO_ORIGINAL_DST and the port it connected from
        said = proxy_said[c.nat_client or c.client]
        assert (up.client, up.server) == (said["upstream_client"], said["original_dst"])
        syn = next(f for f in frames if f["flags"] & 0x12 == 0x02 and f["src"] == up.client)
        assert (syn["stream"], syn["dst"]) == (up.stream, c.original_dst)
        assert up.delay >= 0 and up.candidates == 1
        assert "socket uid 1337 = the proxy's uid" in up.evidence
        assert up.owner.mesh == "istio"


def test_lo_capture_has_no_upstream_leg(scenarios):
    _, joins = analyse(scenarios["sidecar"], "lo")
    assert joins and all(c.upstream is None for c in joins)


def test_owners_named_from_the_socket_table(scenarios):
    _, joins = analyse(scenarios["sidecar"], "any")
    for c in joins:
        assert c.client_owner.kind == "process" and c.client_owner.name == "python3"
        assert "uid 1000" in c.client_owner.evidence
        assert (c.proxy_owner.kind, c.proxy_owner.mesh) == ("proxy", "istio")


def test_redirect_rule_named_from_the_real_ruleset(scenarios):
    _, joins = analyse(scenarios["sidecar"], "any", with_rules=scenarios["rules"])
    for c in joins:
        assert c.rule == "nat/ISTIO_REDIRECT: -A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001"


def test_rules_that_do_not_redirect_are_called_out(scenarios):
    """The Linkerd pod's rules against the Istio pod's capture: the trace ends at 4140, not 15001."""
    _, joins = analyse(scenarios["sidecar"], "lo", with_rules=scenarios["linkerd_rules"])
    assert joins and all(c.rule is None for c in joins)
    for c in joins:
        assert c.rule_note.startswith(f"the rules do not send {c.client} → {c.original_dst} to 127.0.0.1:15001")
        assert "REDIRECT 127.0.0.1:4140" in c.rule_note and "collected from this pod" in c.rule_note


def test_join_works_without_the_trace_evaluator(scenarios, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "kubectl_whose.analysis.netfilter.trace", None)  # import now fails
    _, joins = analyse(scenarios["sidecar"], "lo", with_rules=scenarios["rules"])
    assert len(joins) == N and all(c.rule is None for c in joins)
    assert {c.rule_note for c in joins} == {"rules given, but this build has no netfilter trace evaluator"}


@pytest.mark.parametrize("iface", IFACES)
def test_plain_pod_has_no_joins(scenarios, iface):
    run = scenarios["plain"]
    assert all("reply" in r for r in run.requests)
    summary, joins = analyse(run, iface)
    assert joins == []
    if iface == "any":  # the capture did hold the connections, each answered in its own stream
        frames = tshark_frames(run.pcaps[iface])
        for r in run.requests:
            syn = next(f for f in frames if f["flags"] & 0x12 == 0x02 and f["src"] == r["client"])
            synack = next(f for f in frames if f["flags"] & 0x12 == 0x12 and f["dst"] == r["client"])
            assert syn["stream"] == synack["stream"] and synack["src"] == r["dst"]


@pytest.mark.parametrize("iface", IFACES)
def test_no_listener_shows_the_reset_and_who_sent_it(scenarios, iface):
    run = scenarios["closed"]
    assert [r.get("error") for r in run.requests] == [111] * N  # ECONNREFUSED, as the app saw it
    _, joins = analyse(run, iface)
    frames = tshark_frames(run.pcaps[iface])
    assert len(joins) == N
    for r in run.requests:
        # a refused connect frees its port at once: the next request may reuse it towards another destination
        c = next(c for c in joins if c.client.endswith(f":{r['client_port']}") and c.original_dst == r["dst"])
        assert (c.state, c.original_dst, c.proxy) == ("refused", r["dst"], "127.0.0.1:15001")
        assert c.text.endswith("(refused)") and c.upstream is None
        assert "pod's own kernel" in c.reset_by and "no listener on port 15001" in c.reset_by
        # the wire claims the RST came from the original destination; its ack proves which SYN it refuses
        syn = next(f for f in frames if f["flags"] & 0x12 == 0x02 and f["stream"] == c.syn_stream)
        rst = next(f for f in frames if f["flags"] & 0x04 and f["stream"] == c.reply_stream)
        assert rst["dst"] == c.client
        assert (rst["src"], rst["stream"], rst["ack"]) == (r["dst"], c.reply_stream, syn["seq"] + 1)


@pytest.mark.parametrize("iface", IFACES)
def test_ipv6_sidecar(scenarios, iface):
    """ip6tables REDIRECT sends the app's SYN to [::1]:15001; the answer shows the original [fd00:..]:port."""
    run = scenarios["v6"]
    assert all("reply" in r for r in run.requests), run.requests
    _, joins = analyse(run, iface, with_rules=scenarios["v6_rules"])
    frames = tshark_frames(run.pcaps[iface])
    proxy_said = {p["client"]: p for p in run.proxy_log}
    assert sorted(c.client for c in joins) == sorted(r["client"] for r in run.requests)
    for c in joins:
        assert c.client.startswith("[fd00:77:") and (c.proxy, c.mesh) == ("[::1]:15001", "istio")
        assert c.original_dst == proxy_said[c.nat_client or c.client]["original_dst"]  # the kernel's IP6T_SO_ORIGINAL_DST
        syn = next(f for f in frames if f["flags"] & 0x12 == 0x02 and f["stream"] == c.syn_stream)
        synack = next(f for f in frames if f["flags"] & 0x12 == 0x12 and f["stream"] == c.reply_stream)
        assert (syn["src"], syn["dst"]) == (c.client, "[::1]:15001")
        assert (synack["src"], synack["dst"], synack["ack"]) == (c.original_dst, c.client, syn["seq"] + 1)
        assert c.rule == "nat/ISTIO_REDIRECT: -A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001"
        assert (c.client_owner.name, c.proxy_owner.mesh) == ("python3", "istio")
        if iface == "any":
            assert c.upstream.client == proxy_said[c.nat_client or c.client]["upstream_client"]
        else:
            assert c.upstream is None


@pytest.mark.parametrize("iface", IFACES)
def test_inbound_redirect_hairpin(scenarios, iface):
    """The proxy's own call to the pod's address is redirected to the inbound listener 127.0.0.1:15006, which
    relays from 127.0.0.6 (exempt from the rules) to the app server: all three legs on lo."""
    run, pod_ip = scenarios["inbound"], scenarios["inbound_pod_ip"]
    assert all("reply" in r for r in run.requests), run.requests
    _, joins = analyse(run, iface, with_rules=scenarios["rules"])
    proxy_said = {p["client"]: p for p in run.proxy_log}
    assert sorted(c.client for c in joins) == sorted(r["client"] for r in run.requests)
    for c in joins:
        assert (c.proxy, c.proxy_role, c.original_dst) == ("127.0.0.1:15006", "inbound", f"{pod_ip}:8080")
        assert c.rule == "nat/ISTIO_IN_REDIRECT: -A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006"
        up = c.upstream
        assert up.client.startswith("127.0.0.6:") and up.client == proxy_said[c.nat_client or c.client]["upstream_client"]
        assert up.server == f"{pod_ip}:8080" and "socket uid 1337 = the proxy's uid" in up.evidence


def test_linkerd_sidecar(scenarios):
    """Linkerd's proxy-init rules (REDIRECT to 4140 except uid 2102): same proof, other mesh."""
    run = scenarios["linkerd"]
    assert all("reply" in r for r in run.requests), run.requests
    _, joins = analyse(run, "any", with_rules=scenarios["linkerd_rules"])
    proxy_said = {p["client"]: p for p in run.proxy_log}
    assert sorted(c.client for c in joins) == sorted(r["client"] for r in run.requests)
    for c in joins:
        assert (c.proxy, c.redirect_port, c.mesh, c.proxy_role) == ("127.0.0.1:4140", 4140, "linkerd", "outbound")
        assert c.original_dst == proxy_said[c.nat_client or c.client]["original_dst"]
        assert (c.proxy_owner.name, c.proxy_owner.mesh) == ("linkerd-proxy", "linkerd")
        assert c.upstream.client == proxy_said[c.nat_client or c.client]["upstream_client"]
        assert "socket uid 2102 = the proxy's uid" in c.upstream.evidence
        assert c.rule.startswith("nat/PROXY_INIT_OUTPUT: -A PROXY_INIT_OUTPUT -p tcp") and \
            c.rule.endswith("-j REDIRECT --to-ports 4140")


def test_burst_joins_exact_and_links_honest(scenarios):
    """The app opens every connection before using any, so the proxy's upstream SYNs interleave with the
    app's. Joins stay exact (sequence numbers); a link that says "the only candidate" must be right.
    The proxy logs its peer as accept() saw it: the SYN's source, which conntrack may have moved
    (`nat_client`), so its log is looked up by that endpoint and not by the app's own."""
    run = scenarios["burst"]
    assert len(run.requests) == BURST and all("reply" in r for r in run.requests)
    _, joins = analyse(run, "any")
    proxy_said = {p["client"]: p for p in run.proxy_log}
    assert sorted(c.client for c in joins) == sorted(r["client"] for r in run.requests)
    for c in joins:
        assert c.original_dst == proxy_said[c.nat_client or c.client]["original_dst"]
        assert c.upstream is not None
        if c.upstream.candidates == 1:
            assert c.upstream.client == proxy_said[c.nat_client or c.client]["upstream_client"], c.upstream.evidence
        else:
            assert c.upstream.evidence[-1].endswith("(time order decides)")


@pytest.mark.parametrize("iface", IFACES)
def test_nat_moved_source_port_still_joined(scenarios, iface):
    """One app port towards three destinations: all three redirects want the reply tuple
    127.0.0.1:15001 -> pod:40404, so conntrack moves the source port of the later ones (seen at
    scale: 153 of 2000 sequential requests). The SYN shows the new port, the answer the app's own."""
    run = scenarios["sameport"]
    assert [r["client"].rsplit(":", 1)[1] for r in run.requests] == ["40404"] * 3, run.requests
    _, joins = analyse(run, iface)
    frames = tshark_frames(run.pcaps[iface])
    assert sorted(c.original_dst for c in joins) == sorted(r["dst"] for r in run.requests)
    moved = 0
    for c in joins:
        assert c.client.endswith(":40404")
        syn = next(f for f in frames if f["flags"] & 0x12 == 0x02 and f["stream"] == c.syn_stream)
        synack = next(f for f in frames if f["flags"] & 0x12 == 0x12 and f["stream"] == c.reply_stream)
        assert (synack["src"], synack["dst"], synack["ack"]) == (c.original_dst, c.client, syn["seq"] + 1)
        if syn["src"] != c.client:
            moved += 1
            assert c.nat_client == syn["src"] and "the NAT also moved the app's source port" in c.proof
        else:
            assert c.nat_client is None
        if iface == "any":
            assert c.upstream is not None and c.upstream.server == c.original_dst
            assert c.client_owner.name == "python3"  # found by the app's real port, not the moved one
    assert moved == 2  # the first redirect keeps its port, the next two clash


def test_no_proof_no_join(scenarios):
    """Take the real sidecar summary and break only the proof: the rows must stay apart."""
    run = scenarios["sidecar"]
    summary, joins = analyse(run, "lo", with_net=False)
    assert len(joins) == N
    off_by_one = copy.deepcopy(summary)
    for s in off_by_one["streams"]:
        if s["client_isn"] is None and s["synack_ack"] is not None:
            s["synack_ack"] = (s["synack_ack"] + 1) % (1 << 32)
    assert join_connections(off_by_one) == []
    ambiguous = copy.deepcopy(summary)
    twins = [dict(s, index=1000 + s["index"]) for s in ambiguous["streams"] if s["client_isn"] is None]
    ambiguous["streams"] += twins
    assert join_connections(ambiguous) == []
    twin_syns = copy.deepcopy(summary)  # a second SYN stream with the same ISN from the same client
    twin_syns["streams"] += [dict(s, index=2000 + s["index"], server="127.0.0.1:15002")
                             for s in twin_syns["streams"] if s["client_isn"] is not None]
    assert join_connections(twin_syns) == []
    other_client = copy.deepcopy(summary)  # the answer goes to another host: not this SYN's, whatever the ack
    for s in other_client["streams"]:
        if s["client_isn"] is None:
            port = s["server"].rsplit(":", 1)[1]
            s["server"] = f"10.1.2.3:{port}"
    assert join_connections(other_client) == []


def test_tshark_streams_give_the_same_joins(scenarios):
    """Feed the join with stream rows built from tshark alone: same connections, same legs."""
    run = scenarios["sidecar"]
    summary, ours = analyse(run, "any", with_net=False)
    rows: Dict[int, Dict] = {}
    for f in tshark_frames(run.pcaps["any"]):
        row = rows.setdefault(f["stream"], {"proto": "tcp", "index": f["stream"], "client": f["src"],
                                            "server": f["dst"], "client_isn": None, "synack_ack": None,
                                            "first_abs_ts": f["t"], "last": f["t"], "flags": {"RST": 0}})
        row["last"] = f["t"]
        if f["flags"] & 0x12 == 0x02 and row["client_isn"] is None:
            row["client_isn"], row["client"], row["server"] = f["seq"], f["src"], f["dst"]
        if f["flags"] & 0x12 == 0x12 and row["synack_ack"] is None:
            row["synack_ack"] = f["ack"]
    for row in rows.values():
        row["duration"] = row.pop("last") - row["first_abs_ts"]
    theirs = join_connections({"streams": list(rows.values())})

    def key(c):
        return c.syn_stream, c.reply_stream, c.original_dst, c.upstream.stream if c.upstream else None

    assert sorted(map(key, theirs)) == sorted(map(key, ours)) and len(ours) == N


def test_connections_json_is_the_join_in_one_call(scenarios):
    from kubectl_whose.analysis.pod.connections import connections_json

    run = scenarios["closed"]
    summary, joins = analyse(run, "lo")
    listed = connections_json(summary, netinfo=build_netinfo(run.collected))
    assert listed == [c.to_dict() for c in joins] and len(listed) == N
    # the RSTs' acks travel in the stream rows (`rst_ack`): even a live capture with no saved file
    # and no sockets proves the same joins, only the owners are unknown
    bare = connections_json(summary)
    assert [(c["streams"], c["original_dst"]) for c in bare] == [(c["streams"], c["original_dst"]) for c in listed]
    assert all(c["client_owner"] is None for c in bare)


def test_rendered_rows(scenarios):
    from kubectl_whose.render.connections_view import connection_rows, render_connections

    _, joins = analyse(scenarios["sidecar"], "any", with_rules=scenarios["rules"])
    buf = io.StringIO()
    render_connections(joins, wide=True, out=buf)
    text = buf.getvalue()
    for c, row in zip(joins, connection_rows(joins, wide=True)):
        assert row["streams"] == f"{c.syn_stream} + {c.reply_stream}"
        assert row["upstream"].startswith(f"stream {c.upstream.stream} from {c.upstream.client}")
        assert c.text in text and f"proof: {c.proof}" in text
    assert text.count("redirected by nat/ISTIO_REDIRECT") == len(joins)  # wide: per connection
    buf = io.StringIO()
    render_connections(joins, wide=False, out=buf)
    narrow = buf.getvalue()
    assert narrow.count("redirected by") == 1 and "all redirected by nat/ISTIO_REDIRECT: -A ISTIO_REDIRECT" in narrow
    assert all(c.text in narrow.replace("\n", "") or c.client in narrow for c in joins)
    assert "proof:" not in narrow
    _, refused = analyse(scenarios["closed"], "lo")
    buf = io.StringIO()
    render_connections(refused, wide=False, out=buf)
    assert buf.getvalue().count("reset by the pod's own kernel") == N
