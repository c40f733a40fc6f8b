"""Search in the diffs of a stage: which changed lines contain a piece of text.

Runs over the display diffs (`analysis.file_diff`, cached by content digests, so a second search
costs no tarball read), added and removed lines only, case-insensitively on the text a reviewer
sees (tags stripped, character references decoded; bidi and invisible characters are already
`[U+…]` markers there). Bounded: the first `MAX_FILES` changed files are searched, the first
`MAX_HITS` hits are returned, diffs stop being computed after `MAX_SECONDS`, and a line shows
at most `SNIPPET_CHARS` around the match.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from reviews.inspect.diffing import DiffKind, DiffLine, Hunk, LineKind
from reviews.models import Analysis, FileChangeRow
from reviews.review import analysis as review_analysis

__all__ = ["MAX_FILES", "MAX_HITS", "MAX_QUERY", "Hit", "Results", "search_changed_lines"]

MAX_FILES = 300
MAX_HITS = 200
MAX_QUERY = 200
MAX_SECONDS = 5.0
"""Diffs not in the cache yet are computed for the search; past this, it stops and says so."""
SNIPPET_CHARS = 80
_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True, slots=True)
class Hit:
    path: str
    side: str
    """"added" (a staged line) or "removed" (a baseline line)."""
    line: int
    """The line number on its own side."""
    anchor: int | None
    """The staged line number the link jumps to (the nearest one for a removed line)."""
    before: str
    match: str
    after: str
    url: str


@dataclass(frozen=True, slots=True)
class Results:
    query: str
    hits: list[Hit]
    truncated: bool
    """More hits than shown, or files not searched."""
    files_searched: int


def search_changed_lines(
    analysis: Analysis, query: str, link: Callable[[str, int | None], str]
) -> Results:
    """Hits for `query` in the changed lines of `analysis`, in file order then line order;
    `link(path, staged_line)` gives each hit's URL."""
    query = query.strip()[:MAX_QUERY]
    if not query:
        return Results(query, [], False, 0)
    rows = list(
        FileChangeRow.objects.filter(analysis=analysis)
        .exclude(status="unchanged")
        .exclude(is_binary=True)
        .order_by("ordinal")[: MAX_FILES + 1]
    )
    truncated = len(rows) > MAX_FILES
    rows = rows[:MAX_FILES]
    options = review_analysis.diff_options()
    needle = query.lower()
    hits: list[Hit] = []
    deadline = time.monotonic() + MAX_SECONDS
    for searched, row in enumerate(rows):
        if time.monotonic() > deadline:
            return Results(query, hits, True, searched)
        try:
            diff = review_analysis.file_diff(analysis, row, options)
        except review_analysis.FileUnavailable:
            continue
        if diff.kind is not DiffKind.TEXT:
            continue
        for hunk in diff.hunks:
            for hit in _hunk_hits(hunk, row.path, query, needle, link):
                if len(hits) == MAX_HITS:
                    return Results(query, hits, True, len(rows))
                hits.append(hit)
    return Results(query, hits, truncated, len(rows))


def _hunk_hits(
    hunk: Hunk, path: str, query: str, needle: str, link: Callable[[str, int | None], str]
) -> list[Hit]:
    found = []
    lines = hunk.lines
    for index, line in enumerate(lines):
        if line.kind is LineKind.CONTEXT:
            continue
        text = html.unescape(_TAG.sub("", line.html))
        at = _find(text, needle)
        if at < 0:
            continue
        added = line.kind is LineKind.ADDED
        number = line.new_no if added else line.old_no
        if number is None:
            continue
        anchor = line.new_no if added else _nearest_staged(lines, index)
        end = at + len(query)
        found.append(
            Hit(
                path=path,
                side="added" if added else "removed",
                line=number,
                anchor=anchor,
                before=_clip_left(text[:at]),
                match=text[at:end],
                after=text[end:][:SNIPPET_CHARS],
                url=link(path, anchor),
            )
        )
    return found


def _find(text: str, needle: str) -> int:
    """Where `needle` (lower case) starts in `text`, ignoring case; -1 if nowhere."""
    lowered = text.lower()
    if len(lowered) != len(text):  # a few characters change length in lower case (İ)
        return text.find(needle)
    return lowered.find(needle)


def _nearest_staged(lines: tuple[DiffLine, ...], index: int) -> int | None:
    """The staged line number after a removed line (or before it, at a hunk's end)."""
    for line in lines[index + 1 :]:
        if line.new_no is not None:
            return line.new_no
    for line in reversed(lines[:index]):
        if line.new_no is not None:
            return line.new_no
    return None


def _clip_left(text: str) -> str:
    return text if len(text) <= SNIPPET_CHARS else "…" + text[-SNIPPET_CHARS:]
