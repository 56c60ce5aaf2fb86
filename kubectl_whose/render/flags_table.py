"""The packet-by-packet flag table of one stream (`--stream N`), laid out like Wireshark's columns.

No. is the frame number in the file (so `tshark -r F -Y frame.number==N` finds it), time is seconds
since the stream's first frame (tcp.time_relative), flags by name and in Wireshark's 3-hex-digit
form, seq/ack relative, window scaled, and the tcp.analysis notes in words.
"""
from __future__ import annotations

from typing import Optional

from kubectl_whose.render.output import make_console
from kubectl_whose.render.plain_table import RICH_MAX_ROWS, write_plain

NOTE_WORDS = {  # short forms of Wireshark's expert messages, so the table keeps to 120 columns
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


def columns(tcp: bool) -> list:
    cols = [("NO.", True), ("TIME", True), ("SOURCE", False), ("DESTINATION", False), ("LEN", True), ("SEG", True)]
    if tcp:
        cols += [("FLAGS", False), ("SEQ", True), ("ACK", True), ("WIN", True), ("NOTES", False)]
    return cols


def cells(p: dict, tcp: bool) -> list:
    row = [str(p["frame"]), f"{p['time']:.6f}", p["src"], p["dst"], str(p["length"]), str(p["segment_length"])]
    if tcp:
        ack = "" if p["ack"] is None or "ACK" not in p["flags"].split(",") else str(p["ack"])
        row += [f"{p['flags'] or '-'} {p['flags_hex']}", str(p["seq"]), ack, str(p["window"]), notes(p["analysis"])]
    return row


def build_table(detail: dict, wide: bool = False):
    from rich import box
    from rich.table import Table
    from rich.text import Text

    tcp = detail.get("proto", "tcp") == "tcp"
    ends_fit = all(len(p["src"]) <= 22 and len(p["dst"]) <= 22 for p in detail["packets"])
    # SIMPLE_HEAD already puts one space between columns: no padding, or 13 columns overflow 120
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, padding=(0, 0))
    for name, right in columns(tcp):
        folds = name in ("SOURCE", "DESTINATION") and not ends_fit or name == "NOTES"
        table.add_column(name, justify="right" if right else "left", no_wrap=not folds, overflow="fold",
                         min_width=10 if name == "NOTES" else None)
    for p in detail["packets"]:
        table.add_row(*(Text(cell) for cell in cells(p, tcp)))
    return table


def render(detail: Optional[dict], wide: bool = False, console=None, out=None) -> None:
    if not detail:
        return
    err = make_console(stderr=True)
    proto = detail.get("proto", "tcp").upper()
    err.print(f"{proto} stream {detail['index']}: {len(detail['packets'])} packets", markup=False)
    if not detail["packets"]:
        return
    tcp = detail.get("proto", "tcp") == "tcp"
    if len(detail["packets"]) > RICH_MAX_ROWS:
        cols = columns(tcp)
        write_plain([c[0] for c in cols], [c[1] for c in cols], lambda: (cells(p, tcp) for p in detail["packets"]),
                    out)
        return
    (console or make_console(file=out)).print(build_table(detail, wide))
