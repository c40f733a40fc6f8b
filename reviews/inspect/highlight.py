"""Syntax highlighting with Pygments, one escaped HTML fragment per line.

The whole text is lexed at once (so comments and strings spanning lines colour right) and the
tokens are cut at `\\n` only, so fragment *i* is line *i + 1* as git numbers it. Every piece of
text goes through `textcheck.escape_and_mark`: escaped, with bidi and invisible characters
shown as named markers. CSS classes are Pygments' short names (`k`, `nf`, `s2`, ...), so any
Pygments style sheet applies inside a `.highlight` container (`stylesheet()` gives one).

Pygments' own preprocessing (`get_tokens`) strips leading newlines and turns lone carriage
returns into newlines, which would shift line numbers; we call `get_tokens_unprocessed` on text
whose CRLF pairs alone were folded to LF.
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Iterable
from typing import Any

# Pygments ships no type information (pyproject.toml lets mypy import it untyped).
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

from reviews.inspect.textcheck import escape_and_mark

__all__ = [
    "PLAIN_LEXER",
    "highlight_lines",
    "highlight_some_lines",
    "lexer_name",
    "lexing_cost",
    "plain_lines",
    "plain_some_lines",
    "split_lines",
    "stylesheet",
]

PLAIN_LEXER = "text"
"""What `lexer_name` answers when no lexer fits the file name."""


def split_lines(text: str) -> list[str]:
    """Lines as git sees them: split on `\\n` only; no empty line after a final newline."""
    if not text:
        return []
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    return lines


def lexer_name(path: str) -> str:
    """The Pygments lexer alias chosen for a file name (`text` when none fits)."""
    return _lexer_alias(posixpath.basename(path))


def plain_lines(text: str) -> list[str]:
    """Escaped and marked lines, without highlighting."""
    lines = split_lines(text.replace("\r\n", "\n"))
    return [escape_and_mark(line, at_start=number == 0) for number, line in enumerate(lines)]


def highlight_lines(text: str, path: str) -> list[str]:
    """Highlighted, escaped and marked lines for a file called `path`.

    Falls back to `plain_lines` when no lexer fits or the lexer misbehaves; callers decide
    beforehand whether the text is small enough to be worth highlighting.
    """
    alias = lexer_name(path)
    if alias == PLAIN_LEXER:
        return plain_lines(text)
    folded = text.replace("\r\n", "\n")
    try:
        lines = _highlight(folded, _lexer(alias))
    except Exception:  # a lexer bug must not cost the reviewer the file
        return plain_lines(text)
    expected = len(split_lines(folded))
    return lines if len(lines) == expected else plain_lines(text)


WINDOW_MARGIN = 40
"""Lines lexed before (and after) the lines shown, at first; widened until the result is sure."""


def highlight_some_lines(text: str, path: str, wanted: Iterable[int]) -> dict[int, str]:
    """`highlight_lines(text, path)` for the `wanted` lines alone (numbered from 1), lexing
    only windows around them: what a diff shows is its hunks, not whole files.

    A window starts at a line that begins (after its indentation) with a name, a keyword or a
    closing bracket, where a statement starts in most languages (never a blank line, nor one
    starting with `*`, `/` or a quote, as comment and string lines do), some lines before the
    first line wanted, and ends some lines after the last. A comment or a string spanning
    lines could still hold such a line, so each window is checked against one four times as
    wide: when the wanted lines come out the same, the lexer's state had settled; otherwise
    both widen, until they would cost as much as the whole file, which is then lexed.
    """
    folded = text.replace("\r\n", "\n")
    lines = split_lines(folded)
    numbers = sorted({n for n in wanted if 1 <= n <= len(lines)})
    alias = lexer_name(path)
    if alias == PLAIN_LEXER:
        return _plain(lines, numbers)
    lexer = _lexer(alias)
    # ranges whose windows would overlap are lexed as one
    ranges = _ranges(numbers, 8 * WINDOW_MARGIN)
    shown: dict[int, str] = {}
    try:
        if _window_chars(lines, ranges) > sum(map(len, lines)) // 2:
            ranges = []  # the windows would cost about as much as the whole file
        for first, last in ranges:
            html = _settled_window(lines, first, last, lexer, folded.endswith("\n"))
            if html is None:  # the windows would cover most of the file: lex it once, whole
                whole = highlight_lines(text, path)
                return {n: whole[n - 1] for n in numbers}
            shown.update((n, html[n]) for n in numbers if first <= n <= last)
        if not ranges and numbers:
            whole = highlight_lines(text, path)
            return {n: whole[n - 1] for n in numbers}
    except Exception:  # a lexer bug must not cost the reviewer the file
        return _plain(lines, numbers)
    return shown


def plain_some_lines(text: str, wanted: Iterable[int]) -> dict[int, str]:
    """`plain_lines(text)` for the `wanted` lines alone (numbered from 1)."""
    lines = split_lines(text.replace("\r\n", "\n"))
    return _plain(lines, sorted({n for n in wanted if 1 <= n <= len(lines)}))


def _plain(lines: list[str], numbers: Iterable[int]) -> dict[int, str]:
    return {n: escape_and_mark(lines[n - 1], at_start=n == 1) for n in numbers}


def lexing_cost(text: str, wanted: Iterable[int]) -> int:
    """About how many characters `highlight_some_lines` lexes for these lines (the first
    windows; the whole text when they would cover half of it)."""
    lines = split_lines(text)
    numbers = sorted({n for n in wanted if 1 <= n <= len(lines)})
    if not numbers:
        return 0
    chars = _window_chars(lines, _ranges(numbers, 8 * WINDOW_MARGIN))
    return len(text) if chars > len(text) // 2 else chars


def _window_chars(lines: list[str], ranges: list[tuple[int, int]]) -> int:
    """What lexing the first (near and wide) windows of these ranges costs, in characters."""
    chars = 0
    for first, last in ranges:
        start = max(1, first - 5 * WINDOW_MARGIN)
        chars += sum(map(len, lines[start - 1 : last + 5 * WINDOW_MARGIN]))
    return chars


def _ranges(numbers: list[int], join: int) -> list[tuple[int, int]]:
    """Sorted line numbers as (first, last) ranges, joining those less than `join` apart."""
    ranges: list[tuple[int, int]] = []
    for n in numbers:
        if ranges and n - ranges[-1][1] < join:
            ranges[-1] = (ranges[-1][0], n)
        else:
            ranges.append((n, n))
    return ranges


def _settled_window(
    lines: list[str], first: int, last: int, lexer: Any, final_newline: bool
) -> dict[int, str] | None:
    """The lines `first`..`last` from windows that agree, or None when the windows needed
    would cost about as much as the whole file."""
    margin = WINDOW_MARGIN
    total = len(lines)
    # lexing both windows costs their lengths; past half the file, the whole file is cheaper
    budget = sum(map(len, lines)) // 2

    def window(start: int, end: int) -> dict[int, str]:
        return _window(lines, start, end, lexer, final_newline or end < total)

    while True:
        wide_start = _safe_start(lines, first - 4 * margin)
        wide_end = _safe_end(lines, last + 4 * margin)
        if sum(map(len, lines[wide_start - 1 : wide_end])) > budget:
            return None
        near = window(_safe_start(lines, first - margin), _safe_end(lines, last + margin))
        wide = window(wide_start, wide_end)
        if all(near.get(n) == wide.get(n) for n in range(first, last + 1)):
            return near
        margin *= 4


def _window(
    lines: list[str], start: int, end: int, lexer: Any, newline_at_end: bool
) -> dict[int, str]:
    """Lines `start`..`end` (from 1) lexed on their own, by line number."""
    text = "\n".join(lines[start - 1 : end]) + ("\n" if newline_at_end else "")
    html = _highlight(text, lexer, at_file_start=start == 1)
    if len(html) != end - start + 1:
        raise ValueError("the lexer's lines do not match the text's")
    return dict(enumerate(html, start))


_RESUMES = re.compile(r"[ \t]*[A-Za-z_$}\])#@]")


def _safe_start(lines: list[str], before: int) -> int:
    """A line at or before `before` where lexing can start: outside any block comment, triple-
    quoted or template string left open above it, on a line where a statement plausibly starts
    (`_RESUMES`)."""
    start = min(before, len(lines))
    while start > 1:
        opened = _open_construct_line(lines, start)
        candidate = next(
            (n for n in range(min(start, opened), 1, -1) if _RESUMES.match(lines[n - 1])), 1
        )
        if candidate == start or candidate == 1 or opened >= start:
            return candidate
        start = candidate
    return 1


# Constructs that span lines in the languages we meet most (JavaScript and TypeScript, CSS,
# HTML, Python, Markdown): an opener without its closer above a line means the line may sit
# inside one. Counted on the raw text, so one inside a string or comment may send the start
# further back than needed: slower, never wrong.
_PAIRED = (("/*", "*/"), ("<!--", "-->"))
_SYMMETRIC = ("`", '"""', "'''")


