"""Tables that never cut a value: a pure layout choice (`choose_layout`) and the writer (`write_table`).

On a terminal of W columns, the layout is the first of these that fits:
1. every column at its natural width (its longest cell);
2. the table view (not `-o wide`) leaves out the least important columns, highest `drop` rank first, and says
   which (`-o wide` shows them);
3. text columns (`wrap`) wrap at spaces, never inside a word: their least width is their longest word;
4. columns marked `below` leave the grid one by one (highest `drop` rank first) and are written under their row
   as `NAME: value` pairs;
5. columns marked `stack` go under their left neighbour, in one cell of two lines (a client over its server);
6. every row as a block of `NAME  value` lines, as `kubectl describe` prints.
Atom columns (addresses, numbers, names, flags) are never broken, in any layout. Not on a terminal (a pipe, a
file), every column is shown at its natural width, one line per row: nothing is cut, wrapped or left out, so
grep and awk see whole rows. A value wider than the whole terminal (only in layout 5) runs past the edge rather
than being cut.

Rows are produced by a factory called twice (measure, then write), so 100 000 rows are never held at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, List, Optional, Sequence, TextIO, Tuple, Union

Rows = Union[Sequence[Sequence[str]], Callable[[], Iterable[Sequence[str]]]]


@dataclass(frozen=True)
class Column:
    name: str
    right: bool = False  # right-justified (numbers)
    drop: int = 0  # 0: always shown; on a narrow terminal the table view leaves out the highest rank first
    wrap: bool = False  # text that may wrap at spaces; else an atom, never broken
    below: bool = False  # may be written under its row when the grid does not fit
    stack: bool = False  # may be stacked under the column on its left, in one cell of two lines (CLIENT/SERVER)
    style: Optional[Callable[[str], Optional[str]]] = None  # rich style of a cell, on a terminal


@dataclass(frozen=True)
class Layout:
    grid: Tuple[int, ...]  # indexes of the columns in the grid, in order
    widths: Tuple[int, ...]  # the width of each of those
    below: Tuple[int, ...] = ()  # columns written under each row
    dropped: Tuple[int, ...] = ()  # columns left out (table view on a narrow terminal)
    records: bool = False  # every row as a block of `NAME  value` lines, for the columns in `grid` (no widths)
    stacked: Tuple[int, ...] = ()  # grid columns holding their right neighbour (a `stack` column) under their value


def longest_word(text: str) -> int:
    return max((len(w) for w in text.split()), default=0)


def measure(columns: Sequence[Column], rows: Iterable[Sequence[str]]) -> Tuple[List[int], List[int]]:
    """(natural, least) width of each column: its longest cell, and the least it can take (the longest word of a
    text column, the longest cell of an atom column). Headers are atoms."""
    natural = [len(c.name) for c in columns]
    least = list(natural)
    wraps = [i for i, c in enumerate(columns) if c.wrap]
    for row in rows:
        for i, cell in enumerate(row):
            n = len(cell)
            if n > natural[i]:
                natural[i] = n
        for i in wraps:
            n = longest_word(row[i])
            if n > least[i]:
                least[i] = n
    for i, c in enumerate(columns):
        if not c.wrap:
            least[i] = natural[i]
    return natural, least


def _total(idx: Sequence[int], widths: Sequence[int], gap: int) -> int:
    return sum(widths[i] for i in idx) + gap * max(0, len(idx) - 1)


def _share(idx: Sequence[int], natural: Sequence[int], least: Sequence[int], room: int, gap: int) -> Tuple[int, ...]:
    """Widths between least and natural that add up to `room`: the columns that need the most get it first."""
    widths = {i: least[i] for i in idx}
    spare = room - _total(idx, least, gap)
    while spare > 0:
        want = [i for i in idx if widths[i] < natural[i]]
        if not want:
            break
        i = max(want, key=lambda j: natural[j] - widths[j])
        widths[i] += 1
        spare -= 1
    return tuple(widths[i] for i in idx)


def choose_layout(columns: Sequence[Column], natural: Sequence[int], least: Sequence[int], width: Optional[int],
                  may_drop: bool, gap: int = 2) -> Layout:
    """The layout of a table on a terminal `width` columns wide (None: not a terminal, nothing limits it).

    Stacking (`stack` columns under their left neighbour) is tried too when the plain layout had to give something
    up; the one that leaves out and moves away the fewest columns wins, the plain one on a tie."""
    shown = tuple(range(len(columns)))
    if width is None or _total(shown, natural, gap) <= width:
        return Layout(shown, tuple(natural[i] for i in shown))
    plain = _fit(columns, natural, least, width, may_drop, gap, ())
    pairs = tuple(i for i in shown if columns[i].stack and i > 0)
    if not pairs or not (plain.dropped or plain.below or plain.records):
        return plain
    nat, lst = list(natural), list(least)
    for i in pairs:
        nat[i - 1] = lst[i - 1] = max(natural[i - 1], natural[i], len(columns[i - 1].name) + 1 + len(columns[i].name))
    stacked = _fit(columns, nat, lst, width, may_drop, gap, pairs)

    def cost(lay: Layout):
        return lay.records, len(lay.dropped), len(lay.below)

    return stacked if cost(stacked) < cost(plain) else plain


def _fit(columns: Sequence[Column], natural: Sequence[int], least: Sequence[int], width: int, may_drop: bool,
         gap: int, pairs: Tuple[int, ...]) -> Layout:
    """Leave out (table view), wrap, move below, in that order; `pairs`: stack columns already merged to the left."""
    stacked = tuple(i - 1 for i in pairs)
    shown = [i for i in range(len(columns)) if i not in pairs]
    dropped: List[int] = []

    def done(grid, widths, below=()):
        return Layout(tuple(grid), tuple(widths), tuple(sorted(below)), tuple(sorted(dropped)),
                      stacked=tuple(i for i in stacked if i in grid))

    if may_drop:
        for i in sorted((i for i in shown if columns[i].drop), key=lambda i: (-columns[i].drop, -i)):
            if _total(shown, natural, gap) <= width:
                break
            shown.remove(i)
            dropped.append(i)
    if _total(shown, natural, gap) <= width:
        return done(shown, [natural[i] for i in shown])
    if _total(shown, least, gap) <= width:
        return done(shown, _share(shown, natural, least, width, gap))
    grid, below = list(shown), []
    for i in sorted((i for i in shown if columns[i].below), key=lambda i: (-columns[i].drop, -i)):
        grid.remove(i)
        below.append(i)
        if grid and _total(grid, least, gap) <= width:
            return done(grid, _share(grid, natural, least, width, gap), below)
    return Layout(tuple(sorted(shown + [i for i in pairs if i - 1 in shown])), (), (), tuple(sorted(dropped)),
                  records=True)


def wrap_words(text: str, width: int) -> List[str]:
    """Lines of at most `width` (a word longer than that stands alone on its line, whole)."""
    lines: List[str] = []
    for para in text.split("\n"):
        line = ""
        for word in para.split():
            if not line:
                line = word
            elif len(line) + 1 + len(word) <= width:
                line += " " + word
            else:
                lines.append(line)
                line = word
        lines.append(line)
    return lines or [""]


def _pairs(columns: Sequence[Column], values: Sequence[str], width: int, indent: int) -> List[str]:
    """`NAME: value` pairs packed onto lines under a row; an atom pair is never split across lines, a text pair
    too long for one line gets lines of its own."""
    room = max(1, width - indent)
    pad = " " * indent
    lines: List[str] = []
    line = ""
    for c, value in zip(columns, values):
        if not value:
            continue
        pair = f"{c.name}: {value}"
        if c.wrap and len(pair) > room:
            if line:
                lines.append(pad + line)
                line = ""
            wrapped = wrap_words(value, max(1, room - len(c.name) - 2))
            lines.append(f"{pad}{c.name}: {wrapped[0]}")
            lines.extend(pad + " " * (len(c.name) + 2) + more for more in wrapped[1:])
        elif line and len(line) + 2 + len(pair) <= room:
            line += "  " + pair
        else:
            if line:
                lines.append(pad + line)
            line = pair
    if line:
        lines.append(pad + line)
    return lines


class _Writer:
    """Plain lines to a file, or styled lines through a rich Console on a terminal."""

    def __init__(self, out: Optional[TextIO], console):
        self.console = console
        self.file = out

    def line(self, text: str, spans: Sequence[Tuple[int, int, str]] = ()) -> None:
        if self.console is None:
            self.file.write(text + "\n")
            return
        from rich.text import Text

        t = Text(text)
        for start, end, style in spans:
            t.stylize(style, start, end)
        self.console.print(t, soft_wrap=True)


def write_table(columns: Sequence[Column], rows: Rows, *, wide: bool = False, out: Optional[TextIO] = None,
                width: Optional[int] = -1, title: Optional[str] = None, rule: bool = False, gap: int = 2,
                note: Optional[Callable[[str], None]] = None) -> Layout:
    """Write the table; returns the layout chosen. `width` -1: the terminal's (None when `out` is not one);
    `rule`: a `───` line under the header; `note(text)` says which columns were left out (default: stderr)."""
    from kubectl_whose.render.output import make_console, terminal_width

    factory = rows if callable(rows) else (lambda: rows)
    if width == -1:
        width = terminal_width(out)
    natural, least = measure(columns, factory())
    layout = choose_layout(columns, natural, least, width, may_drop=not wide, gap=gap)
    console = make_console(file=out) if width is not None else None
    w = _Writer(out or _stdout(), console)
    if title:
        for line in (wrap_words(title, width) if width else [title]):
            w.line(line, [(0, len(line), "bold")])
    if layout.records:
        _write_records(w, columns, factory, layout, width or 0)
    else:
        _write_grid(w, columns, factory, layout, width, rule, gap)
    if layout.dropped:
        names = ", ".join(columns[i].name for i in sorted(layout.dropped))
        text = f"{width} columns: {names} left out (-o wide shows them)"
        (note or _say)(text)
    return layout


def _stdout() -> TextIO:
    import sys

    return sys.stdout


def _say(text: str) -> None:
    from kubectl_whose.chatter import say

    say(text)


def _write_grid(w: _Writer, columns: Sequence[Column], factory, layout: Layout, width: Optional[int], rule: bool,
                gap: int) -> None:
    grid, widths = layout.grid, layout.widths
    sep = " " * gap

    def join(cells: Sequence[str]) -> Tuple[str, List[Tuple[int, int, str]]]:
        parts, spans, pos = [], [], 0
        for k, (i, cell) in enumerate(zip(grid, cells)):
            c = columns[i]
            text = cell.rjust(widths[k]) if c.right else cell.ljust(widths[k])
            if c.style is not None and cell:
                style = c.style(cell.strip())
                if style:
                    start = pos + (widths[k] - len(cell) if c.right else 0)
                    spans.append((start, start + len(cell), style))
            parts.append(text)
            pos += len(text) + gap
        return sep.join(parts).rstrip(), spans

    stacked = set(layout.stacked)
    names = [f"{columns[i].name}/{columns[i + 1].name}" if i in stacked else columns[i].name for i in grid]
    header, _ = join(names)
    w.line(header, [(0, len(header), "bold")])
    if rule:
        w.line("─" * _total(range(len(grid)), widths, gap))
    below_cols = [columns[i] for i in layout.below]
    for row in factory():
        cells = []
        for k, i in enumerate(grid):
            if i in stacked:
                cells.append([row[i], row[i + 1]])
            else:
                cells.append(wrap_words(row[i], widths[k]) if columns[i].wrap and len(row[i]) > widths[k]
                             else [row[i]])
        for n in range(max(len(c) for c in cells)):
            text, spans = join([c[n] if n < len(c) else "" for c in cells])
            w.line(text, spans)
        if layout.below:
            for line in _pairs(below_cols, [row[i] for i in layout.below], width or 1 << 30, 4):
                w.line(line)


def _write_records(w: _Writer, columns: Sequence[Column], factory, layout: Layout, width: int) -> None:
    shown = [columns[i] for i in layout.grid]
    pad = max(len(c.name) for c in shown) + 2
    first = True
    for row in factory():
        if not first:
            w.line("")
        first = False
        for c, cell in zip(shown, (row[i] for i in layout.grid)):
            lines = wrap_words(cell, max(1, width - pad)) if c.wrap else [cell]
            if pad + len(lines[0]) > width and not c.wrap:  # the value on a line of its own, still whole
                w.line(c.name, [(0, len(c.name), "bold")])
                w.line("  " + cell)
                continue
            w.line(c.name.ljust(pad) + lines[0], [(0, len(c.name), "bold")])
            for more in lines[1:]:
                w.line(" " * pad + more)
