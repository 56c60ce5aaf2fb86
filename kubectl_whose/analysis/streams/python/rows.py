"""One stream of the summary as a row: the contract's dict, and the same row as one JSON line.

`stream_row` is what `CaptureSummary.streams` holds. `stream_json` writes the identical object
straight to text (100 000 streams: ~0.1 s instead of ~1.5 s through dicts and the json module);
both are built from `row_values`, and tests/analysis/streams/test_table.py checks json.loads(line) == row
for every stream of every test capture.
"""
from __future__ import annotations

import json
from typing import Optional

from kubectl_whose.analysis.pcap.decode import format_endpoint
from kubectl_whose.analysis.streams.rows import row_dict

_NO_FLAGS = (0, 0, 0)


def client_dir(s) -> int:
    """Client = sender of the first pure SYN, else the first sender (0/1 = flow direction)."""
    syn_dir = getattr(s, "syn_dir", -1)
    return syn_dir if syn_dir >= 0 else s.first_dir


def row_values(s, file_first: Optional[int]) -> tuple:
    """The row in ROW_KEYS order; `flags` as a (SYN, FIN, RST) tuple."""
    a, b, pa, pb = s.key
    client = client_dir(s)
    ends = (format_endpoint(a, pa), format_endpoint(b, pb))
    if client == 0:
        cp, cb, cy, sp, sb, sy = s.pkts0, s.bytes0, s.pay0, s.pkts1, s.bytes1, s.pay1
    else:
        cp, cb, cy, sp, sb, sy = s.pkts1, s.bytes1, s.pay1, s.pkts0, s.bytes0, s.pay0
    common = (s.index, ends[client], ends[1 - client], cp + sp, cb + sb, cy + sy, cp, sp, cb, sb, cy, sy,
              s.first_frame, round((s.first_ts - (file_first or 0)) / 1e9, 9),
              round((s.last_ts - s.first_ts) / 1e9, 9))
    z = s.zeek
    if hasattr(s, "flows"):
        rtt = s.first_rtt / 1e9 if s.first_rtt and s.rtt_shown else None
        return ("tcp",) + common + ((s.syn, s.fin, s.rst), s.retrans, s.zero_window, s.dup_acks, s.ooo, s.lost,
                                    rtt, z.conn_state(), z.history(), s.encap, s.client_isn, s.server_isn,
                                    s.synack_ack, s.rst_ack, s.first_ts / 1e9)
    return ("udp",) + common + (_NO_FLAGS, 0, 0, 0, 0, 0, None, z.conn_state(), z.history(), s.encap, None, None,
                                None, None, s.first_ts / 1e9)


def stream_row(s, file_first: Optional[int]) -> dict:
    return row_dict(row_values(s, file_first))


def _num(v) -> str:
    return "null" if v is None else repr(v)  # json writes floats with repr() too


def stream_json(s, file_first: Optional[int]) -> str:
    """The same object as `stream_row`, as compact JSON text (keys in the same order)."""
    (proto, index, client, server, packets, nbytes, payload, cp, sp, cb, sb, cy, sy, first_frame, start,
     duration, (syn, fin, rst), retrans, zw, dup, ooo, lost, rtt, state, history, encap, cisn, sisn, synack,
     rst_ack, first_abs) = row_values(s, file_first)
    # endpoints, state and history are made of [0-9a-fA-F.:\[\]^A-Za-z] only: no escaping needed
    return (f'{{"proto": "{proto}", "index": {index}, "client": "{client}", "server": "{server}", '
            f'"packets": {packets}, "bytes": {nbytes}, "payload_bytes": {payload}, "client_packets": {cp}, '
            f'"server_packets": {sp}, "client_bytes": {cb}, "server_bytes": {sb}, "client_payload_bytes": {cy}, '
            f'"server_payload_bytes": {sy}, "first_frame": {first_frame}, "start": {start!r}, '
            f'"duration": {duration!r}, "flags": {{"SYN": {syn}, "FIN": {fin}, "RST": {rst}}}, '
            f'"retransmissions": {retrans}, "zero_window": {zw}, "dup_acks": {dup}, "out_of_order": {ooo}, '
            f'"lost_segments": {lost}, "handshake_rtt": {_num(rtt)}, "state": "{state}", '
            f'"history": "{history}", "encapsulation": '
            f'{"null" if encap is None else json.dumps(encap, ensure_ascii=False)}, '
            f'"client_isn": {_num(cisn)}, "server_isn": {_num(sisn)}, "synack_ack": {_num(synack)}, '
            f'"rst_ack": {_num(rst_ack)}, "first_abs_ts": {first_abs!r}}}')
