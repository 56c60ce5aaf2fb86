"""The live view of a running capture: packets, bytes, rate, elapsed and the busiest streams, on stderr.

On a terminal it is a rich `Live` refreshed 4 times a second (stdout stays free for the table, JSON or the pcap of
`-w -`); not on a terminal nothing live is drawn, the final output is the same. It only shows what the analysis
engine's `snapshot()` returns plus the byte count of the stream itself; it computes nothing.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Callable, Optional

REFRESH_PER_SECOND = 4
TOP_STREAMS = 5


def _get(obj: Any, *names: str, default=None):
    for name in names:
        if isinstance(obj, dict) and name in obj:
            return obj[name]
        if hasattr(obj, name):
            return getattr(obj, name)
    return default


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return f"{n:.1f} GiB"


def render_live(snapshot: Any, wire_bytes: int, elapsed: float, where: str):
    """One frame of the live view (a rich renderable)."""
    from rich.table import Table
    from rich.text import Text
    from rich.console import Group

    packets = int(_get(snapshot, "packets", default=0) or 0)
    rate = packets / elapsed if elapsed > 0 else 0.0
    head = Text(f"capturing {where}  {packets} packets  {human_bytes(wire_bytes)}  "
                f"{rate:.0f} pkt/s  {human_bytes(wire_bytes / elapsed if elapsed > 0 else 0)}/s  "
                f"{elapsed:.1f} s  (Ctrl-C stops)")
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for col, justify in (("#", "right"), ("proto", "left"), ("client → server", "left"), ("packets", "right"),
                         ("bytes", "right")):
        table.add_column(col, justify=justify)
    streams = _get(snapshot, "top_streams", "streams", "top", default=[]) or []
    for s in list(streams)[:TOP_STREAMS]:
        table.add_row(str(_get(s, "index", default="?")), str(_get(s, "proto", default="")),
                      f"{_get(s, 'client', default='?')} → {_get(s, 'server', default='?')}",
                      str(_get(s, "packets", default=0)), human_bytes(float(_get(s, "bytes", default=0) or 0)))
    return Group(head, table) if streams else head


class LiveView:
    """Context manager drawing `render_live` on stderr while `active`; a no-op when stderr is not a terminal."""

    def __init__(self, snapshot_fn: Callable[[], Any], bytes_fn: Callable[[], int], where: str,
                 enabled: Optional[bool] = None):
        self.snapshot_fn, self.bytes_fn, self.where = snapshot_fn, bytes_fn, where
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.started = time.monotonic()
        self._live = None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(self._frame(), console=Console(stderr=True), refresh_per_second=REFRESH_PER_SECOND,
                              transient=True, get_renderable=self._frame)
            self._live.__enter__()
        return self

    def _frame(self):
        try:
            return render_live(self.snapshot_fn(), self.bytes_fn(), time.monotonic() - self.started, self.where)
        except Exception as e:  # noqa: BLE001 - a drawing hiccup must never end a capture
            from rich.text import Text

            return Text(f"capturing {self.where} ({type(e).__name__})")

    def __exit__(self, *exc):
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None
        return False


class MultiLiveView(LiveView):
    """The live view of a capture of several pods: one row per pod (state, packets, bytes, rate, its busiest
    stream). `runs` are `collect.multi_capture.PodRun`s; nothing is computed here but the rates."""

    def __init__(self, runs, enabled: Optional[bool] = None):
        super().__init__(lambda: runs, lambda: 0, f"{len(runs)} pods", enabled)

    def _frame(self):
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        elapsed = time.monotonic() - self.started
        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
        for col, justify in (("pod", "left"), ("state", "left"), ("packets", "right"), ("bytes", "right"),
                             ("pkt/s", "right"), ("busiest stream", "left")):
            table.add_column(col, justify=justify)
        total = 0
        for run in self.snapshot_fn():
            try:
                snap = run.snapshot()
            except Exception:  # noqa: BLE001 - a drawing hiccup must never end a capture
                snap = None
            packets = int(_get(snap, "packets", default=0) or 0) if snap is not None else 0
            total += packets
            top = (_get(snap, "top", default=[]) or [None])[0] if snap is not None else None
            busiest = f"{_get(top, 'client', default='?')} → {_get(top, 'server', default='?')}" if top else "-"
            wire = run.sink.bytes if run.sink is not None else 0
            table.add_row(run.label, run.state, str(packets), human_bytes(wire),
                          f"{packets / elapsed:.0f}" if elapsed > 0 else "0", busiest)
        head = Text(f"capturing {self.where}  {total} packets  {elapsed:.1f} s  (Ctrl-C stops)")
        return Group(head, table)
