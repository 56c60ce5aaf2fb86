"""Zeek `conn_state` and `history` on the real captures, expected values written down from Zeek's rules.

Rules used (quoted in shared/research/anchors-stream-analysis.md §3, from zeek/zeek main.zeek,
TCPSessionAdapter.cc, TCP_Endpoint.cc, Session.cc):
* history letters: S = SYN w/o ACK, H = SYN+ACK, A = pure ACK, D = payload, F = FIN, R = RST; upper
  case from the originator, lower case from the responder. A and D are recorded once per direction;
  S/H/F/R again only when the sequence number differs from the last one of that kind (so a
  retransmitted SYN with the same seq adds no second S). T (payload not beyond the highest seq seen
  in that direction) and W (zero window) are logarithmic: written at the 1st, 10th, 100th event.
* conn_state (function `conn_state`): responder RESET while the originator is SYN_SENT → REJ;
  responder RESET otherwise → RSTR; originator RESET with an established responder → RSTO; both
  CLOSED → SF; originator SYN_SENT and responder INACTIVE → S0. UDP: both sides sent → SF, only the
  originator → S0.

Checksums are ignored, as with `zeek -C`: packets captured on the sending host carry offloaded
(invalid) TCP checksums, which plain Zeek would drop and log as `C`.

Where the capture itself decides between two legal orders (which side's FIN came first races
between curl and http.server), the alternative is picked from the order of the FIN frames in
tshark's reading of the same file; the letters themselves are fixed by the rules above.
"""
from __future__ import annotations

import pytest

from kubectl_whose.analysis.streams import analyze_file
from tests.helpers.captures import SCENARIOS

pytestmark = [pytest.mark.root, pytest.mark.slow]


def flow_text(truth, index: int, limit: int = 60) -> str:
    """The stream as tshark read it, compactly (C = client, s = server), for failure messages."""
    from tests.helpers.tshark_oracle import flag_names

    client = truth.streams[("tcp", index)]["client"]
    parts = [f"{'C' if f.src == client else 's'}#{f.number}:{flag_names(f.flags)}"
             f"{'/' + str(f.payload) if f.payload else ''}{'/w0' if f.window == 0 else ''}"
             for f in truth.frames[("tcp", index)]]
    return " ".join(parts[:limit]) + (" ..." if len(parts) > limit else "")


def fin_order(truth, index: int) -> str:
    """'Ff' if the originator (client) sent its FIN first in the capture, else 'fF' (from tshark)."""
    stream = truth.streams[("tcp", index)]
    first_fin = next(f for f in truth.frames[("tcp", index)] if f.flags & 0x001)
    return "Ff" if first_fin.src == stream["client"] else "fF"


def http_close(truth, index: int):
    """A request/response connection closed with FINs, no loss:
    S (client SYN) h (server SYN-ACK) A (client ACK) D (request) a (server's pure ACK of the request,
    sent at once: Linux quick-ACKs at connection start) d (response); further pure ACKs and data
    add nothing (A/D/a/d once per direction); then both FINs in capture order. Both sides CLOSED → SF."""
    return "SF", "ShADad" + fin_order(truth, index)


# request/response connections closed with FINs and nothing else happening (see http_close)
HTTP_CLOSE_SCENARIOS = ("http_short", "keepalive", "ipv6", "nano", "pcapng", "any_sll", "any_sll2", "pcapng_multi",
                        "truncated", "vxlan_4789", "vxlan_8472", "tun_raw", "icmp_quote", "pipe", "pcapng_nano",
                        "replay_vlan", "replay_qinq", "replay_ipip", "replay_gre", "replay_geneve", "nflog",
                        "replay_mpls_vlan", "replay_pppoe_qinq", "replay_pbb", "replay_vntag")


