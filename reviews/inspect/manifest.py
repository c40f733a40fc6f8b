"""Parse a tarball's package.json: the one parser every room uses (integrity check, analysis).

A manifest is attacker-controlled. Python's `json` recurses once per nesting level, so a
manifest nested 100,000 arrays deep raises `RecursionError` from inside the parser, wherever it
is called. Its size and its nesting depth are therefore bounded *before* it is parsed, by a scan
that does not recurse. npm has no use for a manifest past these bounds; such a manifest is
refused as unreadable, with the reason in a sentence. Nothing here raises on bad input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_MANIFEST_BYTES",
    "MAX_MANIFEST_DEPTH",
    "Manifest",
    "ParsedManifest",
    "nests_deeper_than",
    "oversized_problem",
    "parse_manifest",
]

MAX_MANIFEST_BYTES = 1024 * 1024
"""Real manifests are a few kilobytes; the largest on the registry stay well under this."""
MAX_MANIFEST_DEPTH = 100
"""Real manifests nest a handful of levels (`exports` conditions, tool configs)."""

Manifest = Mapping[str, Any]

# A JSON string (its escapes skipped; an unterminated one runs to the end) or one bracket.
# Strings are matched so that brackets inside them are not counted.
_STRING_OR_BRACKET = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)
_OPENERS = frozenset("[{")
_CLOSERS = frozenset("]}")


@dataclass(frozen=True, slots=True)
class ParsedManifest:
    """A manifest as a mapping (empty when unreadable), and why it could not be read."""

    document: dict[str, Any] = field(default_factory=dict)
    problem: str = ""
    """A sentence naming the manifest (raw text from the tarball may follow: escape it)."""

    @property
    def readable(self) -> bool:
        return not self.problem


def parse_manifest(data: bytes | None, label: str = "package.json") -> ParsedManifest:
    """The manifest in `data`, as npm reads it (a leading BOM dropped, the last of duplicate keys
    wins), or the reason it cannot be read. `label` starts each sentence."""
    if data is None:
        return ParsedManifest(problem=f"{label} is missing.")
    if len(data) > MAX_MANIFEST_BYTES:
        return ParsedManifest(problem=oversized_problem(label, len(data)))
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return ParsedManifest(problem=f"{label} is not UTF-8.")
    if nests_deeper_than(text, MAX_MANIFEST_DEPTH):
        return ParsedManifest(
            problem=f"{label} nests too deeply to read (more than {MAX_MANIFEST_DEPTH} levels)."
        )
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError as error:  # JSONDecodeError, NaN/Infinity, over-long integers
        return ParsedManifest(problem=f"{label} is not valid JSON ({_cut(str(error), 200)}).")
    if not isinstance(value, dict):
        return ParsedManifest(problem=f"{label} is not a JSON object.")
    return ParsedManifest(value)


def oversized_problem(label: str, size: int) -> str:
    return f"{label} is {size:,} bytes, over the {MAX_MANIFEST_BYTES:,} read."


def nests_deeper_than(text: str, limit: int) -> bool:
    """Whether JSON `text` opens more than `limit` arrays or objects inside one another.

    A linear scan of the brackets outside strings; malformed text gives some answer and is
    refused by the parser afterwards.
    """
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        found = match.group()
        if found in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        elif found in _CLOSERS:
            depth -= 1
    return False


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}…"