def _safe_end(lines: list[str], after: int) -> int:
    """A line at or after `after` where lexing can stop: past the closers of the constructs
    left open by the lines up to `after` (a lexer may read a comment as one token, whole)."""
    if after >= len(lines):
        return len(lines)
    prefix = "\n".join(lines[:after])
    rest = "\n".join(lines[after:])
    end = 0  # in `rest`
    for opener, closer in _PAIRED:
        if prefix.rfind(opener) > prefix.rfind(closer):
            found = rest.find(closer)
            end = max(end, found + len(closer) if found >= 0 else len(rest))
    for delimiter in _SYMMETRIC:
        if prefix.count(delimiter) % 2:
            found = rest.find(delimiter)
            end = max(end, found + len(delimiter) if found >= 0 else len(rest))
    return after + rest.count("\n", 0, end) + (1 if end else 0)


def _open_construct_line(lines: list[str], before: int) -> int:
    """The line of the earliest construct left open above line `before`, else `before`."""
    prefix = "\n".join(lines[: before - 1])
    earliest = len(prefix)
    for opener, closer in _PAIRED:
        opened = prefix.rfind(opener)
        if opened > prefix.rfind(closer):
            earliest = min(earliest, opened)
    for delimiter in _SYMMETRIC:
        if prefix.count(delimiter) % 2:
            earliest = min(earliest, prefix.rfind(delimiter))
    if earliest == len(prefix):
        return before
    return prefix.count("\n", 0, earliest) + 1


