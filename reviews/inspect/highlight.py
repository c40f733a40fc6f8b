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
    "lexer_name",
    "plain_lines",
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


def _highlight(text: str, lexer: Any) -> list[str]:
    lines: list[str] = []
    current: list[str] = []  # finished fragments of the line being built
    run_css, run = "", ""  # adjacent tokens of one class are merged into one span
    consumed = 0

    def close_run() -> None:
        nonlocal run
        if run:
            marked = escape_and_mark(run, at_start=not lines and not current)
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
