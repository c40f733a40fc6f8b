"""HTML fragments for a `FileDiff` or `FileView`: the last stage of the diff pipeline.

Everything that comes from a tarball is escaped here or was escaped upstream: file names,
notices and hunk sections with `escape_and_mark`, line contents by `review_highlight` (which marks
bidi and invisible characters). The fragments are tables with `gr-` classes, the token classes
of Pygments inside `.highlight`, and `data-` attributes on the rows of hidden unchanged lines
(`gr-gap`) that a view can turn into "expand" links calling `diffing.expand_context`.

A table is built once as a `Table`: its HTML with holes where a page adds its own parts (the
`LineHooks`: comment links in line numbers, threads under lines). A `Table` is plain strings and
one array of integers, so a page can cache it by what it depends on and `fill` it on each
request in one pass, without building a row again.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from itertools import chain
from typing import Protocol

from reviews.inspect.diffing import DiffKind, DiffLine, FileDiff, FileView, Gap, Hunk, SideInfo
from reviews.inspect.textcheck import escape_and_mark

__all__ = [
    "LineHooks",
    "Table",
    "fill",
    "fill_numbers",
    "render_context",
    "render_side_by_side",
    "render_unified",
    "render_view",
    "side_by_side_table",
    "unified_table",
    "view_table",
]

OLD, NEW = "old", "new"


Marks = Mapping[int, str]
"""Staged line number -> the risk findings on that line, in words (shown as a marker)."""


class LineHooks(Protocol):
    """What a page adds to a rendered file: the inside of each line-number cell (a link to
    comment on that line, say) and rows after a line (its comment threads). Both return HTML
    the caller built and escaped."""

    def number(self, side: str, number: int) -> str: ...

    def after(self, old_no: int | None, new_no: int | None, colspan: int) -> str: ...


def render_unified(
    diff: FileDiff,
    path: str,
    *,
    old_path: str | None = None,
    hooks: LineHooks | None = None,
    marks: Marks | None = None,
) -> str:
    """The unified diff: one table, old and new line numbers, then the line. Each staged line
    number is an anchor (`#L12`); lines in `marks` carry a finding marker."""
    return fill(unified_table(diff, path, old_path=old_path, marks=marks), hooks)


def render_side_by_side(
    diff: FileDiff,
    path: str,
    *,
    old_path: str | None = None,
    hooks: LineHooks | None = None,
    marks: Marks | None = None,
) -> str:
    """Baseline on the left, staged version on the right, changed lines paired."""
    return fill(side_by_side_table(diff, path, old_path=old_path, marks=marks), hooks)


def render_view(
    view: FileView,
    path: str,
    *,
    side: str = NEW,
    hooks: LineHooks | None = None,
    marks: Marks | None = None,
) -> str:
    """A whole file with line numbers (or the notice saying why it is not shown); `side` says
    which tarball the file was read from, for the hooks."""
    return fill(view_table(view, path, side=side, marks=marks), hooks)


def render_context(lines: Sequence[DiffLine], *, side_by_side: bool = False) -> str:
    """Table rows for lines revealed by `expand_context` (to swap in for a `gr-gap` row)."""
    if side_by_side:
        return "".join(
            f'<tr class="gr-row gr-equal">{_number(line.old_no)}{_code(line.html)}'
            f"{_number(line.new_no)}{_code(line.html)}</tr>"
            for line in lines
        )
    rows = _Builder()
    for line in lines:
        rows.text(f'<tr class="gr-line gr-{line.kind}">')
        rows.number(line.old_no, OLD)
        rows.number(line.new_no, NEW, anchor=True)
        rows.text(f"{_code(line.html)}</tr>")
    return fill(rows.table("", "", colspan=3))


# -- Tables with holes ----------------------------------------------------------------------------

_NUMBER_OLD, _NUMBER_NEW, _AFTER = 0, 1, 2
"""What fills a hole: the inside of an old or a new line-number cell, or the rows after a row."""
_SIDES = (OLD, NEW)


@dataclass(frozen=True, slots=True)
class Table:
    """A rendered file with holes where the hooks go. `texts` are the HTML around the holes
    (one more text than holes); `holes` holds three integers per hole: what fills it
    (`_NUMBER_OLD`, `_NUMBER_NEW`, `_AFTER`), then a line number and, for `_AFTER`, the new
    line number (the first is then the old one; 0 for none). Strings and one array: cheap to
    pickle and to load, where rows of objects cost microseconds each."""

    texts: tuple[str, ...]
    holes: array[int]
    colspan: int
    """Of the rows `LineHooks.after` adds."""


def fill(table: Table, hooks: LineHooks | None = None) -> str:
    """The table's HTML, its holes filled by `hooks` in document order (plain line numbers and
    nothing after rows without them)."""
    holes = iter(table.holes)
    triples = zip(holes, holes, holes, strict=True)
    if hooks is None:
        insides = ["" if kind == _AFTER else str(number) for kind, number, _ in triples]
    else:
        number, after, colspan = hooks.number, hooks.after, table.colspan
        insides = [
            after(first or None, second or None, colspan)
            if kind == _AFTER
            else number(_SIDES[kind], first)
            for kind, first, second in triples
        ]
    texts = table.texts  # one more than the holes: the last one follows them all
    return "".join(chain.from_iterable(zip(texts, insides, strict=False))) + texts[-1]


def fill_numbers(table: Table, number: Callable[[str, int], str]) -> Table:
    """`table` with its line-number holes filled by `number` and its holes after rows kept:
    what every page showing the file with the same links shares (a page caches it), the rows
    under lines (threads) being drawn fresh by `fill`."""
    texts: list[str] = []
    pending = [table.texts[0]]
    holes: array[int] = array("l")
    triples = iter(table.holes)
    for (kind, first, second), text in zip(
        zip(triples, triples, triples, strict=True), table.texts[1:], strict=True
    ):
        if kind == _AFTER:
            texts.append("".join(pending))
            pending = [text]
            holes.extend((kind, first, second))
        else:
            pending += (number(_SIDES[kind], first), text)
    texts.append("".join(pending))
    return Table(tuple(texts), holes, table.colspan)


class _Builder:
    """Collects a `Table`: text, line-number cells and the holes after rows, in order."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.pending: list[str] = []
        self.holes: array[int] = array("l")

    def text(self, html: str) -> None:
        self.pending.append(html)

    def number(self, number: int | None, side: str, *, anchor: bool = False) -> None:
        """A line-number cell; `anchor` makes it the target of `#L<number>` (staged lines)."""
        if number is None:
            self.pending.append('<td class="gr-ln"></td>')
            return
        anchor_attr = f' id="L{number}"' if anchor else ""
        self.pending.append(
            f'<td class="gr-ln"{anchor_attr} data-side="{side}" data-line="{number}">'
        )
        self._hole(_NUMBER_OLD if side == OLD else _NUMBER_NEW, number, 0)
        self.pending.append("</td>")

    def after(self, old_no: int | None, new_no: int | None) -> None:
        self._hole(_AFTER, old_no or 0, new_no or 0)

    def _hole(self, kind: int, first: int, second: int) -> None:
        self.texts.append("".join(self.pending))
        self.pending = []
        self.holes.extend((kind, first, second))

    def is_empty(self) -> bool:
        return not self.holes and not "".join(self.pending)

    def table(self, before: str, after: str, colspan: int) -> Table:
        """The table, `before` and `after` around what was collected."""
        texts = [*self.texts, "".join(self.pending)]
        texts[0] = before + texts[0]
        texts[-1] += after
        return Table(tuple(texts), self.holes, colspan)


