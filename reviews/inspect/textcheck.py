"""Find characters that change how text reads without being seen (trojan source).

Bidirectional controls reorder what a reviewer sees against what the compiler reads; zero-width
and other invisible characters hide identifiers or smuggle data (variation selectors and tag
characters can encode whole payloads). This module finds them with their line and column, and
renders text as escaped HTML in which each of them is a visible, named marker.

Lines are split on `\\n` only, as git does, so line numbers match the diff.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "CharCategory",
    "SuspiciousChar",
    "category_of",
    "escape_and_mark",
    "find_suspicious",
]


class CharCategory(StrEnum):
    BIDI = "bidi"
    """Reorders text: the trojan-source attack itself."""
    INVISIBLE = "invisible"
    """Zero-width, filler or selector characters: hide or smuggle content."""
    CONTROL = "control"
    """C0/C1 control characters other than tab and newline (and a carriage return not
    followed by a newline): terminal escapes, form feeds."""
    BOM = "bom"
    """U+FEFF as the very first character: a byte-order mark, usually harmless."""

    @property
    def is_trojan(self) -> bool:
        return self in (CharCategory.BIDI, CharCategory.INVISIBLE)


_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
# U+FE0E/U+FE0F (text/emoji presentation) are left out: every emoji in a README carries one.
_INVISIBLE = (
    "\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200d\u2028\u2029\u2060-\u2064"
    "\u3164\ufe00-\ufe0d\ufeff\uffa0\U000e0000-\U000e007f\U000e0100-\U000e01ef"
)
_CONTROL = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_PATTERN = re.compile(f"[{_BIDI}{_INVISIBLE}{_CONTROL}]|\r(?!\n)")
_BIDI_SET = frozenset(chr(c) for c in (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F)))
_BIDI_SET |= frozenset(chr(c) for c in range(0x2066, 0x206A))
_CONTROL_NAMES = {
    "\x00": "NULL",
    "\x07": "BELL",
    "\x08": "BACKSPACE",
    "\x0b": "LINE TABULATION",
    "\x0c": "FORM FEED",
    "\r": "CARRIAGE RETURN",
    "\x1b": "ESCAPE",
    "\x7f": "DELETE",
}


@dataclass(frozen=True, slots=True)
class SuspiciousChar:
    line: int
    """1-based, counting `\\n` only."""
    column: int
    """1-based, in code points."""
    codepoint: int
    category: CharCategory

    @property
    def name(self) -> str:
        return _name(chr(self.codepoint))

    @property
    def label(self) -> str:
        """E.g. `U+202E RIGHT-TO-LEFT OVERRIDE`."""
        return f"U+{self.codepoint:04X} {self.name}"


def category_of(char: str, *, at_start: bool = False) -> CharCategory | None:
    """The category of one character, or None when it is an ordinary one."""
    if not _PATTERN.fullmatch(char):
        return None
    if char in _BIDI_SET:
        return CharCategory.BIDI
    if char == "\ufeff" and at_start:
        return CharCategory.BOM
    if char == "\r" or ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F:
        return CharCategory.CONTROL
    return CharCategory.INVISIBLE


def find_suspicious(text: str, *, limit: int = 1000) -> list[SuspiciousChar]:
    """Every suspicious character in `text`, in order, at most `limit` of them."""
    found: list[SuspiciousChar] = []
    line, line_start, scanned = 1, 0, 0
    for match in _PATTERN.finditer(text):
        if len(found) >= limit:
            break
        position = match.start()
        newlines = text.count("\n", scanned, position)
        if newlines:
            line += newlines
            line_start = text.rfind("\n", scanned, position) + 1
        scanned = position
        char = match.group()
        category = category_of(char, at_start=position == 0)
        assert category is not None
        found.append(SuspiciousChar(line, position - line_start + 1, ord(char), category))
    return found


def escape_and_mark(text: str, *, at_start: bool = False) -> str:
    """HTML-escape `text`, replacing each suspicious character by a visible named marker.

    The marker never contains the character itself, so a bidi override cannot act on the page.
    `at_start` says that `text` begins the file (a leading U+FEFF is then a BOM).
    """
    if not _PATTERN.search(text):
        return html.escape(text)
    pieces: list[str] = []
    last = 0
    for match in _PATTERN.finditer(text):
        pieces.append(html.escape(text[last : match.start()]))
        char = match.group()
        category = category_of(char, at_start=at_start and match.start() == 0)
        pieces.append(_marker(char, category or CharCategory.INVISIBLE))
        last = match.end()
    pieces.append(html.escape(text[last:]))
    return "".join(pieces)


def _marker(char: str, category: CharCategory) -> str:
    label = f"U+{ord(char):04X} {_name(char)}"
    return (
        f'<span class="gr-char gr-char-{category}" title="{html.escape(label)}">'
        f"[U+{ord(char):04X}]</span>"
    )


def _name(char: str) -> str:
    if char in _CONTROL_NAMES:
        return _CONTROL_NAMES[char]
    return unicodedata.name(char, "CONTROL CHARACTER" if ord(char) < 0xA0 else "UNNAMED CHARACTER")
