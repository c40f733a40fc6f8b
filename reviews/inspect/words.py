"""Word-level marks inside changed line pairs: what changed within a line, not only which line.

Works on the escaped (and highlighted) HTML the diff pipeline made, so it never sees raw
tarball text and never needs to escape anything: it only adds `<span class="gr-del">` (baseline
side) and `<span class="gr-ins">` (staged side) around runs of text characters, closing them
before every existing tag and opening them again after it, so the markup stays well nested.

The pairs are the side-by-side pairing (`Hunk.rows` of kind CHANGED); the unified lines get the
same marks by line number. Bounded: lines longer than `MAX_LINE_CHARS`, pairs beyond
`MAX_PAIRS_PER_FILE` and pairs with too little in common are left as they are.
"""

from __future__ import annotations

import html
import re
from dataclasses import replace
from difflib import SequenceMatcher

from reviews.inspect.diffing import DiffLine, FileDiff, Hunk, LineKind, RowKind, SideBySideRow

__all__ = ["MAX_LINE_CHARS", "MAX_PAIRS_PER_FILE", "mark_diff", "mark_pair"]

MAX_LINE_CHARS = 1000
"""Longer lines (in characters of text) are not compared word by word."""
MAX_PAIRS_PER_FILE = 2000
MIN_COMMON = 0.3
"""Below this share of common text the two lines are different lines: no word marks."""

_UNIT = re.compile(r"<[^>]*>|&#?\w+;|.", re.DOTALL)
_WORD = re.compile(r"\w+|\s+|[^\w\s]")


def mark_diff(diff: FileDiff, max_chars: int = MAX_LINE_CHARS) -> FileDiff:
    """`diff` with word marks in its changed line pairs (unified lines and side-by-side rows)."""
    budget = MAX_PAIRS_PER_FILE
    hunks = []
    for hunk in diff.hunks:
        old_marked: dict[int, str] = {}
        new_marked: dict[int, str] = {}
        for row in hunk.rows:
            if budget <= 0:
                break
            if row.kind is not RowKind.CHANGED or row.old_html is None or row.new_html is None:
                continue
            budget -= 1
            marked = mark_pair(row.old_html, row.new_html, max_chars)
            if marked is not None and row.old_no is not None and row.new_no is not None:
                old_marked[row.old_no], new_marked[row.new_no] = marked
        hunks.append(_with_marks(hunk, old_marked, new_marked) if old_marked else hunk)
    return replace(diff, hunks=tuple(hunks))


def mark_pair(
    old_html: str, new_html: str, max_chars: int = MAX_LINE_CHARS
) -> tuple[str, str] | None:
    """The two lines with their changed words wrapped, or None when they are not compared
    (too long, too different, or identical as text)."""
    old_units, new_units = _units(old_html), _units(new_html)
    old_text, new_text = _text(old_units), _text(new_units)
    if len(old_text) > max_chars or len(new_text) > max_chars or old_text == new_text:
        return None
    old_words, new_words = _WORD.findall(old_text), _WORD.findall(new_text)
    matcher = SequenceMatcher(None, old_words, new_words, autojunk=False)
    common = sum(len("".join(old_words[b.a : b.a + b.size])) for b in matcher.get_matching_blocks())
    if common < MIN_COMMON * max(len(old_text), len(new_text)):
        return None
    old_changed = [False] * len(old_text)
    new_changed = [False] * len(new_text)
    old_starts, new_starts = _starts(old_words), _starts(new_words)
    for tag, a1, a2, b1, b2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        _flag(old_changed, old_starts, a1, a2)
        _flag(new_changed, new_starts, b1, b2)
    return _wrap(old_units, old_changed, "gr-del"), _wrap(new_units, new_changed, "gr-ins")


def _with_marks(hunk: Hunk, old_marked: dict[int, str], new_marked: dict[int, str]) -> Hunk:
    lines = tuple(_marked_line(line, old_marked, new_marked) for line in hunk.lines)
    rows = tuple(_marked_row(row, old_marked, new_marked) for row in hunk.rows)
    return replace(hunk, lines=lines, rows=rows)


def _marked_row(
    row: SideBySideRow, old_marked: dict[int, str], new_marked: dict[int, str]
) -> SideBySideRow:
    if row.kind is not RowKind.CHANGED or row.old_no is None or row.new_no is None:
        return row
    if row.old_no not in old_marked:
        return row
    return replace(row, old_html=old_marked[row.old_no], new_html=new_marked[row.new_no])


def _marked_line(
    line: DiffLine, old_marked: dict[int, str], new_marked: dict[int, str]
) -> DiffLine:
    if line.kind is LineKind.REMOVED and line.old_no in old_marked:
        return replace(line, html=old_marked[line.old_no])
    if line.kind is LineKind.ADDED and line.new_no in new_marked:
        return replace(line, html=new_marked[line.new_no])
    return line


def _units(fragment: str) -> list[str]:
    """Tags, character references and single characters, in order."""
    return _UNIT.findall(fragment)


def _is_tag(unit: str) -> bool:
    return unit.startswith("<") and unit.endswith(">") and len(unit) > 1


def _text(units: list[str]) -> str:
    return "".join(html.unescape(unit) for unit in units if not _is_tag(unit))


def _starts(words: list[str]) -> list[int]:
    starts = [0]
    for word in words:
        starts.append(starts[-1] + len(word))
    return starts


def _flag(changed: list[bool], starts: list[int], first: int, last: int) -> None:
    for index in range(starts[first], starts[last]):
        changed[index] = True


def _wrap(units: list[str], changed: list[bool], css: str) -> str:
    """The fragment again, each run of changed characters inside `<span class=css>`."""
    out: list[str] = []
    position = 0
    open_span = False
    for unit in units:
        if _is_tag(unit):
            if open_span:
                out.append("</span>")
                open_span = False
            out.append(unit)
            continue
        wanted = changed[position] if position < len(changed) else False
        if wanted != open_span:
            out.append(f'<span class="{css}">' if wanted else "</span>")
            open_span = wanted
        out.append(unit)
        position += len(html.unescape(unit))
    if open_span:
        out.append("</span>")
    return "".join(out)