def stylesheet(style: str = "default", container: str = ".highlight") -> str:
    """CSS for the token classes, scoped to `container`."""
    return str(HtmlFormatter(style=style).get_style_defs(container))


@functools.lru_cache(maxsize=2048)
def _lexer_alias(basename: str) -> str:
    try:
        lexer = get_lexer_for_filename(basename)
    except ClassNotFound:
        return PLAIN_LEXER
    aliases = getattr(lexer, "aliases", None) or [PLAIN_LEXER]
    return str(aliases[0])


@functools.lru_cache(maxsize=128)
def _lexer(alias: str) -> Any:
    return get_lexer_by_name(alias, stripnl=False, stripall=False, ensurenl=False)


def _highlight(text: str, lexer: Any, *, at_file_start: bool = True) -> list[str]:
    lines: list[str] = []
    current: list[str] = []  # finished fragments of the line being built
    run_css, run = "", ""  # adjacent tokens of one class are merged into one span
    consumed = 0

    def close_run() -> None:
        nonlocal run
        if run:
            marked = escape_and_mark(run, at_start=at_file_start and not lines and not current)
            current.append(f'<span class="{run_css}">{marked}</span>' if run_css else marked)
            run = ""

    for _, token_type, value in lexer.get_tokens_unprocessed(text):
        if not value:
            continue
        consumed += len(value)
        css = _css_class(token_type)
        if css != run_css:
            close_run()
            run_css = css
        pieces = value.split("\n")
        for index, piece in enumerate(pieces):
            if index:
                close_run()
                lines.append("".join(current))
                current = []
            run += piece
    close_run()
    if consumed != len(text):
        raise ValueError("the lexer's tokens do not cover the text")
    if current or (text and not text.endswith("\n")):
        lines.append("".join(current))
    return lines


@functools.lru_cache(maxsize=512)
def _css_class(token_type: Any) -> str:
    while token_type not in STANDARD_TYPES:
        token_type = token_type.parent
    return str(STANDARD_TYPES[token_type])
