"""JavaScript and TypeScript parsed with tree-sitter, and the few questions rules ask of a node.

tree-sitter parses every module flavour (CommonJS, ESM, JSX; TypeScript and TSX with their own
grammars) and minified code, tolerates errors, and gives exact positions: a rule can tell a
call from the same word in a comment or a string, and point at its line. Rows count `\\n` only,
as the diff does. Nothing here recurses over the tree: a hostile file can nest deeply.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import NamedTuple

import pygit2
import tree_sitter
import tree_sitter_javascript
import tree_sitter_typescript

__all__ = [
    "Node",
    "Place",
    "ancestors",
    "call_name",
    "enclosing",
    "language_for",
    "parse",
    "parse_tree",
    "place",
    "reparse",
    "string_value",
]

Node = tree_sitter.Node

_JAVASCRIPT = tree_sitter.Language(tree_sitter_javascript.language())
_TYPESCRIPT = tree_sitter.Language(tree_sitter_typescript.language_typescript())
_TSX = tree_sitter.Language(tree_sitter_typescript.language_tsx())
_BY_EXTENSION = {
    ".js": _JAVASCRIPT,
    ".mjs": _JAVASCRIPT,
    ".cjs": _JAVASCRIPT,
    ".jsx": _JAVASCRIPT,
    ".ts": _TYPESCRIPT,
    ".mts": _TYPESCRIPT,
    ".cts": _TYPESCRIPT,
    ".tsx": _TSX,
}
_NODE_SHEBANGS = (b"#!/usr/bin/env node", b"#!/usr/bin/node", b"#!/usr/local/bin/node")
_COMMENTS = frozenset({"comment", "html_comment", "hash_bang_line"})
_STRINGS = frozenset({"string", "template_string"})
MAX_ANCESTORS = 64
"""How far up a rule looks for context: far enough for any real expression."""

_local = threading.local()


def language_for(path: str, data: bytes) -> tree_sitter.Language | None:
    """The grammar for a file, by extension (`.d.ts` declarations have no code to run), or a
    node shebang for bin scripts without one; None for anything else."""
    name = path.rsplit("/", 1)[-1].lower()
    if name.endswith((".d.ts", ".d.mts", ".d.cts")):
        return None
    dot = name.rfind(".")
    if dot > 0:
        return _BY_EXTENSION.get(name[dot:])
    if data.startswith(_NODE_SHEBANGS):
        return _JAVASCRIPT
    return None


def parse(language: tree_sitter.Language, data: bytes) -> Node:
    """The root node of `data`."""
    return parse_tree(language, data).root_node


def parse_tree(
    language: tree_sitter.Language, data: bytes, previous: tree_sitter.Tree | None = None
) -> tree_sitter.Tree:
    """The syntax tree of `data` (one parser per thread and grammar, reused); with `previous`
    (a tree already edited to match `data`, see `reparse`), only what changed is parsed."""
    parsers: dict[int, tree_sitter.Parser] = getattr(_local, "parsers", None) or {}
    _local.parsers = parsers
    parser = parsers.get(id(language))
    if parser is None:
        parser = parsers[id(language)] = tree_sitter.Parser(language)
    if previous is None:
        return parser.parse(data)
    return parser.parse(data, previous)


def reparse(
    language: tree_sitter.Language, tree: tree_sitter.Tree, data: bytes, other: bytes
) -> tree_sitter.Tree:
    """The tree of `other` from `tree` (the tree of `data`), by tree-sitter's incremental
    parsing: `tree` is edited with the changed lines (libgit2's hunks) and only they are
    parsed again. The result is the tree a fresh parse gives (but for where tree-sitter's
    automatic-semicolon scanner puts a trailing comment, seen once in next's bundles); `tree`
    is spent."""
    patch = pygit2.Patch.create_from(data, other, context_lines=0, flag=_FORCE_TEXT)
    if _mostly_rewritten(patch, data):
        return parse_tree(language, other)
    edits = [
        _narrowed(data, start, end, other[new_start:new_end])
        for start, end, new_start, new_end in _hunk_spans(patch)
    ]
    if 2 * sum(end - start for start, end, _replacement in edits) > len(data):
        # most of it changed (a minifier renamed every identifier): reusing the old tree's
        # pieces costs more than it saves (lodash.min.js: 32 ms against 28 for a fresh parse)
        return parse_tree(language, other)
    points = _points(data, [offset for start, end, _new in edits for offset in (start, end)])
    for start, end, replacement in sorted(edits, key=lambda edit: edit[0], reverse=True):
        tree.edit(
            start_byte=start,
            old_end_byte=end,
            new_end_byte=start + len(replacement),
            start_point=points[start],
            old_end_point=points[end],
            new_end_point=_extend(points[start], replacement),
        )
    return parse_tree(language, other, tree)


MANY_CHANGED_LINES = 2_000
"""Past this many changed lines, most of a file's lines changed is decided from libgit2's hunk
headers, before any of the lines (a Python object each) is looked at."""


def _mostly_rewritten(patch: pygit2.Patch, data: bytes) -> bool:
    """Whether most of `data`'s many lines changed: parsed afresh without looking at each
    changed line (one-line minified files are left to `_narrowed`, which sees inside lines)."""
    removed = sum(hunk.old_lines for hunk in patch.hunks)
    return removed > MANY_CHANGED_LINES and 2 * removed > data.count(b"\n") + 1


def _hunk_spans(patch: pygit2.Patch) -> Iterator[tuple[int, int, int, int]]:
    """Each hunk's bytes on both sides: (start, end) in the old text, (start, end) in the new,
    from libgit2's own line offsets. A side with no lines is the empty span where the other's
    lines go: between hunks the two texts are the same bytes, shifted."""
    shift = 0  # new offset minus old offset in the stretch before the hunk
    for hunk in patch.hunks:
        old: tuple[int, int] | None = None
        new: tuple[int, int] | None = None
        for line in hunk.lines:
            if line.origin == "-":
                old = _widened(old, line)
            elif line.origin == "+":
                new = _widened(new, line)
        if old is None and new is None:
            continue
        if old is None:
            assert new is not None
            old = (new[0] - shift, new[0] - shift)
        if new is None:
            new = (old[0] + shift, old[0] + shift)
        yield old[0], old[1], new[0], new[1]
        shift = new[1] - old[1]


def _widened(span: tuple[int, int] | None, line: pygit2.DiffLine) -> tuple[int, int]:
    end = line.content_offset + len(line.raw_content)
    return (line.content_offset if span is None else span[0], end)


def _points(data: bytes, offsets: list[int]) -> dict[int, tuple[int, int]]:
    """(row, column in bytes) of each offset, in one pass over `data` up to the last."""
    points: dict[int, tuple[int, int]] = {}
    row = counted = 0
    for offset in sorted(set(offsets)):
        row += data.count(b"\n", counted, offset)
        counted = offset
        points[offset] = (row, offset - data.rfind(b"\n", 0, offset) - 1)
    return points


_FORCE_TEXT = pygit2.enums.DiffOption.FORCE_TEXT


def _narrowed(data: bytes, start: int, end: int, replacement: bytes) -> tuple[int, int, bytes]:
    """A hunk's edit without the bytes its two sides share at either end. A minified file is
    one long line: a one-character change makes a hunk of the whole file, and tree-sitter would
    parse all of it again (lodash.min.js: 36 ms where the narrowed edit takes 2)."""
    replaced = data[start:end]
    same_start = _common_prefix(replaced, replacement)
    rest = min(len(replaced), len(replacement)) - same_start
    same_end = _common_suffix(replaced, replacement, rest)
    return start + same_start, end - same_end, replacement[same_start : len(replacement) - same_end]


def _common_prefix(one: bytes, other: bytes) -> int:
    """How many bytes the two start with in common, by halving (a slice compare per step)."""
    low, high = 0, min(len(one), len(other))
    while low < high:
        middle = (low + high + 1) // 2
        if one[low:middle] == other[low:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _common_suffix(one: bytes, other: bytes, most: int) -> int:
    """How many bytes (at most `most`) the two end with in common."""
    low, high = 0, most
    while low < high:
        middle = (low + high + 1) // 2
        if one[len(one) - middle : len(one) - low] == other[len(other) - middle : len(other) - low]:
            low = middle
        else:
            high = middle - 1
    return low


def _extend(start: tuple[int, int], text: bytes) -> tuple[int, int]:
    newlines = text.count(b"\n")
    if not newlines:
        return start[0], start[1] + len(text)
    return start[0] + newlines, len(text) - text.rfind(b"\n") - 1


class Place(NamedTuple):
    line: int
    """1-based."""
    column: int
    """1-based, in code points."""
    excerpt: str
    """The line around the column, cut to a readable window."""


EXCERPT_WINDOW = 150


def place(data: bytes, byte_offset: int) -> Place:
    """Line, column and an excerpt for a byte offset (cheap: only that line is decoded)."""
    line_start = data.rfind(b"\n", 0, byte_offset) + 1
    line_end = data.find(b"\n", byte_offset)
    if line_end < 0:
        line_end = len(data)
    line = data.count(b"\n", 0, line_start) + 1
    column = len(data[line_start:byte_offset].decode("utf-8", "replace")) + 1
    start = max(line_start, byte_offset - EXCERPT_WINDOW // 3)
    end = min(line_end, start + EXCERPT_WINDOW)
    text = data[start:end].decode("utf-8", "replace").strip()
    if start > line_start:
        text = "…" + text
    if end < line_end:
        text += "…"
    return Place(line, column, text)


def ancestors(node: Node, limit: int = MAX_ANCESTORS) -> Iterator[Node]:
    current = node.parent
    steps = 0
    while current is not None and steps < limit:
        yield current
        current = current.parent
        steps += 1


def in_comment(node: Node) -> bool:
    return node.type in _COMMENTS


def enclosing(node: Node, types: frozenset[str] | set[str]) -> Node | None:
    """`node` itself or its nearest ancestor of one of `types`."""
    if node.type in types:
        return node
    for parent in ancestors(node):
        if parent.type in types:
            return parent
    return None


def enclosing_string(node: Node) -> Node | None:
    return enclosing(node, _STRINGS)


def is_string(node: Node) -> bool:
    return node.type in _STRINGS


def text(node: Node, limit: int = 400) -> str:
    raw = node.text or b""
    return raw[:limit].decode("utf-8", "replace")


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "b": "\b", "f": "\f", "v": "\v"}


def string_value(node: Node, limit: int = 100_000) -> str | None:
    """The value of a string literal (or a template without substitutions), escapes decoded;
    None when it is not a constant string."""
    if node.type not in _STRINGS:
        return None
    parts: list[str] = []
    size = 0
    for child in node.named_children:
        if child.type == "string_fragment":
            parts.append(text(child, limit))
        elif child.type == "escape_sequence":
            parts.append(_unescape(text(child, 16)))
        elif child.type == "template_substitution":
            return None
        size += child.end_byte - child.start_byte
        if size > limit:
            break
    return "".join(parts)


def _unescape(escape: str) -> str:
    body = escape[1:]
    if not body:
        return ""
    if body[0] in "xu":
        digits = body[1:].strip("{}")
        try:
            return chr(int(digits, 16))
        except (ValueError, OverflowError):
            return escape
    return _ESCAPES.get(body[0], body[0])


def call_name(call: Node) -> tuple[str, str]:
    """(object, name) of a call's callee: `("cp", "exec")`, `("", "eval")`, `("", "")` when it
    is computed. A `require('x').exec(...)` object reads as `require('x')`."""
    callee = call.child_by_field_name("function") or call.child_by_field_name("constructor")
    if callee is None:
        return "", ""
    return member_parts(callee)


def member_parts(node: Node) -> tuple[str, str]:
    """(object text, property) of `a.b` or `a["b"]`; ("", name) of an identifier."""
    if node.type == "parenthesized_expression" and node.named_child_count == 1:
        inner = node.named_children[0]
        if inner.type == "sequence_expression" and inner.named_children:  # (0, eval)
            inner = inner.named_children[-1]
        node = inner
    if node.type == "identifier":
        return "", text(node, 200)
    if node.type == "member_expression":
        obj = node.child_by_field_name("object")
        prop = node.child_by_field_name("property")
        return (text(obj, 200) if obj else ""), (text(prop, 200) if prop else "")
    if node.type == "subscript_expression":
        obj = node.child_by_field_name("object")
        index = node.child_by_field_name("index")
        value = string_value(index) if index is not None else None
        return (text(obj, 200) if obj else ""), (value or "")
    return "", ""


def arguments_of(call: Node) -> list[Node]:
    args = call.child_by_field_name("arguments")
    if args is None:
        return []
    return [child for child in args.named_children if child.type != "comment"]


def call_with_argument(node: Node) -> Node | None:
    """The call (or `new`) whose direct argument is `node` (a string literal, say)."""
    parent = node.parent
    if parent is None or parent.type != "arguments":
        return None
    call = parent.parent
    if call is not None and call.type in ("call_expression", "new_expression"):
        return call
    return None
