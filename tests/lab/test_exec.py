"""The exec WebSocket at the protocol level, with an independent client (websocket-client), against the spec:
subprotocol negotiation, the empty first frame, channel framing, ≤ 32 KiB messages, one channel-3 status, the
close frame, and the closing semantics of a real cluster (the remote process outlives the connection)."""
import base64
import json
import time
import urllib.parse

import pytest
import websocket

V5, V4, V4B64 = "v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io"


def connect(lab, pod, argv, container, protocols, namespace="default", stdin=False):
    q = [("command", a) for a in argv] + [("container", container), ("stdout", "true"), ("stderr", "true")]
    if stdin:
        q.append(("stdin", "true"))
    url = lab.server.replace("https://", "wss://") + f"/api/v1/namespaces/{namespace}/pods/{pod}/exec?" + \
        urllib.parse.urlencode(q)
    ws = websocket.WebSocket(sslopt={"ca_certs": lab.process.state["ca"]})
    ws.connect(url, header=[f"Authorization: Bearer {lab.token_for('admin')}"], subprotocols=protocols)
    return ws


def drain(ws):
    """All messages until the server's close: [(opcode, payload)]."""
    frames = []
    while True:
        op, data = ws.recv_data(control_frame=True)
        if op == websocket.ABNF.OPCODE_CLOSE:
            return frames, data
        frames.append((op, data))


# From 1.30 an offer with v5 in it is the stream translator's, which speaks v5 whatever the order; without v5 the
# kubelet's wsstream takes the client's first that it knows.
@pytest.mark.parametrize("offer, chosen", [([V5, V4], V5), ([V4, V5], V5), ([V4B64], V4B64), ([V4B64, V4], V4B64)])
def test_negotiation_framing_and_status(lab, offer, chosen):
    ws = connect(lab, "client", ["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' 'a'; echo oops >&2; exit 4"],
                 "client", offer)
    assert ws.getsubprotocol() == chosen
    frames, close = drain(ws)
    assert close[:2] == (1000).to_bytes(2, "big")
    if chosen == V4B64:
        assert all(op == websocket.ABNF.OPCODE_TEXT for op, _ in frames)
        frames = [(op, bytes([d[0] - 48]) + base64.b64decode(d[1:])) for op, d in frames]
    assert frames[0][1] == b"\x01"  # the empty message on the lowest writable channel comes first
    stdout = b"".join(d[1:] for _, d in frames if d[0] == 1)
    stderr = b"".join(d[1:] for _, d in frames if d[0] == 2)
    status = [json.loads(d[1:]) for _, d in frames if d[0] == 3]
    assert stdout == b"a" * 100000 and stderr == b"oops\n"
    assert max(len(d) for _, d in frames) <= 32 * 1024 + 1
    assert status == [{"metadata": {}, "status": "Failure", "message": "command terminated with non-zero exit code: "
                       "command terminated with exit code 4", "reason": "NonZeroExitCode",
                       "details": {"causes": [{"reason": "ExitCode", "message": "4"}]}}]
    assert frames[-1][1][0] == 3  # the status is the last message


@pytest.mark.parametrize("offer", [["channel.k8s.io"], []], ids=["channel.k8s.io", "no-subprotocol"])
def test_the_first_channel_protocol_and_no_subprotocol_are_served(lab, offer):
    """channel.k8s.io (also what a client that names no subprotocol gets): the same channels, and an error channel
    that carries a failure's text instead of a Status."""
    ws = connect(lab, "client", ["sh", "-c", "echo hi; echo oops >&2; exit 4"], "client", offer)
    assert (ws.getsubprotocol() or "") == (offer[0] if offer else "")
    frames, close = drain(ws)
    assert close[:2] == (1000).to_bytes(2, "big")
    assert b"".join(d[1:] for _, d in frames if d[0] == 1) == b"hi\n"
    assert b"".join(d[1:] for _, d in frames if d[0] == 2) == b"oops\n"
    assert [d[1:] for _, d in frames if d[0] == 3] == [b"command terminated with non-zero exit code: command "
                                                       b"terminated with exit code 4"]
    ws = connect(lab, "client", ["true"], "client", offer)
    frames, _ = drain(ws)
    assert [d for _, d in frames if d[0] == 3] == []  # success: nothing on the error channel


