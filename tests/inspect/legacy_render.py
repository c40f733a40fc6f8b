"""The renderer as it was before tables with holes (`reviews.inspect.render` at commit 4a99e31),
kept unchanged as the oracle of `test_render_tables.py`: the new one must give the same bytes
for the same inputs, hooks called in the same order. Not used by the application. One change
made since, deliberately, in both: a hunk header's section (a line of the file) is marked by
`escape_and_mark` like the lines, where it was only escaped and let bidi controls through.

HTML fragments for a `FileDiff` or `FileView`: the last stage of the diff pipeline.

Everything that comes from a tarball is escaped here or was escaped upstream: file names,
notices and hunk sections with `html.escape`, line contents by `review_highlight` (which marks
bidi and invisible characters). The fragments are tables with `gr-` classes, the token classes
of Pygments inside `.highlight`, and `data-` attributes on the rows of hidden unchanged lines
(`gr-gap`) that a view can turn into "expand" links calling `diffing.expand_context`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

from reviews.inspect.diffing import DiffKind, DiffLine, FileDiff, FileView, Gap, Hunk, SideInfo
from reviews.inspect.render import LineHooks, Marks  # the same protocol
from reviews.inspect.textcheck import escape_and_mark

__all__ = [
    "render_context",
    "render_side_by_side",
    "render_unified",
    "render_view",
]

OLD, NEW = "old", "new"


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
    body: list[str] = []
    gaps = {gap.before_hunk: gap for gap in diff.gaps}
    for index, hunk in enumerate(diff.hunks):
        body.append(_gap_row(gaps.get(index), colspan=3))
        body.append(
            f'<tr class="gr-hunk-header"><td colspan="3">{escape_and_mark(hunk.header)}</td></tr>'
        )
        body.extend(_unified_row(line, hooks, marks) for line in hunk.lines)
    body.append(_gap_row(gaps.get(len(diff.hunks)), colspan=3))
    return _frame(diff, path, old_path, "unified", body)


def render_side_by_side(
    diff: FileDiff,
    path: str,
    *,
    old_path: str | None = None,
    hooks: LineHooks | None = None,
    marks: Marks | None = None,
) -> str:
    """Baseline on the left, staged version on the right, changed lines paired."""
    body: list[str] = []
    gaps = {gap.before_hunk: gap for gap in diff.gaps}
    for index, hunk in enumerate(diff.hunks):
        body.append(_gap_row(gaps.get(index), colspan=4))
        body.append(_hunk_header(hunk, colspan=4))
        for row in hunk.rows:
            body.append(
                f"<tr{_row_attrs(f'gr-row gr-{row.kind}', row.new_no, marks)}>"
                f"{_number(row.old_no, OLD, hooks)}{_code(row.old_html)}"
                f"{_number(row.new_no, NEW, hooks, anchor=True)}{_code(row.new_html)}</tr>"
            )
            if hooks is not None:
                body.append(hooks.after(row.old_no, row.new_no, 4))
    body.append(_gap_row(gaps.get(len(diff.hunks)), colspan=4))
    return _frame(diff, path, old_path, "side-by-side", body)


def render_context(lines: Sequence[DiffLine], *, side_by_side: bool = False) -> str:
    """Table rows for lines revealed by `expand_context` (to swap in for a `gr-gap` row)."""
    if side_by_side:
        return "".join(
            f'<tr class="gr-row gr-equal">{_number(line.old_no)}{_code(line.html)}'
            f"{_number(line.new_no)}{_code(line.html)}</tr>"
            for line in lines
        )
    return "".join(_unified_row(line) for line in lines)


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
    rows = []
    for number, html in enumerate(view.lines, 1):
        rows.append(
            f"<tr{_row_attrs('gr-line', number, marks)}>"
            f"{_number(number, side, hooks, anchor=side == NEW)}{_code(html)}</tr>"
        )
        if hooks is not None:
            rows.append(
                hooks.after(number if side == OLD else None, number if side == NEW else None, 2)
            )
    parts = [
        f'<div class="gr-file gr-kind-{view.kind}" data-lexer="{escape(view.lexer)}">',
        f'<div class="gr-file-header"><span class="gr-path">{escape_and_mark(path)}</span>'
        f"{_side_summary(view.side)}</div>",
        *_notices(view.notices),
    ]
    if rows:
        parts.append(
            f'<table class="gr-code-table highlight"><tbody>{"".join(rows)}</tbody></table>'
        )
    parts.append("</div>")
    return "".join(parts)


def _frame(diff: FileDiff, path: str, old_path: str | None, layout: str, body: list[str]) -> str:
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
    rows = "".join(row for row in body if row)
    if rows:
        parts.append(f'<table class="gr-diff-table highlight"><tbody>{rows}</tbody></table>')
    parts.append("</div>")
    return "".join(parts)


def _unified_row(line: DiffLine, hooks: LineHooks | None = None, marks: Marks | None = None) -> str:
    row = (
        f"<tr{_row_attrs(f'gr-line gr-{line.kind}', line.new_no, marks)}>"
        f"{_number(line.old_no, OLD, hooks)}"
        f"{_number(line.new_no, NEW, hooks, anchor=True)}{_code(line.html)}</tr>"
    )
    if hooks is None:
        return row
    return row + hooks.after(line.old_no, line.new_no, 3)


def _hunk_header(hunk: Hunk, colspan: int) -> str:
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


def _number(
    number: int | None,
    side: str = "",
    hooks: LineHooks | None = None,
    *,
    anchor: bool = False,
) -> str:
    """A line-number cell; `anchor` makes it the target of `#L<number>` (staged lines)."""
    if number is None:
        return '<td class="gr-ln"></td>'
    inside = hooks.number(side, number) if hooks is not None and side else str(number)
    side_attr = f' data-side="{side}"' if side else ""
    anchor_attr = f' id="L{number}"' if anchor else ""
    return f'<td class="gr-ln"{anchor_attr}{side_attr} data-line="{number}">{inside}</td>'


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
