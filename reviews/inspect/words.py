"""Word-level marks inside changed line pairs: what changed within a line, not only which line.

Works on the escaped (and highlighted) HTML the diff pipeline made, so it never sees raw
tarball text and never needs to escape anything: it only adds `<span class="gr-del">` (baseline
side) and `<span class="gr-ins">` (staged side) around runs of text characters, closing them
before every existing tag and opening them again after it, so the markup stays well nested.

The pairs are the side-by-side pairing (`Hunk.rows` of kind CHANGED); the unified lines get the
same marks by line number. The words in common at both ends are trimmed first (linear time:
most edits change one spot of a line); only a short middle is compared word by word
(`difflib`), a long one is marked whole. Bounded: lines longer than `MAX_LINE_CHARS`, pairs
beyond `MAX_PAIRS_PER_FILE` or `MAX_CHARS_PER_FILE`, and pairs with too little in common are
left as they are.
"""

from __future__ import annotations

import html
import re
from dataclasses import replace
from difflib import SequenceMatcher

from reviews.inspect.diffing import DiffLine, FileDiff, Hunk, LineKind, RowKind, SideBySideRow

__all__ = [
    "MAX_CHARS_PER_FILE",
    "MAX_LINE_CHARS",
    "MAX_PAIRS_PER_FILE",
    "mark_diff",
    "mark_pair",
]

MAX_LINE_CHARS = 1000
"""Longer lines (in characters of text) are not compared word by word."""
MAX_PAIRS_PER_FILE = 2000
MAX_CHARS_PER_FILE = 400_000
"""Characters of line HTML looked at per file: past it, the remaining pairs are left as they are."""
MAX_MIDDLE_WORDS = 40
"""A changed middle longer than this (either side) is marked whole, not compared word by word."""
MIN_COMMON = 0.3
"""Below this share of common text the two lines are different lines: no word marks."""

_TAG = re.compile(r"(<[^>]*>)")
_CHAR = re.compile(r"&#?\w+;|.", re.DOTALL)
_WORD = re.compile(r"\w+|\s+|[^\w\s]")

Span = tuple[int, int]
"""A run of changed text, as character offsets [start, end) in the line's text."""


def mark_diff(diff: FileDiff, max_chars: int = MAX_LINE_CHARS) -> FileDiff:
    """`diff` with word marks in its changed line pairs (unified lines and side-by-side rows)."""
    budget, chars = MAX_PAIRS_PER_FILE, MAX_CHARS_PER_FILE
    hunks = []
    for hunk in diff.hunks:
        old_marked: dict[int, str] = {}
        new_marked: dict[int, str] = {}
        for row in hunk.rows:
            if budget <= 0 or chars <= 0:
                break
            if row.kind is not RowKind.CHANGED or row.old_html is None or row.new_html is None:
                continue
            budget -= 1
            chars -= len(row.old_html) + len(row.new_html)
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
    old_parts, new_parts = _TAG.split(old_html), _TAG.split(new_html)
    old_text, new_text = _text(old_parts), _text(new_parts)
    if len(old_text) > max_chars or len(new_text) > max_chars or old_text == new_text:
        return None
    spans = _changed_spans(_WORD.findall(old_text), _WORD.findall(new_text))
    old_spans, new_spans = spans
    changed = sum(end - start for start, end in old_spans) + sum(e - s for s, e in new_spans)
    common = len(old_text) + len(new_text) - changed
    if common < MIN_COMMON * 2 * max(len(old_text), len(new_text)):
        return None
    return _wrap(old_parts, old_spans, "gr-del"), _wrap(new_parts, new_spans, "gr-ins")


def _changed_spans(old: list[str], new: list[str]) -> tuple[list[Span], list[Span]]:
    """The changed runs of each side: the words in common at both ends trimmed, the middle
    compared word by word when it is short, else marked whole."""
    prefix = 0
    limit = min(len(old), len(new))
    while prefix < limit and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    old_mid, new_mid = old[prefix : len(old) - suffix], new[prefix : len(new) - suffix]
    old_at, new_at = _length(old[:prefix]), _length(new[:prefix])
    if len(old_mid) > MAX_MIDDLE_WORDS or len(new_mid) > MAX_MIDDLE_WORDS:
        return _whole(old_at, old_mid), _whole(new_at, new_mid)
    old_starts, new_starts = _starts(old_mid, old_at), _starts(new_mid, new_at)
    old_spans: list[Span] = []
    new_spans: list[Span] = []
    matcher = SequenceMatcher(None, old_mid, new_mid, autojunk=False)
    for tag, a1, a2, b1, b2 in matcher.get_opcodes():
        if tag != "equal":
            _add(old_spans, old_starts[a1], old_starts[a2])
            _add(new_spans, new_starts[b1], new_starts[b2])
    return old_spans, new_spans


def _length(words: list[str]) -> int:
    return sum(len(word) for word in words)


def _whole(at: int, words: list[str]) -> list[Span]:
    length = _length(words)
    return [(at, at + length)] if length else []


def _starts(words: list[str], at: int) -> list[int]:
    starts = [at]
    for word in words:
        starts.append(starts[-1] + len(word))
    return starts


def _add(spans: list[Span], start: int, end: int) -> None:
    if end > start:
        spans.append((start, end))


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


def _text(parts: list[str]) -> str:
    """The text of a fragment split by `_TAG` (text at even indexes, tags at odd ones)."""
    return "".join(html.unescape(part) for part in parts[::2])


def _wrap(parts: list[str], spans: list[Span], css: str) -> str:
    """The fragment again, each span of changed text inside `<span class=css>`, closed before
    every tag and opened again after it."""
    if not spans:
        return "".join(parts)
    out: list[str] = []
    position = 0  # in text characters
    for index, part in enumerate(parts):
        if index % 2:
            out.append(part)  # a tag: no span is open here
            continue
        if not part:
            continue
        if "&" not in part:
            out.append(_wrap_plain(part, position, spans, css))
            position += len(part)
            continue
        pieces = _CHAR.findall(part)
        out.append(_wrap_pieces(pieces, position, spans, css))
        position += sum(1 if piece[0] != "&" else len(html.unescape(piece)) for piece in pieces)
    return "".join(out)


def _wrap_plain(text: str, at: int, spans: list[Span], css: str) -> str:
    """A run of text without character references, starting at text offset `at`."""
    out: list[str] = []
    cursor = 0
    for start, end in spans:
        first, last = max(start - at, cursor), min(end - at, len(text))
        if last <= first:
            continue
        out.append(text[cursor:first])
        out.append(f'<span class="{css}">{text[first:last]}</span>')
        cursor = last
    out.append(text[cursor:])
    return "".join(out)


def _wrap_pieces(pieces: list[str], at: int, spans: list[Span], css: str) -> str:
    """A run of text with character references: one piece (a character or a reference) at a
    time, so that no reference is cut."""
    out: list[str] = []
    position = at
    open_span = False
    span = 0  # the first span that does not end before `position` (spans are in order)
    for piece in pieces:
        while span < len(spans) and spans[span][1] <= position:
            span += 1
        wanted = span < len(spans) and spans[span][0] <= position
        if wanted != open_span:
            out.append(f'<span class="{css}">' if wanted else "</span>")
            open_span = wanted
        out.append(piece)
        position += 1 if piece[0] != "&" else len(html.unescape(piece))
    if open_span:
        out.append("</span>")
    return "".join(out)
