"""Text from a tarball, made storable in any database the portal runs on.

PostgreSQL refuses a NUL character in `text` columns and in `jsonb` (keys and values alike), and
no driver can encode a lone UTF-16 surrogate (which `json.loads` gives for `"\\ud800"`). A
package.json may hold either. Rather than refuse the row, and lose the review with it, such
characters are replaced by visible ones: NUL by `␀` (U+2400 SYMBOL FOR NULL), a lone surrogate
by `�` (U+FFFD). Everything else is kept as it is.
"""

from __future__ import annotations

import re
from typing import TypeVar, cast

__all__ = ["NUL_MARKER", "SURROGATE_MARKER", "storable", "storable_text"]

NUL_MARKER = "\u2400"
SURROGATE_MARKER = "\ufffd"

T = TypeVar("T")

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(text: str) -> str:
    """`text` with NUL and lone surrogates replaced by visible markers."""
    if text.isascii() and "\x00" not in text:
        return text
    return _UNSTORABLE.sub(_marker, text)


def storable(value: T) -> T:
    """`value` with every string in it made storable: dict keys and values, list and tuple
    items, recursively (JSON nests only as deep as it was built, from bounded input)."""
    if isinstance(value, str):
        return cast(T, storable_text(value))
    if isinstance(value, dict):
        return cast(T, {storable(key): storable(item) for key, item in value.items()})
    if isinstance(value, list):
        return cast(T, [storable(item) for item in value])
    if isinstance(value, tuple):
        return cast(T, tuple(storable(item) for item in value))
    return value


def _marker(match: re.Match[str]) -> str:
    return NUL_MARKER if match.group() == "\x00" else SURROGATE_MARKER