def unified_table(
    diff: FileDiff, path: str, *, old_path: str | None = None, marks: Marks | None = None
) -> Table:
    """`render_unified`, with holes for the hooks."""
    body = _Builder()
    gaps = {gap.before_hunk: gap for gap in diff.gaps}
    for index, hunk in enumerate(diff.hunks):
        body.text(_gap_row(gaps.get(index), colspan=3))
        body.text(_hunk_header(hunk, colspan=3))
        for line in hunk.lines:
            body.text(f"<tr{_row_attrs(f'gr-line gr-{line.kind}', line.new_no, marks)}>")
            body.number(line.old_no, OLD)
            body.number(line.new_no, NEW, anchor=True)
            body.text(f"{_code(line.html)}</tr>")
            body.after(line.old_no, line.new_no)
    body.text(_gap_row(gaps.get(len(diff.hunks)), colspan=3))
    return _frame(diff, path, old_path, "unified", body, colspan=3)


def side_by_side_table(
    diff: FileDiff, path: str, *, old_path: str | None = None, marks: Marks | None = None
) -> Table:
    """`render_side_by_side`, with holes for the hooks."""
    body = _Builder()
    gaps = {gap.before_hunk: gap for gap in diff.gaps}
    for index, hunk in enumerate(diff.hunks):
        body.text(_gap_row(gaps.get(index), colspan=4))
        body.text(_hunk_header(hunk, colspan=4))
        for row in hunk.rows:
            body.text(f"<tr{_row_attrs(f'gr-row gr-{row.kind}', row.new_no, marks)}>")
            body.number(row.old_no, OLD)
            body.text(_code(row.old_html))
            body.number(row.new_no, NEW, anchor=True)
            body.text(f"{_code(row.new_html)}</tr>")
            body.after(row.old_no, row.new_no)
    body.text(_gap_row(gaps.get(len(diff.hunks)), colspan=4))
    return _frame(diff, path, old_path, "side-by-side", body, colspan=4)


