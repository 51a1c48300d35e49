"""The log readers behind the log panel, and the size format of the panels."""

from __future__ import annotations

from pathlib import Path

from jobtree.gui.jobinfo import readFrom, readPage, readTail
from jobtree.gui.model import fmtBytes


def test_tail_and_pages_start_at_a_line_boundary(tmp_path: Path) -> None:
    log = tmp_path / "stdout.1.log"
    log.write_bytes(b"".join(b"line %03d\n" % i for i in range(100)))  # 9 bytes a line
    tail = readTail(str(log), maxBytes=40)
    assert tail.text == "line 096\nline 097\nline 098\nline 099\n"
    assert (tail.start, tail.end) == (864, 900)
    page = readPage(str(log), tail.start, maxBytes=40)
    assert page.text == "line 092\nline 093\nline 094\nline 095\n"
    assert (page.start, page.end, page.size) == (828, 864, 900)
    first = readPage(str(log), 27, maxBytes=40)  # the file's start is a boundary itself
    assert first.text == "line 000\nline 001\nline 002\n"
    more = readFrom(str(log), 891)
    assert more.text == "line 099\n"


def test_a_single_unfinished_line_is_kept_whole(tmp_path: Path) -> None:
    log = tmp_path / "stdout.1.log"
    log.write_bytes(b"x" * 100)
    assert readTail(str(log), maxBytes=10).text == "x" * 10
    assert readTail(str(tmp_path / "missing.log")).text == ""


def test_sizes() -> None:
    assert [fmtBytes(n) for n in (0, 512, 1536, 20 << 20, 3 << 30, 5 << 40)] == [
        "0 B",
        "512 B",
        "1.5 KB",
        "20.0 MB",
        "3.0 GB",
        "5120.0 GB",
    ]
