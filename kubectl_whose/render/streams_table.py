"""The per-stream summary table (`analyze FILE`, and `capture` when it stops).

One row per stream, busiest first, as the summary orders them. The one-line header ("412 packets,
37 TCP streams ...") and the warnings go to stderr so that `| grep 10.0.0.7` sees only rows.
`wide` adds payload bytes, analysis counts, first frame, ISNs and the tunnel label. Nothing is ever cut: on a
narrow terminal less important columns are left out (and said), in a pipe every row is one whole line
(`render.grid`).
"""
from __future__ import annotations

from typing import Any, List, Optional

from kubectl_whose.render.output import make_console


def human_bytes(n: int) -> str:
    if n < 10_000:
        return str(n)
    for unit in ("k", "M", "G", "T"):
        n /= 1000.0
        if n < 1000 or unit == "T":
            return f"{n:.1f}{unit}" if n < 100 else f"{n:.0f}{unit}"
    return str(n)


def seconds(value: Optional[float]) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.3f}ms" if value < 0.001 else f"{value * 1000:.1f}ms"
    return f"{value:.3f}s"


def _head(summary: Any) -> dict:
    """Top-level figures and the number of TCP/UDP rows, without building every row."""
    if isinstance(summary, dict):
        d = dict(summary)
        d["tcp_rows"] = sum(1 for s in summary["streams"] if s["proto"] == "tcp")
        d["udp_rows"] = len(summary["streams"]) - d["tcp_rows"]
        return d
    d = summary.head()
    d["tcp_rows"], d["udp_rows"] = summary.row_counts()
    return d


def header_line(summary: Any) -> str:
    d = _head(summary)
    tcp, udp = d["tcp_rows"], d["udp_rows"]
    plural = lambda n: "" if n == 1 else "s"  # noqa: E731
    text = f"{d['packets']} packets, {tcp} TCP stream{plural(tcp)}, {udp} UDP stream{plural(udp)}"
    if d.get("linktypes"):
        text += f" ({', '.join(d['linktypes'])})"
    if d.get("truncated"):
        text += f"; capture cut short after frame {d['packets']}"
    return text


def print_header(summary: Any) -> None:
    err = make_console(stderr=True)
    err.print(header_line(summary), markup=False)
    for warning in _head(summary).get("warnings", []):
        err.print(f"warning: {warning}", markup=False)


# (header, right-justified, rank): on a narrow terminal the table view leaves out the highest rank first, and
# `-o wide` moves them (and its own columns) under each row instead; 0 is always in the grid.
_BASE = [("STREAM", False, 0), ("CLIENT", False, 0), ("SERVER", False, 0), ("PKTS →/←", True, 1),
         ("BYTES →/←", True, 2)]
_WIDE_PAYLOAD = [("PAYLOAD →/←", True, 10)]
_MIDDLE = [("START", True, 9), ("DUR", True, 6), ("STATE", False, 0), ("HISTORY", False, 4), ("S/F/R", True, 7),
           ("RETX", True, 5), ("ZWIN", True, 8), ("RTT", True, 3)]
_WIDE_TAIL = [(name, True, 10) for name in ("DUPACK", "OOO", "LOST", "FRAME", "CLIENT ISN", "SERVER ISN")] + \
             [("TUNNEL", False, 10)]


def columns(wide: bool) -> List[tuple]:
    """(header, right-justified) for each column, default view first."""
    return [(name, right) for name, right, _ in _specs(wide)]


def _specs(wide: bool) -> List[tuple]:
    return _BASE + (_WIDE_PAYLOAD if wide else []) + _MIDDLE + (_WIDE_TAIL if wide else [])


def grid_columns(wide: bool) -> list:
    from kubectl_whose.render.grid import Column

    return [Column(name, right=right, drop=rank, below=rank > 0, stack=name == "SERVER")
            for name, right, rank in _specs(wide)]


def cells(s: dict, wide: bool) -> List[str]:
    f = s["flags"]
    tcp = s["proto"] == "tcp"
    row = [f"{s['proto']}/{s['index']}", s["client"], s["server"],
           f"{s['client_packets']}/{s['server_packets']}",
           f"{human_bytes(s['client_bytes'])}/{human_bytes(s['server_bytes'])}"]
    if wide:
        row.append(f"{human_bytes(s['client_payload_bytes'])}/{human_bytes(s['server_payload_bytes'])}")
    row += [f"{s['start']:.3f}", f"{s['duration']:.3f}", s["state"], s["history"] or "-",
            f"{f['SYN']}/{f['FIN']}/{f['RST']}" if tcp else "-", str(s["retransmissions"]) if tcp else "-",
            str(s["zero_window"]) if tcp else "-", seconds(s["handshake_rtt"])]
    if wide:
        row += [str(s["dup_acks"]) if tcp else "-", str(s["out_of_order"]) if tcp else "-",
                str(s["lost_segments"]) if tcp else "-", str(s["first_frame"]),
                "-" if s["client_isn"] is None else str(s["client_isn"]),
                "-" if s["server_isn"] is None else str(s["server_isn"]), s["encapsulation"] or "-"]
    return row


def render(summary: Any, wide: bool = False, out=None) -> None:
    """Header and warnings on stderr, the table on stdout (nothing when there are no streams).

    `summary` is a CaptureSummary (rows built on demand) or its `to_dict()`."""
    print_header(summary)
    if isinstance(summary, dict):
        count, rows = len(summary["streams"]), (lambda: iter(summary["streams"]))
    else:
        count, rows = len(summary), summary.iter_streams
    if not count:
        make_console(stderr=True).print("no TCP or UDP streams in this capture", markup=False)
        return
    from kubectl_whose.render.grid import write_table

    write_table(grid_columns(wide), lambda: (cells(s, wide) for s in rows()), wide=wide, out=out, rule=True, gap=1)
