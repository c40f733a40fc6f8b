"""Code written so that people cannot read it: encoded literals, escaped string tables,
obfuscator names, and readable files turned into one long line.

The parsed-file rules work from the pre-filter's anchors like the code rules; the shape rules
(`became_minified`, `minified_outside_build`) need only the archive index's line lengths and
the path.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterator

from reviews.inspect.rules import syntax
from reviews.inspect.rules.code import CodeFile
from reviews.inspect.rules.findings import Finding, Severity, make, rule
from reviews.inspect.rules.prefilter import Anchor, Kind
from reviews.inspect.rules.syntax import Node

__all__ = [
    "became_minified",
    "encoded_text_findings",
    "looks_minified",
    "minified_outside_build",
    "obfuscation_findings",
]

ENCODED = rule(
    "obfuscation.encoded-literal",
    Severity.MEDIUM,
    "A long base64 or hex literal with high entropy (high when over 1,000 characters; low for "
    "data: URIs).",
)
ESCAPED = rule(
    "obfuscation.escaped-strings",
    Severity.MEDIUM,
    "Strings written entirely in \\x escapes; high for an array of them (an obfuscator's string "
    "table).",
)
HEX_NAMES = rule(
    "obfuscation.hex-identifiers",
    Severity.HIGH,
    "Identifiers named like _0x1a2b, as javascript-obfuscator writes them.",
)
BECAME_MINIFIED = rule(
    "obfuscation.became-minified",
    Severity.HIGH,
    "A file that was readable in the baseline now has a very long line.",
)
MINIFIED_NEW = rule(
    "obfuscation.minified-outside-build",
    Severity.MEDIUM,
    "New minified code outside the usual build folders (dist, build, out, umd, esm, cjs, ...).",
)

LARGE_LITERAL = 1_000
MIN_HEX_NAMES = 5
MIN_ESCAPES = 8
"""Escapes (\\x or \\u) that make one string on its own look encoded."""
MIN_TABLE_ESCAPES = 3
MIN_TABLE_STRINGS = 3
"""An array of at least this many mostly-escaped strings is an obfuscator's string table."""
READABLE_LINE = 500
MINIFIED_LINE = 5_000
BUILD_FOLDERS = frozenset(
    {
        "dist",
        "build",
        "out",
        "umd",
        "bundle",
        "bundles",
        "_bundles",
        "min",
        "cjs",
        "esm",
        "es",
        "es5",
        "es6",
        "compiled",
        "vendor",
        "release",
        "browser",
        "static",
        "public",
        "assets",
    }
)
MINIFIED_NAMES = (".min.js", ".min.mjs", ".min.cjs", ".bundle.js", ".prod.js", ".production.js")
CODE_SUFFIXES = (".js", ".mjs", ".cjs", ".jsx", ".ts", ".mts", ".cts", ".tsx")
MAX_PER_FILE = 10


def obfuscation_findings(file: CodeFile) -> list[Finding]:
    findings = list(_hex_identifiers(file))
    findings += _limit(_escaped_strings(file))
    findings += _limit(_encoded_literals(file))
    return findings


def _limit(found: Iterator[Finding]) -> list[Finding]:
    kept = []
    for finding in found:
        kept.append(finding)
        if len(kept) >= MAX_PER_FILE:
            break
    return kept


def _hex_identifiers(file: CodeFile) -> Iterator[Finding]:
    names: Counter[str] = Counter()
    first: Node | None = None
    for anchor in file.anchors.of(Kind.HEX_IDENTIFIER):
        node = file.node(anchor)
        if node.type not in ("identifier", "property_identifier", "shorthand_property_identifier"):
            continue
        names[syntax.text(node, 40)] += 1
        if first is None:
            first = node
    if first is None or len(names) < MIN_HEX_NAMES:
        return
    digest = hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()[:16]
    yield file.finding(
        HEX_NAMES,
        f"{len(names):,} obfuscator-style identifiers (_0x…), used {sum(names.values()):,} times",
        first,
        key=f"hex-identifiers:{digest}",
    )


def _escaped_strings(file: CodeFile) -> Iterator[Finding]:
    seen: set[int] = set()
    for anchor in file.anchors.of(Kind.HEX_ESCAPE):
        node = file.node(anchor)
        string = node if node.type == "string" else syntax.enclosing(node, {"string"})
        if string is None or string.start_byte in seen:
            continue
        seen.add(string.start_byte)
        array = string.parent if string.parent and string.parent.type == "array" else None
        if array is not None and array.start_byte not in seen:
            seen.add(array.start_byte)
            escaped = [c for c in array.named_children if _mostly_escaped(c, MIN_TABLE_ESCAPES)]
            if len(escaped) >= MIN_TABLE_STRINGS:
                preview = ", ".join(
                    repr((syntax.string_value(child) or "")[:20]) for child in escaped[:4]
                )
                yield file.finding(
                    ESCAPED,
                    f"An array of {len(escaped):,} \\x-escaped strings ({preview}…)",
                    array,
                    severity=Severity.HIGH,
                    key=syntax.text(array, 300),
                )
                continue
        if not _mostly_escaped(string, MIN_ESCAPES):
            continue
        value = syntax.string_value(string) or ""
        yield file.finding(ESCAPED, f"A \\x-escaped string: {value[:40]!r}", string)


