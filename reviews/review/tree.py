"""The file tree of an analysis as one HTML fragment: folders as `<details>`, files as links.

Built in Python rather than in a template loop: a package can hold thousands of files, and the
tree must render in milliseconds. Names come from the tarball: each is escaped, with bidi and
invisible characters shown as markers (`textcheck.escape_and_mark`). The walk is iterative, so
a hostile archive's very deep folders cannot exhaust the recursion limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from html import escape

from reviews.inspect.archive import format_size
from reviews.inspect.textcheck import category_of, escape_and_mark

__all__ = ["TreeFile", "render_tree", "size_change"]

MINUS = "\N{MINUS SIGN}"

STATUS_LETTERS = {
    "added": "A",
    "removed": "D",
    "modified": "M",
    "renamed": "R",
    "unchanged": "·",
}


@dataclass(frozen=True, slots=True)
class TreeFile:
    path: str
    status: str
    size: int | None
    old_size: int | None
    old_path: str = ""
    is_binary: bool = False
    oversized: bool = False
    huge: bool = False
    """Over the inline diff limit: shown as a notice, not lines."""
    lines_added: int | None = None
    lines_removed: int | None = None
    findings: int = 0
    """Risk findings on this file."""
    worst: str = ""
    """The highest severity among its new and changed findings, or "existing"."""
    viewed: bool = False
    """Ticked as viewed by the person looking, for the content it has now."""


@dataclass(slots=True)
class _Folder:
    name: str
    folders: dict[str, _Folder] = field(default_factory=dict)
    files: list[tuple[str, TreeFile]] = field(default_factory=list)
    count: int = 0


def size_change(file: TreeFile) -> str:
    """The size change for people: `+1.2 KiB`, `\u2212300 bytes`, `±0`; the size if unchanged."""
    if file.status == "unchanged":
        return format_size(file.size or 0)
    delta = (file.size or 0) - (file.old_size or 0)
    if delta == 0:
        return "±0"
    return ("+" if delta > 0 else MINUS) + format_size(abs(delta))


def render_tree(
    files: Sequence[TreeFile],
    href: Callable[[str], str],
    *,
    current: str | None = None,
    target: str = "#diff",
) -> str:
    """`<ul class="gr-tree">` with every file of `files` (sorted by path) under its folders.

    `href(path)` gives each file's link; the link also loads the file into `target` with htmx
    and pushes its URL, so the address bar names the file shown.
    """
    root = _Folder("")
    for file in files:
        parts = file.path.split("/")
        folder = root
        folder.count += 1
        for part in parts[:-1]:
            folder = folder.folders.setdefault(part, _Folder(part))
            folder.count += 1
        folder.files.append((parts[-1], file))

    out = ['<ul class="gr-tree">']
    stack: list[Iterator[_Folder | tuple[str, TreeFile]]] = [_children(root)]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
            if stack:
                out.append("</ul></details></li>")
            continue
        if isinstance(item, _Folder):
            name, folder = _collapse(item)
            noun = "file" if folder.count == 1 else "files"
            out.append(
                '<li class="gr-dir"><details open><summary>'
                f'<span class="gr-dirname">{escape_and_mark(name)}/</span> '
                f'<span class="gr-count">{folder.count:,} {noun}</span></summary><ul>'
            )
            stack.append(_children(folder))
        else:
            out.append(_file_item(*item, href, current, target))
    out.append("</ul>")
    return "".join(out)


def _children(folder: _Folder) -> Iterator[_Folder | tuple[str, TreeFile]]:
    yield from (folder.folders[name] for name in sorted(folder.folders))
    yield from sorted(folder.files, key=lambda item: item[0])


def _collapse(folder: _Folder) -> tuple[str, _Folder]:
    """`a/b/c` for a chain of folders that each hold only the next one."""
    name = folder.name
    while len(folder.folders) == 1 and not folder.files:
        (folder,) = folder.folders.values()
        name = f"{name}/{folder.name}"
    return name, folder


def _file_item(
    name: str, file: TreeFile, href: Callable[[str], str], current: str | None, target: str
) -> str:
    url = escape(href(file.path))
    status = escape(file.status)
    title = status
    if file.old_path:
        title = f"renamed from {escape(_visible(file.old_path))}"
    tags = []
    if file.is_binary:
        tags.append('<span class="gr-tag">binary</span>')
    if file.findings:
        noun = "finding" if file.findings == 1 else "findings"
        level = escape(file.worst)
        tags.append(
            f'<span class="gr-risk gr-risk-{level}" title="{file.findings:,} {noun}, '
            f'highest new or changed: {level}">&#9873; {file.findings:,}</span>'
        )
    if file.oversized:
        tags.append('<span class="gr-tag gr-tag-warn">over the file limit</span>')
    elif file.huge:
        tags.append('<span class="gr-tag">large</span>')
    lines = ""
    if file.status != "unchanged" and file.lines_added is not None:
        lines = (
            f' <span class="gr-lines"><span class="gr-added">+{file.lines_added:,}</span> '
            f'<span class="gr-removed">&minus;{file.lines_removed or 0:,}</span></span>'
        )
    if file.viewed:
        tags.append('<span class="gr-viewed" title="you viewed this file">\N{CHECK MARK}</span>')
    selected = ' aria-current="page"' if file.path == current else ""
    return (
        f'<li class="gr-file gr-status-{status}" data-path="{escape(_visible(file.path))}">'
        f'<span class="gr-badge gr-badge-{status}" title="{title}">'
        f"{STATUS_LETTERS.get(file.status, '?')}</span> "
        f'<a class="gr-file-link" href="{url}" hx-get="{url}" hx-target="{escape(target)}" '
        f'hx-push-url="true"{selected}>{escape_and_mark(name)}</a>'
        f"{''.join(tags)}"
        f' <span class="gr-delta">{escape(size_change(file))}</span>{lines}</li>'
    )


def _visible(text: str) -> str:
    """Plain text (for attributes) with bidi, invisible and control characters as `[U+…]`."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(f"[U+{ord(c):04X}]" if category_of(c) else c for c in text)
