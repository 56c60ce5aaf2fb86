"""The grid's layout choice and its text: nothing is ever cut, whatever the width."""
import io

import pytest

from kubectl_whose.render.grid import Column, Layout, choose_layout, measure, wrap_words, write_table

COLS = [Column("STREAM"), Column("CLIENT"), Column("SERVER"), Column("START", right=True, drop=2, below=True),
        Column("NOTES", wrap=True, drop=1, below=True)]
ROWS = [["tcp/10", "10.244.0.20:41676", "127.0.0.1:15001", "0.503", "dup ACK, retrans"],
        ["tcp/2", "[fd00::1]:80", "10.96.0.10:80", "10.000", "-"]]


def layout(width, wide=False, cols=COLS, rows=ROWS, gap=2):
    natural, least = measure(cols, rows)
    return choose_layout(cols, natural, least, width, may_drop=not wide, gap=gap)


def test_measure_natural_and_least_widths():
    natural, least = measure(COLS, ROWS)
    assert natural == [6, 17, 15, 6, 16]
    assert least == [6, 17, 15, 6, 7]  # NOTES wraps: its longest word ("retrans"), its header ("NOTES")


@pytest.mark.parametrize("width, want", [
    (None, Layout((0, 1, 2, 3, 4), (6, 17, 15, 6, 16))),  # a pipe: everything, natural widths
    (68, Layout((0, 1, 2, 3, 4), (6, 17, 15, 6, 16))),  # exactly fits
    (67, Layout((0, 1, 2, 4), (6, 17, 15, 16), dropped=(3,))),  # START (rank 2) goes first
    (50, Layout((0, 1, 2), (6, 17, 15), dropped=(3, 4))),  # then NOTES (rank 1)
    (30, Layout((0, 1, 2), (), dropped=(3, 4), records=True)),  # the atoms alone do not fit: blocks
], ids=["pipe", "fits", "one-left-out", "two-left-out", "records"])
def test_table_view_drops_the_highest_rank_first(width, want):
    assert layout(width) == want


def test_table_view_wraps_only_when_dropping_is_not_enough():
    cols = [Column("A"), Column("TEXT", wrap=True)]
    rows = [["x" * 10, "one two three four"]]
    got = layout(20, cols=cols, rows=rows)
    assert got == Layout((0, 1), (10, 8))
    buf = io.StringIO()
    write_table(cols, rows, out=buf, width=20)
    assert buf.getvalue().splitlines() == ["A           TEXT", "xxxxxxxxxx  one two", "            three", "            four"]


def test_wide_never_drops_it_moves_columns_under_the_row():
    got = layout(42, wide=True)
    assert got.dropped == () and got.grid == (0, 1, 2) and got.below == (3, 4)
    buf = io.StringIO()
    write_table(COLS, ROWS, wide=True, out=buf, width=42)
    assert buf.getvalue().splitlines() == [
        "STREAM  CLIENT             SERVER",
        "tcp/10  10.244.0.20:41676  127.0.0.1:15001",
        "    START: 0.503  NOTES: dup ACK, retrans",
        "tcp/2   [fd00::1]:80       10.96.0.10:80",
        "    START: 10.000  NOTES: -",
    ]


def test_records_when_not_even_the_atoms_fit():
    got = layout(30, wide=True)
    assert got.records
    buf = io.StringIO()
    write_table(COLS, ROWS[:1], wide=True, out=buf, width=30)
    assert buf.getvalue().splitlines() == ["STREAM  tcp/10", "CLIENT  10.244.0.20:41676", "SERVER  127.0.0.1:15001",
                                           "START   0.503", "NOTES   dup ACK, retrans"]
    buf = io.StringIO()
    write_table(COLS, ROWS[:1], wide=True, out=buf, width=20)  # a value that does not fit beside its name
    assert buf.getvalue().splitlines() == ["STREAM  tcp/10", "CLIENT", "  10.244.0.20:41676", "SERVER",
                                           "  127.0.0.1:15001", "START   0.503", "NOTES   dup ACK,", "        retrans"]


def test_a_pipe_writes_every_row_whole_on_one_line():
    long = "pod-security.kubernetes.io/enforce=privileged " * 5
    buf = io.StringIO()
    write_table([Column("CHECK"), Column("FIX", wrap=True)], [["PodSecurity", long.strip()]], out=buf, width=None)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2 and lines[1] == "PodSecurity  " + long.strip()


def test_the_left_out_columns_are_said():
    said = []
    buf = io.StringIO()
    write_table(COLS, ROWS, out=buf, width=50, note=said.append)
    assert said == ["50 columns: START, NOTES left out (-o wide shows them)"]
    assert "0.503" not in buf.getvalue() and "10.244.0.20:41676" in buf.getvalue()


def test_wrap_words_never_breaks_a_word():
    assert wrap_words("a bb ccc", 4) == ["a bb", "ccc"]
    assert wrap_words("pod-security.kubernetes.io/enforce=privileged now", 10) == [
        "pod-security.kubernetes.io/enforce=privileged", "now"]
    assert wrap_words("", 5) == [""]


@pytest.mark.parametrize("width", range(20, 130, 7))
def test_at_every_width_every_value_is_whole_on_one_line(width):
    """The property the issue asks for: whatever the width, each atom and each word appears whole."""
    for wide in (False, True):
        buf, said = io.StringIO(), []
        write_table(COLS, ROWS, wide=wide, out=buf, width=width, note=said.append)
        lines = buf.getvalue().splitlines()
        left_out = said[0] if said else ""
        for row in ROWS:
            for col, value in zip(COLS, row):
                if col.name in left_out:
                    continue
                words = value.split() if col.wrap else [value]
                for word in words:
                    assert any(word in line for line in lines), (width, wide, word, lines)
        if not any(len(v) > width for row in ROWS for v in row):
            assert all(len(line) <= width for line in lines), (width, wide, lines)


def test_long_endpoints_stack_rather_than_push_columns_out():
    """Two IPv6 endpoints side by side leave no room at 80 columns: the server goes under its client instead, and
    the counts stay in the grid (stacking wins because it leaves out fewer columns)."""
    cols = [Column("STREAM"), Column("CLIENT"), Column("SERVER", stack=True), Column("PKTS", right=True, drop=1)]
    v6 = "[fd00:1234:5678:9abc:def0:1234:5678:9abc]:40000"
    rows = [["tcp/0", v6, v6.replace("9abc]:40000", "9abd]:80"), "4/5"]]
    got = layout(62, cols=cols, rows=rows)
    assert got.stacked == (1,) and got.grid == (0, 1, 3) and got.dropped == ()
    buf = io.StringIO()
    write_table(cols, rows, out=buf, width=62)
    assert buf.getvalue().splitlines() == [
        "STREAM  CLIENT/SERVER                                    PKTS",
        f"tcp/0   {v6}   4/5",
        "        [fd00:1234:5678:9abc:def0:1234:5678:9abd]:80"]
    assert layout(200, cols=cols, rows=rows).stacked == ()  # room enough: side by side