def test_v5_stdin_half_close(lab):
    ws = connect(lab, "client", ["wc", "-c"], "client", [V5], stdin=True)
    ws.send_binary(b"\x00" + b"\xff" * 1000)
    ws.send_binary(b"\xff\x00")  # CLOSE channel 0: EOF on stdin
    frames, _ = drain(ws)
    assert b"".join(d[1:] for _, d in frames if d[0] == 1).strip() == b"1000"
    assert json.loads(frames[-1][1][1:]) == {"metadata": {}, "status": "Success"}


def test_old_server_offers_no_v5(lab):
    with lab.old_server():
        with pytest.raises(websocket.WebSocketBadStatusException) as e:
            connect(lab, "client", ["true"], "client", [V5])
        assert e.value.status_code == 403
        ws = connect(lab, "client", ["true"], "client", [V5, V4])
        assert ws.getsubprotocol() == V4
        ws.close()


def _pids(lab, pod, pattern):
    out = lab.pod_run(pod, ["ps", "-eo", "pid,args"]).stdout
    return [int(ln.split()[0]) for ln in out.splitlines()[1:] if pattern in ln]


def test_closing_the_websocket_does_not_kill_a_quiet_process(lab):
    ws = connect(lab, "echo-0", ["sleep", "7.25"], "echo", [V5])
    ws.recv_data()  # the empty first frame: the process has started
    ws.close()
    time.sleep(0.3)
    assert len(_pids(lab, "echo-0", "sleep 7.25")) == 1  # still running after the client left


def test_closing_the_websocket_lets_a_writer_die_of_sigpipe(lab):
    ws = connect(lab, "echo-1", ["sh", "-c", "while :; do echo tick; sleep 0.05; done # sigpipe-probe"], "echo", [V5])
    ws.recv_data()
    ws.recv_data()
    ws.close()
    deadline = time.monotonic() + 5
    while _pids(lab, "echo-1", "sigpipe-probe") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _pids(lab, "echo-1", "sigpipe-probe") == []


def test_exec_into_a_terminated_ephemeral_container(lab):
    body = {"spec": {"ephemeralContainers": [{"name": "short", "image": "busybox:1.36", "command": ["true"]}]}}
    code, _, _ = lab.request("PATCH", "/api/v1/namespaces/default/pods/echo-2/ephemeralcontainers", body,
                             "application/strategic-merge-patch+json")
    assert code == 200
    status = lab.wait_pod("default", "echo-2", lambda p: any(
        s["name"] == "short" and "terminated" in s["state"]
        for s in p["status"].get("ephemeralContainerStatuses") or []))
    term = next(s for s in status["status"]["ephemeralContainerStatuses"] if s["name"] == "short")
    assert (term["state"]["terminated"]["exitCode"], term["state"]["terminated"]["reason"]) == (0, "Completed")
    ws = connect(lab, "echo-2", ["true"], "short", [V5])
    frames, _ = drain(ws)
    assert json.loads(frames[-1][1][1:]) == {
        "metadata": {}, "status": "Failure", "code": 500, "reason": "InternalError",
        "message": 'Internal error occurred: unable to upgrade connection: container not found ("short")',
        "details": {"causes": [{"message": 'unable to upgrade connection: container not found ("short")'}]}}
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        connect(lab, "echo-2", ["true"], "short", [V4])
    assert e.value.status_code == 500 and e.value.resp_body == b'container not found ("short")'


def test_dropped_connection_mode_cuts_the_stream_without_a_status(lab):
    with lab.exec_drop_after(50000):
        ws = connect(lab, "client", ["sh", "-c", "head -c 200000 /dev/zero"], "client", [V5])
        got = b""
        with pytest.raises((websocket.WebSocketConnectionClosedException, ConnectionError, OSError)):
            while True:
                op, data = ws.recv_data(control_frame=True)
                assert op != websocket.ABNF.OPCODE_CLOSE and data[:1] != b"\x03", "no close frame, no status"
                got += data[1:]
    assert len(got) == 50000
