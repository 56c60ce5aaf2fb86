"""The per-stream summary table (`analyze FILE`, and `capture` when it stops).

One row per stream, busiest first, as the summary orders them. The one-line header ("412 packets,
37 TCP streams ...") and the warnings go to stderr so that `| grep 10.0.0.7` sees only rows.
Default columns fit 120 columns in a pipe; `wide` adds payload bytes, analysis counts, first frame,
ISNs and the tunnel label.
"""
from __future__ import annotations

from typing import Any, List, Optional

from kubectl_whose.render.output import make_console
from kubectl_whose.render.plain_table import RICH_MAX_ROWS, write_plain

WIDE_WIDTH = 260


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


def columns(wide: bool) -> List[tuple]:
    """(header, right-justified) for each column, default view first."""
    cols = [("STREAM", False), ("CLIENT", False), ("SERVER", False), ("PKTS →/←", True), ("BYTES →/←", True)]
    if wide:
        cols.append(("PAYLOAD →/←", True))
    cols += [("START", True), ("DUR", True), ("STATE", False), ("HISTORY", False), ("S/F/R", True),
             ("RETX", True), ("ZWIN", True), ("RTT", True)]
    if wide:
        cols += [(name, True) for name in ("DUPACK", "OOO", "LOST", "FRAME", "CLIENT ISN", "SERVER ISN")]
        cols.append(("TUNNEL", False))
    return cols


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


def build_table(streams: list, wide: bool = False):
    from rich import box
    from rich.table import Table
    from rich.text import Text

    # IPv4 endpoints never wrap; long IPv6 ones fold inside their column rather than squeeze others
    ends_fit = all(len(s["client"]) <= 22 and len(s["server"]) <= 22 for s in streams)
    # SIMPLE_HEAD already puts one space between columns: no padding, or 13 columns overflow 120
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, padding=(0, 0))
    for name, right in columns(wide):
        folds = name in ("CLIENT", "SERVER") and not ends_fit or name == "TUNNEL"  # HISTORY stays greppable
        table.add_column(name, justify="right" if right else "left", no_wrap=not folds, overflow="fold",
                         min_width=12 if name == "TUNNEL" else None)
    for s in streams:
        table.add_row(*(Text(cell) for cell in cells(s, wide)))  # Text: "[fd00::1]:80" is not markup
    return table


def render(summary: Any, wide: bool = False, console=None, out=None) -> None:
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
    if count > RICH_MAX_ROWS:
        cols = columns(wide)
        write_plain([c[0] for c in cols], [c[1] for c in cols], lambda: (cells(s, wide) for s in rows()), out)
        return
    # -o wide is for wide terminals and files, as kubectl's is; the default view fits 120 columns
    console = console or make_console(width=WIDE_WIDTH if wide else None, file=out)
    console.print(build_table(list(rows()), wide))