def view_table(view: FileView, path: str, *, side: str = NEW, marks: Marks | None = None) -> Table:
    """`render_view`, with holes for the hooks."""
    if side not in _SIDES:
        raise ValueError(f"side must be {OLD!r} or {NEW!r}, not {side!r}")
    body = _Builder()
    for number, html in enumerate(view.lines, 1):
        body.text(f"<tr{_row_attrs('gr-line', number, marks)}>")
        body.number(number, side, anchor=side == NEW)
        body.text(f"{_code(html)}</tr>")
        body.after(number if side == OLD else None, number if side == NEW else None)
    head = "".join(
        [
            f'<div class="gr-file gr-kind-{view.kind}" data-lexer="{escape(view.lexer)}">',
            f'<div class="gr-file-header"><span class="gr-path">{escape_and_mark(path)}</span>'
            f"{_side_summary(view.side)}</div>",
            *_notices(view.notices),
        ]
    )
    if body.is_empty():
        return Table((head + "</div>",), array("l"), 2)
    return body.table(
        head + '<table class="gr-code-table highlight"><tbody>', "</tbody></table></div>", 2
    )


def _frame(
    diff: FileDiff, path: str, old_path: str | None, layout: str, body: _Builder, colspan: int
) -> Table:
    name = escape_and_mark(path)
    if old_path and old_path != path:
        name = f"{escape_and_mark(old_path)} → {name}"
    stats = ""
    if diff.lines_added is not None and diff.lines_removed is not None:
        stats = (
            f'<span class="gr-stats"><span class="gr-added">+{diff.lines_added:,}</span> '
            f'<span class="gr-removed">&minus;{diff.lines_removed:,}</span></span>'
        )
    parts = [
        f'<div class="gr-diff gr-{layout} gr-kind-{diff.kind}" data-lexer="{escape(diff.lexer)}">',
        f'<div class="gr-file-header"><span class="gr-path">{name}</span>{stats}</div>',
        *_notices(diff.notices),
    ]
    if diff.kind in (DiffKind.BINARY, DiffKind.TOO_LARGE, DiffKind.MINIFIED):
        parts.append(_sides_table(diff.old, diff.new))
    head = "".join(parts)
    if body.is_empty():
        return Table((head + "</div>",), array("l"), colspan)
    return body.table(
        head + '<table class="gr-diff-table highlight"><tbody>', "</tbody></table></div>", colspan
    )


def _hunk_header(hunk: Hunk, colspan: int) -> str:
    # the section is a line of the file (git's function context): marked like the lines
    header = escape_and_mark(hunk.header)
    return f'<tr class="gr-hunk-header"><td colspan="{colspan}">{header}</td></tr>'


def _gap_row(gap: Gap | None, colspan: int) -> str:
    if gap is None or gap.count <= 0:
        return ""
    noun = "line" if gap.count == 1 else "lines"
    return (
        f'<tr class="gr-gap" data-gap="{gap.before_hunk}" data-old-start="{gap.old_start}" '
        f'data-new-start="{gap.new_start}" data-count="{gap.count}">'
        f'<td colspan="{colspan}">{gap.count:,} unchanged {noun}</td></tr>'
    )


def _row_attrs(classes: str, new_no: int | None, marks: Marks | None) -> str:
    mark = marks.get(new_no) if marks and new_no is not None else None
    if mark is None:
        return f' class="{classes}"'
    return f' class="{classes} gr-finding" title="{escape(mark)}" data-finding="{escape(mark)}"'


def _number(number: int | None) -> str:
    """A line-number cell of revealed context (no side, no hooks)."""
    if number is None:
        return '<td class="gr-ln"></td>'
    return f'<td class="gr-ln" data-line="{number}">{number}</td>'


def _code(html: str | None) -> str:
    if html is None:
        return '<td class="gr-code gr-empty"></td>'
    return f'<td class="gr-code">{html}</td>'


def _notices(notices: Iterable[str]) -> list[str]:
    return [f'<p class="gr-notice">{escape_and_mark(notice)}</p>' for notice in notices]


def _side_summary(side: SideInfo) -> str:
    lines = f", {side.line_count:,} lines" if side.line_count is not None else ""
    return f'<span class="gr-size">{side.size:,} bytes{lines}</span>'


def _sides_table(old: SideInfo | None, new: SideInfo | None) -> str:
    rows = []
    for label, side in (("baseline", old), ("staged", new)):
        if side is None:
            continue
        lines = f"{side.line_count:,}" if side.line_count is not None else "binary"
        rows.append(
            f'<tr><th scope="row">{label}</th><td>{side.size:,} bytes</td><td>{lines}</td>'
            f'<td class="gr-digest">{escape(side.sha256)}</td></tr>'
        )
    return (
        '<table class="gr-sides"><thead><tr><th></th><th>size</th><th>lines</th>'
        f"<th>SHA-256</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