def scenario_expectations(name: str, truth) -> dict:
    # a stream of nothing but headers quoted in ICMP errors (icmp_quote: the capture filter hid the
    # SYN and the datagram themselves): Zeek files those under ICMP connections, this one has no state
    exp = {k: ("OTH", "") for k, frames in truth.frames.items() if all(f.quoted for f in frames)}
    tcp = sorted(i for p, i in truth.streams if p == "tcp" and ("tcp", i) not in exp)
    udp = sorted(i for p, i in truth.streams if p == "udp" and ("udp", i) not in exp)
    if name in HTTP_CLOSE_SCENARIOS:
        exp.update({("tcp", i): http_close(truth, i) for i in tcp})
    elif name == "refused":
        # SYN (S), answered by RST,ACK from the responder (r) while the originator is SYN_SENT → REJ
        exp.update({("tcp", i): ("REJ", "Sr") for i in tcp})
    elif name == "dropped_syn":
        # two SYNs with the same seq: S once; no answer: originator SYN_SENT, responder INACTIVE → S0
        exp[("tcp", 0)] = ("S0", "S")
    elif name == "abort":
        # handshake, request (D), the server's pure ACK (a; it waits 100 ms before aborting), then the
        # server's SO_LINGER-0 close: RST,ACK (r). Responder RESET, originator ESTABLISHED → RSTR
        exp[("tcp", 0)] = ("RSTR", "ShADar")
    elif name == "reuse":
        # streams 0, 1, 3: scripted server replies and closes first (f before F) → SF "ShADadfF"
        # stream 2: the client aborts after the server's ACK: RST,ACK from the originator (R),
        # responder ESTABLISHED → RSTO "ShADaR"
        exp[("tcp", 0)] = exp[("tcp", 1)] = exp[("tcp", 3)] = ("SF", "ShADadfF")
        exp[("tcp", 2)] = ("RSTO", "ShADaR")
    elif name == "zero_window":
        # handshake, data (D), the server's first pure ACK (a), then the server's window closes
        # (w: first zero-window advertisement; tshark sees fewer than 10, so w is written once), the
        # client half-closes after sendall (F) and the server closes once drained (f) → SF
        server = truth.streams[("tcp", 0)]["server"]
        zero = sum(1 for f in truth.frames[("tcp", 0)] if f.src == server and f.window == 0)
        assert 1 <= zero < 10, f"expected a few zero windows, tshark saw {zero}"
        exp[("tcp", 0)] = ("SF", "ShADawFf")
        if truth.streams[("tcp", 0)]["retransmissions"]:  # the kernel resent a segment this time: T/t too
            exp[("tcp", 0)] = ("SF", zeek_history(truth.frames[("tcp", 0)], truth.streams[("tcp", 0)]["client"]))
    elif name == "loss":
        exp[("tcp", 0)] = ("SF", None)  # history checked letter by letter in test_loss_history_*
    elif name == "any_router":
        # every packet twice (router's eth0 in, eth1 out): a copy of a SYN/SYN-ACK/FIN repeats the
        # same seq (no second S/h/F/f), a copy of a data packet ends at or below the highest seq
        # already seen in its direction (T/t: 1st, 10th ... copy). Which FIN is first is a race,
        # so the letters come from the rules applied to tshark's frame list; both FINs → SF
        for i in tcp:
            exp[("tcp", i)] = ("SF", zeek_history(truth.frames[("tcp", i)], truth.streams[("tcp", i)]["client"]))
    elif name == "midstream":
        # tcpdump started after the handshake: no S/h. Request (D), the server's ACK (a), its reply
        # 100 ms later (d), our ACK of it (A; the client waits 50 ms, past any delayed ACK), our FIN
        # (F), the server's FIN once it read EOF (f). Both endpoints went INACTIVE -> PARTIAL on
        # their first packet (no SYN seen), then CLOSED on FIN: both CLOSED -> SF
        exp[("tcp", 0)] = ("SF", "DadAFf")
    elif name == "no_syn":
        # first packet: the server's SYN-ACK. Port 47000 is no likely server port, so Zeek does not
        # flip at creation (TCPAnalyzer::WantConnection): the SYN-ACK sender is the originator, H.
        # The client's ACK then meets history == "H": TCP_Endpoint::CheckHistory flips the roles
        # and replaces the history with "^h" (zeek/zeek src/analyzer/protocol/tcp/TCP_Endpoint.cc),
        # so the client is the originator again: A (its ACK), D, a, d, then the FINs in capture order
        # relative to the client, i.e. the SYN-ACK's receiver (not the contract's `client`, which
        # for a stream without a SYN is the first sender). Server SYN_ACK_SENT, client PARTIAL;
        # FIN takes both to CLOSED -> SF
        for i in tcp:
            frames = truth.frames[("tcp", i)]
            assert frames[0].flags & 0x012 == 0x012, "the scenario's streams start with the SYN-ACK"
            first_fin = next(f for f in frames if f.flags & 0x001)
            exp[("tcp", i)] = ("SF", "^hADad" + ("Ff" if first_fin.src == frames[0].dst else "fF"))
    elif name == "tcp_keepalive":
        # handshake (S h A), idle: keep-alive probes are pure ACKs with seq = snd_nxt - 1 and no
        # payload (A again: nothing new, and not T, which needs payload), the server's ACKs (a),
        # then the client closes first (F) and the server follows (f) -> SF
        exp[("tcp", 0)] = ("SF", "ShAaFf")
    # UDP: both sides sent payload → SF "Dd"; the datagram to a closed port (only an ICMP error back)
    # → S0 "D". On the VXLAN underlay every carrier flow is one-way (each end picks its own source
    # port), so those are S0 "D" too.
    for i in udp:
        senders = {f.src for f in truth.frames[("udp", i)] if not f.quoted}
        exp[("udp", i)] = ("SF", "Dd") if len(senders) == 2 else ("S0", "D")
    return exp


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_conn_state_and_history_follow_zeek(scenario, captures, oracle):
    truth = oracle(scenario)
    ours = {(s["proto"], s["index"]): s for s in analyze_file(str(captures.get(scenario).path)).to_dict()["streams"]}
    expected = scenario_expectations(scenario, truth)
    assert sorted(expected) == sorted(truth.streams), "every stream of every scenario has a written expectation"
    wrong = []
    for key, (state, history) in sorted(expected.items()):
        got = ours.get(key)
        if got is None:
            wrong.append(f"{key}: missing")
            continue
        if got["state"] != state or (history is not None and got["history"] != history):
            wrong.append(f"{key}: ours {got['state']} {got['history']!r}, Zeek rules give {state} {history!r}"
                         + (f"\n  tshark: {flow_text(truth, key[1])}" if key[0] == "tcp" else ""))
    assert not wrong, f"{scenario}:\n" + "\n".join(wrong)