def _mostly_escaped(node: Node, minimum: int) -> bool:
    if node.type != "string":
        return False
    escapes = sum(
        1
        for child in node.named_children
        if child.type == "escape_sequence" and syntax.text(child, 4).startswith(("\\x", "\\u"))
    )
    if escapes < minimum:
        return False
    plain = sum(
        child.end_byte - child.start_byte
        for child in node.named_children
        if child.type == "string_fragment"
    )
    return plain <= escapes


def _encoded_literals(file: CodeFile) -> Iterator[Finding]:
    seen: set[int] = set()
    for anchor in file.anchors.of(Kind.ENCODED):
        node = file.node(anchor)
        if syntax.in_comment(node):
            continue
        string = syntax.enclosing_string(node)
        if string is None or string.start_byte in seen:
            continue
        seen.add(string.start_byte)
        finding = encoded_finding(file.data, anchor, file.path, string.start_byte)
        if finding is not None:
            yield finding


def encoded_finding(
    data: bytes, anchor: Anchor, path: str, at: int | None = None
) -> Finding | None:
    """A finding for the encoded run at `anchor`, if it is long and random enough."""
    run = data[anchor.start : anchor.end]
    kind = _encoding(run)
    if kind is None:
        return None
    where = syntax.place(data, at if at is not None else anchor.start)
    data_uri = data[max(0, anchor.start - 40) : anchor.start].rfind(b"data:") >= 0
    severity = Severity.HIGH if len(run) >= LARGE_LITERAL else Severity.MEDIUM
    if data_uri:
        severity = Severity.LOW
    digest = hashlib.sha256(run).hexdigest()[:16]
    return make(
        ENCODED,
        f"A {len(run):,}-character {kind} literal"
        + (" (a data: URI)" if data_uri else " with high entropy"),
        path=path,
        line=where.line,
        column=where.column,
        excerpt=where.excerpt,
        key=f"{kind}:{digest}",
        severity=severity,
    )


def _encoding(run: bytes) -> str | None:
    """ "hex" or "base64" for a random-looking run, None for prose, repeats or identifiers."""
    entropy = _entropy(run)
    if all(c in b"0123456789abcdefABCDEF" for c in run[:512]):
        return "hex" if entropy >= 3.0 else None
    return "base64" if entropy >= 4.5 else None


def _entropy(data: bytes) -> float:
    sample = data[:4096]
    counts = Counter(sample)
    total = len(sample)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


def encoded_text_findings(data: bytes, anchors: list[Anchor], path: str) -> list[Finding]:
    """Encoded runs in a file that is not parsed (data files, unknown text)."""
    found = [f for a in anchors[: MAX_PER_FILE * 4] if (f := encoded_finding(data, a, path))]
    return found[:MAX_PER_FILE]


# -- Shapes, from the index -------------------------------------------------------------------


def looks_minified(longest_line: int | None, line_count: int | None, size: int) -> bool:
    if longest_line is None:
        return False
    if longest_line >= MINIFIED_LINE:
        return True
    return bool(line_count) and size >= 2_000 and size / max(line_count or 1, 1) > 300


def in_build_folder(path: str) -> bool:
    parts = path.lower().split("/")
    return any(part in BUILD_FOLDERS for part in parts[:-1]) or parts[-1].endswith(MINIFIED_NAMES)


def became_minified(
    path: str, data: bytes | None, old_longest: int | None, new_longest: int | None
) -> Finding | None:
    """A readable file (every line under 500 characters) that now has a 5,000-character one."""
    if old_longest is None or new_longest is None:
        return None
    if old_longest >= READABLE_LINE or new_longest < MINIFIED_LINE:
        return None
    line = _longest_line(data) if data is not None else None
    where = syntax.place(data, line[1]) if data is not None and line is not None else None
    return make(
        BECAME_MINIFIED,
        f"Was readable in the baseline (longest line {old_longest:,} characters); now has a "
        f"{new_longest:,}-character line",
        path=path,
        line=where.line if where else None,
        column=where.column if where else None,
        excerpt=where.excerpt if where else "",
        key=f"became-minified:{path}",
    )


def _longest_line(data: bytes) -> tuple[int, int] | None:
    """(length, start offset) of the longest line."""
    best = (-1, 0)
    start = 0
    while start <= len(data):
        end = data.find(b"\n", start)
        if end < 0:
            end = len(data)
        if end - start > best[0]:
            best = (end - start, start)
        start = end + 1
    return best if best[0] >= 0 else None


def minified_outside_build(
    path: str, longest_line: int | None, line_count: int | None, size: int
) -> Finding | None:
    if not path.lower().endswith(CODE_SUFFIXES) or in_build_folder(path):
        return None
    if not looks_minified(longest_line, line_count, size):
        return None
    return make(
        MINIFIED_NEW,
        f"New minified code outside a build folder (longest line {longest_line or 0:,} characters)",
        path=path,
        line=1,
        key=f"minified:{path}",
    )
