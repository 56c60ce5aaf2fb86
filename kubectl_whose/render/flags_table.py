"""The packet-by-packet flag table of one stream (`--stream N`), laid out like Wireshark's columns.

No. is the frame number in the file (so `tshark -r F -Y frame.number==N` finds it), time is seconds
since the stream's first frame (tcp.time_relative), flags by name and in Wireshark's 3-hex-digit
form, seq/ack relative, window scaled, and the tcp.analysis notes in words.
"""
from __future__ import annotations

from typing import Optional

from kubectl_whose.render.output import make_console

NOTE_WORDS = {  # short forms of Wireshark's expert messages, so the table stays narrow
    "retransmission": "retrans", "fast_retransmission": "fast retrans",
    "spurious_retransmission": "spurious retrans", "out_of_order": "out-of-order",
    "lost_segment": "prev segment lost", "ack_lost_segment": "ACKs unseen segment",
    "duplicate_ack": "dup ACK", "zero_window": "zero window", "zero_window_probe": "zero-window probe",
    "zero_window_probe_ack": "zero-window probe ACK", "keep_alive": "keep-alive",
    "keep_alive_ack": "keep-alive ACK", "window_update": "window update", "window_full": "window full",
    "reused_ports": "port reuse",
}


def notes(names: list) -> str:
    # fast/spurious already say "retransmission"; tshark lists the plain one too, the table need not
    if "fast_retransmission" in names or "spurious_retransmission" in names:
        names = [n for n in names if n != "retransmission"]
    return ", ".join(NOTE_WORDS.get(n, n.replace("_", " ")) for n in names)


# (header, right-justified, rank): a narrow terminal's table view leaves out the highest rank first; -o wide moves
# them under each row instead. NOTES is words, so it wraps; the rest are atoms.
_SPECS = [("NO.", True, 0), ("TIME", True, 2), ("SOURCE", False, 0), ("DESTINATION", False, 0), ("LEN", True, 3),
          ("SEG", True, 1)]
_TCP_SPECS = [("FLAGS", False, 0), ("SEQ", True, 0), ("ACK", True, 0), ("WIN", True, 4), ("NOTES", False, 0)]


def _specs(tcp: bool) -> list:
    return _SPECS + (_TCP_SPECS if tcp else [])


def columns(tcp: bool) -> list:
    return [(name, right) for name, right, _ in _specs(tcp)]


def grid_columns(tcp: bool) -> list:
    from kubectl_whose.render.grid import Column

    return [Column(name, right=right, drop=rank, below=rank > 0 or name == "NOTES", wrap=name == "NOTES",
                   stack=name == "DESTINATION")
            for name, right, rank in _specs(tcp)]


def cells(p: dict, tcp: bool) -> list:
    row = [str(p["frame"]), f"{p['time']:.6f}", p["src"], p["dst"], str(p["length"]), str(p["segment_length"])]
    if tcp:
        ack = "" if p["ack"] is None or "ACK" not in p["flags"].split(",") else str(p["ack"])
        row += [f"{p['flags'] or '-'} {p['flags_hex']}", str(p["seq"]), ack, str(p["window"]), notes(p["analysis"])]
    return row


def render(detail: Optional[dict], wide: bool = False, out=None) -> None:
    if not detail:
        return
    err = make_console(stderr=True)
    proto = detail.get("proto", "tcp").upper()
    err.print(f"{proto} stream {detail['index']}: {len(detail['packets'])} packets", markup=False)
    if not detail["packets"]:
        return
    from kubectl_whose.render.grid import write_table

    tcp = detail.get("proto", "tcp") == "tcp"
    write_table(grid_columns(tcp), lambda: (cells(p, tcp) for p in detail["packets"]), wide=wide, out=out,
                rule=True, gap=1)