def zeek_history(frames, client: str) -> str:
    """Zeek's history letters applied mechanically to tshark's frame list (flags, relative seq, len,
    window) for the loss scenario, where random drops before the capture point decide which
    packets exist (e.g. whether the server's pure ACK of the request survived). Rules as quoted in
    the module docstring: A/D once per direction; S/H/F/R again only for a new sequence number
    (F compares seq+len); T = payload whose end is not beyond the highest end seen in that
    direction, W = zero window, both written at the 1st, 10th, 100th ... event."""
    out, once, last, top, counts, closed, reset = [], set(), {}, {}, {}, set(), set()

    def add(letter, orig):
        out.append(letter.upper() if orig else letter.lower())

    def scaled(letter, orig):
        key = (letter, orig)
        counts[key] = counts.get(key, 0) + 1
        if counts[key] in (1, 10, 100, 1000, 10000):
            add(letter, orig)

    for f in frames:
        if f.quoted:
            continue  # an ICMP error's quote: no packet of this connection for Zeek
        orig = f.src == client
        syn, fin, rst, ack = f.flags & 2, f.flags & 1, f.flags & 4, f.flags & 0x10
        if (1 if syn else 0) + (1 if fin else 0) + (1 if rst else 0) > 1:
            letter, value = ("i" if fin and rst else "q"), None
        elif syn:
            letter, value = ("h" if ack else "s"), f.seq
        elif fin:
            letter, value = "f", f.seq + f.payload
        elif rst:
            letter, value = "r", f.seq
        else:
            letter, value = ("d" if f.payload else "a" if ack else None), None
        if letter in ("s", "h", "f", "r"):
            if last.get((letter, orig), -1) != value:
                last[(letter, orig)] = value
                add(letter, orig)
        elif letter is not None and (letter, orig) not in once:
            once.add((letter, orig))
            add(letter, orig)
        if f.payload:
            end = f.seq + f.payload
            if (orig in top) and end <= top[orig]:
                scaled("t", orig)
            top[orig] = max(top.get(orig, end), end)
        if f.window == 0 and not rst and (not orig) not in closed and orig not in reset:
            scaled("w", orig)  # update_window(): not with RST, not after the peer's FIN or our RST
        if fin:
            closed.add(orig)
        if rst:
            reset.add(orig)
    return "".join(out)


def test_loss_history_follows_zeek_letter_rules(captures, oracle):
    """The loss scenario: history equals Zeek's letter rules applied to tshark's reading of the file,
    and the scenario really produced retransmitted payload (t) for the rules to count."""
    truth = oracle("loss")
    frames, client = truth.frames[("tcp", 0)], truth.streams[("tcp", 0)]["client"]
    expected = zeek_history(frames, client)
    assert "t" in expected, "the loss scenario produced no retransmitted payload"
    ours = analyze_file(str(captures.get("loss").path)).to_dict()["streams"]
    got = next(s for s in ours if s["proto"] == "tcp" and s["index"] == 0)
    assert (got["state"], got["history"]) == ("SF", expected)


def test_history_rules_reproduce_the_hand_written_expectations(oracle):
    """The mechanical rules above agree with the hand-written histories of the deterministic scenarios
    (so the loss test's expectation rests on the same reading of Zeek as the rest)."""
    for scenario, index, history in (("abort", 0, "ShADar"), ("refused", 0, "Sr"), ("dropped_syn", 0, "S"),
                                     ("keepalive", 0, "ShADadFf"),
                                     ("reuse", 2, "ShADaR"), ("midstream", 0, "DadAFf"),
                                     ("tcp_keepalive", 0, "ShAaFf"), ("zero_window", 0, "ShADawFf")):
        truth = oracle(scenario)
        got = zeek_history(truth.frames[("tcp", index)], truth.streams[("tcp", index)]["client"])
        assert got == history, f"{scenario}: {got!r}\n  tshark: {flow_text(truth, index)}"
