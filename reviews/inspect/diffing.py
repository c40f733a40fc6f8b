"""The diff of one file for display: hunks, side-by-side rows, expandable context, or a notice.

Input is the two files' bytes (either may be None: an added or a removed file) and the path
that picks the lexer. Output is plain data (frozen dataclasses, picklable) whose `html` fields
are escaped fragments, safe to insert as they are; `review_render` turns it into tables.

Degradation, in this order (figures from `InlineLimits`, after product.md):
binary (a NUL in the first 8000 bytes) → sizes and digests only; identical bytes → nothing to
show; a side over 1 MiB or 20,000 lines → "too large" with line counts; a line over 5,000
characters → "minified" with line counts; otherwise hunks, coloured by Pygments while each side
is under `max_highlight_bytes`, plain and escaped past it.

Results depend only on the two contents, the lexer and the options, so they are cached under
`diff_cache_key(old_sha256, new_sha256, path, options)`; the path enters the key only through
the lexer it selects, so a renamed file hits the same entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import pygit2
import pygments

from reviews.inspect.archive import count_lines, format_size, is_binary
from reviews.inspect.highlight import (
    PLAIN_LEXER,
    highlight_lines,
    highlight_some_lines,
    lexer_name,
    lexing_cost,
    plain_lines,
    plain_some_lines,
    split_lines,
)
from reviews.inspect.textcheck import SuspiciousChar, escape_and_mark, find_suspicious

__all__ = [
    "DEFAULT_OPTIONS",
    "FORMAT_VERSION",
    "DiffKind",
    "DiffLine",
    "DiffOptions",
    "FileDiff",
    "FileView",
    "Gap",
    "Hunk",
    "InlineLimits",
    "LineKind",
    "RowKind",
    "SideBySideRow",
    "SideInfo",
    "diff_cache_key",
    "diff_file",
    "expand_context",
    "view_cache_key",
    "view_file",
]

FORMAT_VERSION = 1
"""Bump when the shape or content of the results changes: old cache entries are then ignored."""

KiB = 1024
MiB = 1024 * KiB
_FORCE_TEXT = pygit2.enums.DiffOption.FORCE_TEXT


@dataclass(frozen=True, slots=True)
class InlineLimits:
    max_side_bytes: int = 1 * MiB
    max_lines: int = 20_000
    max_line_chars: int = 5_000
    max_highlight_bytes: int = 512 * KiB
    """Per side; Pygments lexes about 1 MB/s of minified JavaScript."""
    max_lexed_bytes: int = 128 * KiB
    """Per side of one diff: the most text lexed to highlight the lines it shows (the windows
    around its hunks); a diff needing more is shown plain, so a first view stays quick."""


@dataclass(frozen=True, slots=True)
class DiffOptions:
    context_lines: int = 3
    highlight: bool = True
    limits: InlineLimits = field(default_factory=InlineLimits)
    max_suspicious: int = 1000
    """Suspicious characters reported per side."""


DEFAULT_OPTIONS = DiffOptions()


class DiffKind(StrEnum):
    TEXT = "text"
    """Hunks (or, for a view, lines) to show."""
    IDENTICAL = "identical"
    BINARY = "binary"
    TOO_LARGE = "too-large"
    MINIFIED = "minified"


class LineKind(StrEnum):
    CONTEXT = "context"
    ADDED = "added"
    REMOVED = "removed"


class RowKind(StrEnum):
    EQUAL = "equal"
    CHANGED = "changed"
    ADDED = "added"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class DiffLine:
    kind: LineKind
    old_no: int | None
    new_no: int | None
    html: str
    """Escaped (and highlighted) content, without the line break."""

    # Lines and rows are pickled (the cache) by the thousand: as their constructor's arguments
    # they take a third of the time the slots dataclasses' field-by-field state takes.
    def __reduce__(self) -> tuple[type[DiffLine], tuple[object, ...]]:
        return DiffLine, (self.kind, self.old_no, self.new_no, self.html)


@dataclass(frozen=True, slots=True)
class SideBySideRow:
    kind: RowKind
    old_no: int | None
    old_html: str | None
    new_no: int | None
    new_html: str | None

    def __reduce__(self) -> tuple[type[SideBySideRow], tuple[object, ...]]:
        return SideBySideRow, (self.kind, self.old_no, self.old_html, self.new_no, self.new_html)


@dataclass(frozen=True, slots=True)
class Hunk:
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    section: str
    """Text libgit2 puts after `@@ … @@` (the enclosing function, as git shows it); raw text
    from the file: escape it."""
    lines: tuple[DiffLine, ...]
    rows: tuple[SideBySideRow, ...]

    def __reduce__(self) -> tuple[type[Hunk], tuple[object, ...]]:
        fields = (self.old_start, self.old_count, self.new_start, self.new_count, self.section)
        return Hunk, (*fields, self.lines, self.rows)

    @property
    def header(self) -> str:
        """The unified-diff hunk header (raw text: escape it)."""
        head = f"@@ -{self.old_start},{self.old_count} +{self.new_start},{self.new_count} @@"
        return f"{head} {self.section}" if self.section else head


@dataclass(frozen=True, slots=True)
class Gap:
    """Unchanged lines hidden before hunk `before_hunk` (== len(hunks): after the last one)."""

    before_hunk: int
    old_start: int
    new_start: int
    count: int


@dataclass(frozen=True, slots=True)
class SideInfo:
    size: int
    sha256: str
    is_binary: bool
    line_count: int | None
    longest_line: int | None
    """In characters, after decoding; None for binary files."""
    not_utf8: bool = False
    """Decoded with U+FFFD replacement characters."""
    crlf: bool = False
    no_newline_at_end: bool = False
    highlighted: bool = False
    suspicious: tuple[SuspiciousChar, ...] = ()


@dataclass(frozen=True, slots=True)
class FileDiff:
    kind: DiffKind
    old: SideInfo | None
    new: SideInfo | None
    lines_added: int | None
    lines_removed: int | None
    lexer: str
    cache_key: str
    hunks: tuple[Hunk, ...] = ()
    gaps: tuple[Gap, ...] = ()
    notices: tuple[str, ...] = ()
    """Sentences for the reviewer (raw text: escape them)."""

    @property
    def is_added(self) -> bool:
        return self.old is None

    @property
    def is_removed(self) -> bool:
        return self.new is None


@dataclass(frozen=True, slots=True)
class FileView:
    """One file shown whole (the file view, not a diff)."""

    kind: DiffKind
    side: SideInfo
    lines: tuple[str, ...]
    """Escaped (and highlighted) lines; for a minified file, each cut at `max_line_chars`."""
    lexer: str
    cache_key: str
    notices: tuple[str, ...] = ()
    truncated: bool = False
    """Lines were cut at `max_line_chars`."""


def diff_cache_key(
    old_sha256: str | None, new_sha256: str | None, path: str, options: DiffOptions
) -> str:
    """`greenroom:diff:v<FORMAT_VERSION>:<old>:<new>:<options>`; `-` for a missing side.

    The options part hashes the options, the lexer the path selects and the Pygments version,
    so an upgrade or another file type never serves stale HTML. Under 200 characters, ASCII.
    """
    return f"greenroom:diff:v{FORMAT_VERSION}:{old_sha256 or '-'}:{new_sha256 or '-'}:" + (
        _fingerprint(options, lexer_name(path))
    )


def view_cache_key(sha256: str, path: str, options: DiffOptions) -> str:
    """Like `diff_cache_key`, for `view_file`."""
    return f"greenroom:view:v{FORMAT_VERSION}:{sha256}:" + _fingerprint(options, lexer_name(path))


def diff_file(
    old: bytes | None, new: bytes | None, path: str, options: DiffOptions = DEFAULT_OPTIONS
) -> FileDiff:
    """The display diff of one file; `path` (the staged one) picks the lexer."""
    if old is None and new is None:
        raise ValueError("diff_file needs at least one side")
    lexer = lexer_name(path)
    old_sha = _sha256(old) if old is not None else None
    new_sha = _sha256(new) if new is not None else None
    key = diff_cache_key(old_sha, new_sha, path, options)
    limits = options.limits

    if any(is_binary(data) for data in (old, new) if data is not None):
        old_info = _binary_info(old, old_sha)
        new_info = _binary_info(new, new_sha)
        return FileDiff(
            DiffKind.BINARY if old_sha != new_sha else DiffKind.IDENTICAL,
            old_info,
            new_info,
            None,
            None,
            lexer,
            key,
            notices=(binary_notice(old_info, new_info),),
        )

    old_side = _Side.decode(old, old_sha, options, "baseline") if old is not None else None
    new_side = _Side.decode(new, new_sha, options, "staged") if new is not None else None
    notices = [n for side in (old_side, new_side) if side for n in side.notices()]
    if old_side and new_side and old_sha == new_sha:
        return FileDiff(
            DiffKind.IDENTICAL,
            old_side.info(),
            new_side.info(),
            0,
            0,
            lexer,
            key,
            notices=("The contents are identical.", *notices),
        )

    reasons = [r for side in (old_side, new_side) if side for r in side.too_large(limits)]
    long_lines = [r for side in (old_side, new_side) if side for r in side.too_long(limits)]
    if reasons or long_lines:
        added, removed = _line_stats(old_side, new_side)
        kind = DiffKind.TOO_LARGE if reasons else DiffKind.MINIFIED
        stats = f"{_lines(added)} added, {removed:,} removed."
        if kind is DiffKind.TOO_LARGE:
            notice = f"Not shown inline: {'; '.join(reasons)}. {stats}"
        else:
            notice = (
                f"Not shown inline: {'; '.join(long_lines)} (probably minified or generated "
                f"code). {stats}"
            )
        return FileDiff(
            kind,
            old_side.info() if old_side else None,
            new_side.info() if new_side else None,
            added,
            removed,
            lexer,
            key,
            notices=(notice, *notices),
        )

    highlight = options.highlight
    if old_side is None or new_side is None:
        whole = old_side or new_side
        assert whole is not None
        highlight = highlight and len(whole.text) <= limits.max_lexed_bytes
        old_html = old_side.html_lines(path, highlight, limits) if old_side else []
        new_html = new_side.html_lines(path, highlight, limits) if new_side else []
        hunks = _whole_file_hunk(old_html, new_html)
        gaps: tuple[Gap, ...] = ()
    else:
        # only the lines shown (hunks and their context) are highlighted, not whole sides
        patch = _patch(old_side.data, new_side.data, options.context_lines)
        old_wanted, new_wanted = _shown_lines(patch)
        highlight = highlight and all(
            lexing_cost(side.text, wanted) <= limits.max_lexed_bytes
            for side, wanted in ((old_side, old_wanted), (new_side, new_wanted))
        )
        hunks = _hunks(
            patch,
            old_side.html_for(path, highlight, limits, old_wanted),
            new_side.html_for(path, highlight, limits, new_wanted),
        )
        gaps = _gaps(hunks, new_side.line_count)
    added = sum(1 for h in hunks for line in h.lines if line.kind is LineKind.ADDED)
    removed = sum(1 for h in hunks for line in h.lines if line.kind is LineKind.REMOVED)
    if not hunks:
        notices.insert(0, "The file is empty.")
    return FileDiff(
        DiffKind.TEXT,
        old_side.info(highlighted=old_side.highlights(lexer, highlight, limits))
        if old_side
        else None,
        new_side.info(highlighted=new_side.highlights(lexer, highlight, limits))
        if new_side
        else None,
        added,
        removed,
        lexer,
        key,
        hunks=hunks,
        gaps=gaps,
        notices=tuple(notices),
    )


def expand_context(
    new: bytes,
    path: str,
    gap: Gap,
    options: DiffOptions = DEFAULT_OPTIONS,
    *,
    first: int | None = None,
    last: int | None = None,
) -> tuple[DiffLine, ...]:
    """Unchanged lines of `gap`, to show between hunks: all of them, or only the `first` ones
    (under the hunk above) and/or the `last` ones (over the hunk below).

    The lines are equal on both sides, so only the staged file's bytes are needed; `gap` comes
    from the `FileDiff` whose `new` side these bytes are.
    """
    side = _Side.decode(new, _sha256(new), options, "staged")
    if side.too_large(options.limits) or side.too_long(options.limits):
        return ()
    offsets: list[int] | range = range(gap.count)
    if first is not None or last is not None:
        head = min(max(first or 0, 0), gap.count)
        tail = max(gap.count - max(last or 0, 0), head)
        offsets = [*range(head), *range(tail, gap.count)]
    shown = [i for i in offsets if gap.new_start + i <= side.line_count]
    numbers = [gap.new_start + i for i in shown]
    highlight = options.highlight and (
        lexing_cost(side.text, numbers) <= options.limits.max_lexed_bytes
    )
    html = side.html_for(path, highlight, options.limits, numbers)
    return tuple(
        DiffLine(LineKind.CONTEXT, gap.old_start + i, gap.new_start + i, html[gap.new_start + i])
        for i in shown
    )


def view_file(data: bytes, path: str, options: DiffOptions = DEFAULT_OPTIONS) -> FileView:
    """One file, highlighted when small enough; a minified file as lines cut short."""
    sha = _sha256(data)
    lexer = lexer_name(path)
    key = view_cache_key(sha, path, options)
    if is_binary(data):
        info = _binary_info(data, sha)
        assert info is not None
        notice = f"Binary file, {format_size(info.size)}, SHA-256 {info.sha256}."
        return FileView(DiffKind.BINARY, info, (), lexer, key, notices=(notice,))
    side = _Side.decode(data, sha, options, "")
    limits = options.limits
    reasons = side.too_large(limits)
    if reasons:
        notice = f"Not shown inline: {'; '.join(reasons)}."
        return FileView(DiffKind.TOO_LARGE, side.info(), (), lexer, key, (notice, *side.notices()))
    if side.too_long(limits):
        cut = limits.max_line_chars
        folded = side.text.replace("\r\n", "\n")
        lines = tuple(escape_and_mark(line[:cut]) for line in split_lines(folded))
        notice = (
            f"Lines are cut at {cut:,} characters: {'; '.join(side.too_long(limits))} "
            "(probably minified or generated code). Download the file to see it whole."
        )
        return FileView(
            DiffKind.MINIFIED, side.info(), lines, lexer, key, (notice, *side.notices()), True
        )
    lines = tuple(side.html_lines(path, options.highlight, limits))
    info = side.info(highlighted=side.highlights(lexer, options.highlight, limits))
    return FileView(DiffKind.TEXT, info, lines, lexer, key, tuple(side.notices()))


# --- internals -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Side:
    data: bytes
    sha256: str
    text: str
    lines: list[str]
    not_utf8: bool
    suspicious: tuple[SuspiciousChar, ...]
    label: str
    """`baseline` or `staged` in a diff, empty in a file view."""
    line_count: int
    longest: int
    decoded: bool = True
    """False for a side over `max_side_bytes`: measured in bytes, never decoded or scanned."""

    @classmethod
    def decode(cls, data: bytes, sha256: str | None, options: DiffOptions, label: str) -> _Side:
        sha256 = sha256 or _sha256(data)
        if len(data) > options.limits.max_side_bytes:
            return cls(data, sha256, "", [], False, (), label, count_lines(data), 0, False)
        try:
            text, not_utf8 = data.decode("utf-8"), False
        except UnicodeDecodeError:
            text, not_utf8 = data.decode("utf-8", "replace"), True
        lines = split_lines(text)
        suspicious = tuple(find_suspicious(text, limit=options.max_suspicious))
        longest = max(map(len, lines), default=0)
        return cls(data, sha256, text, lines, not_utf8, suspicious, label, len(lines), longest)

    @property
    def subject(self) -> str:
        return f"the {self.label} file" if self.label else "the file"

    def too_large(self, limits: InlineLimits) -> list[str]:
        reasons = []
        if len(self.data) > limits.max_side_bytes:
            reasons.append(
                f"{self.subject} is {format_size(len(self.data))} "
                f"(limit {format_size(limits.max_side_bytes)})"
            )
        if self.line_count > limits.max_lines:
            reasons.append(
                f"{self.subject} has {self.line_count:,} lines (limit {limits.max_lines:,})"
            )
        return reasons

    def too_long(self, limits: InlineLimits) -> list[str]:
        longest = self.longest
        if longest <= limits.max_line_chars:
            return []
        return [
            f"{self.subject} has a line of {longest:,} characters (limit {limits.max_line_chars:,})"
        ]

    def highlights(self, lexer: str, highlight: bool, limits: InlineLimits) -> bool:
        return highlight and lexer != PLAIN_LEXER and len(self.data) <= limits.max_highlight_bytes

    def html_lines(self, path: str, highlight: bool, limits: InlineLimits) -> list[str]:
        if self.highlights(lexer_name(path), highlight, limits):
            return highlight_lines(self.text, path)
        return plain_lines(self.text)

    def html_for(
        self, path: str, highlight: bool, limits: InlineLimits, numbers: Iterable[int]
    ) -> dict[int, str]:
        """`html_lines` for the lines `numbers` (from 1) alone, lexing only around them."""
        if self.highlights(lexer_name(path), highlight, limits):
            return highlight_some_lines(self.text, path, numbers)
        return plain_some_lines(self.text, numbers)

    def notices(self) -> list[str]:
        notes = []
        if self.not_utf8:
            notes.append(
                f"{self.subject.capitalize()} is not valid UTF-8: shown with replacement "
                "characters (\ufffd)."
            )
        trojan = [c for c in self.suspicious if c.category.is_trojan]
        if trojan:
            first = trojan[0]
            more = f" and {len(trojan) - 1:,} more" if len(trojan) > 1 else ""
            notes.append(
                f"{self.subject.capitalize()} has invisible or bidirectional characters "
                f"(trojan source): {first.label} at line "
                f"{first.line}, column {first.column}{more}. They are shown as [U+…] markers."
            )
        return notes

    def info(self, *, highlighted: bool = False) -> SideInfo:
        return SideInfo(
            size=len(self.data),
            sha256=self.sha256,
            is_binary=False,
            line_count=self.line_count,
            longest_line=self.longest if self.decoded else None,
            not_utf8=self.not_utf8,
            crlf=b"\r\n" in self.data,
            no_newline_at_end=bool(self.data) and not self.data.endswith(b"\n"),
            highlighted=highlighted,
            suspicious=self.suspicious,
        )


def _binary_info(data: bytes | None, sha256: str | None) -> SideInfo | None:
    if data is None or sha256 is None:
        return None
    binary = is_binary(data)
    return SideInfo(
        size=len(data),
        sha256=sha256,
        is_binary=binary,
        line_count=None if binary else count_lines(data),
        longest_line=None,
    )


def binary_notice(old: SideInfo | None, new: SideInfo | None) -> str:
    """What a reviewer is told about a binary file instead of a diff."""
    if old is None and new is not None:
        return f"Binary file added: {format_size(new.size)}, SHA-256 {new.sha256}."
    if new is None and old is not None:
        return f"Binary file removed: {format_size(old.size)}, SHA-256 {old.sha256}."
    assert old is not None
    assert new is not None
    if old.sha256 == new.sha256:
        return f"Binary file unchanged: {format_size(new.size)}, SHA-256 {new.sha256}."
    return (
        f"Binary, sizes and digests differ: {format_size(old.size)} → {format_size(new.size)}; "
        f"SHA-256 {old.sha256} → {new.sha256}."
    )


def _line_stats(old: _Side | None, new: _Side | None) -> tuple[int, int]:
    if old is None:
        return (new.line_count if new else 0), 0
    if new is None:
        return 0, old.line_count
    patch = pygit2.Patch.create_from(old.data, new.data, flag=_FORCE_TEXT, context_lines=0)
    _context, added, removed = patch.line_stats
    return int(added), int(removed)


def _whole_file_hunk(old_html: list[str], new_html: list[str]) -> tuple[Hunk, ...]:
    if old_html:
        lines = tuple(DiffLine(LineKind.REMOVED, n, None, h) for n, h in enumerate(old_html, 1))
        return (Hunk(1, len(old_html), 0, 0, "", lines, _rows(lines)),)
    if new_html:
        lines = tuple(DiffLine(LineKind.ADDED, None, n, h) for n, h in enumerate(new_html, 1))
        return (Hunk(0, 0, 1, len(new_html), "", lines, _rows(lines)),)
    return ()


_ORIGINS = {" ": LineKind.CONTEXT, "+": LineKind.ADDED, "-": LineKind.REMOVED}


def _patch(old: bytes, new: bytes, context: int) -> pygit2.Patch:
    return pygit2.Patch.create_from(
        old, new, flag=_FORCE_TEXT, context_lines=max(context, 0), interhunk_lines=0
    )


def _shown_lines(patch: pygit2.Patch) -> tuple[set[int], set[int]]:
    """The line numbers a patch shows: removed ones on the old side, the others on the new."""
    old: set[int] = set()
    new: set[int] = set()
    for hunk in patch.hunks:
        for line in hunk.lines:
            kind = _ORIGINS.get(line.origin)
            if kind is LineKind.REMOVED:
                old.add(line.old_lineno)
            elif kind is not None:
                new.add(line.new_lineno)
    return old, new


def _hunks(
    patch: pygit2.Patch, old_html: Mapping[int, str], new_html: Mapping[int, str]
) -> tuple[Hunk, ...]:
    hunks = []
    for hunk in patch.hunks:
        lines = []
        for line in hunk.lines:
            kind = _ORIGINS.get(line.origin)
            if kind is None:
                continue  # "\ No newline at end of file" and friends
            old_no = line.old_lineno if line.old_lineno > 0 else None
            new_no = line.new_lineno if line.new_lineno > 0 else None
            if kind is LineKind.REMOVED:
                assert old_no is not None
                html = old_html[old_no]
            else:
                assert new_no is not None
                html = new_html[new_no]
            lines.append(DiffLine(kind, old_no, new_no, html))
        section = hunk.header.split("@@", 2)[-1].strip() if hunk.header.count("@@") >= 2 else ""
        frozen = tuple(lines)
        hunks.append(
            Hunk(
                hunk.old_start,
                hunk.old_lines,
                hunk.new_start,
                hunk.new_lines,
                section,
                frozen,
                _rows(frozen),
            )
        )
    return tuple(hunks)


def _rows(lines: Sequence[DiffLine]) -> tuple[SideBySideRow, ...]:
    """Side-by-side rows: each run of removed lines is paired with the added run after it."""
    rows: list[SideBySideRow] = []
    removed: list[DiffLine] = []
    added: list[DiffLine] = []

    def flush() -> None:
        for index in range(max(len(removed), len(added))):
            old = removed[index] if index < len(removed) else None
            new = added[index] if index < len(added) else None
            kind = RowKind.CHANGED if old and new else RowKind.REMOVED if old else RowKind.ADDED
            rows.append(
                SideBySideRow(
                    kind,
                    old.old_no if old else None,
                    old.html if old else None,
                    new.new_no if new else None,
                    new.html if new else None,
                )
            )
        removed.clear()
        added.clear()

    for line in lines:
        if line.kind is LineKind.REMOVED:
            if added:
                flush()
            removed.append(line)
        elif line.kind is LineKind.ADDED:
            added.append(line)
        else:
            flush()
            rows.append(
                SideBySideRow(RowKind.EQUAL, line.old_no, line.html, line.new_no, line.html)
            )
    flush()
    return tuple(rows)


def _gaps(hunks: Sequence[Hunk], new_total: int) -> tuple[Gap, ...]:
    """The unchanged stretches around and between hunks (what "expand" can reveal)."""
    gaps = []
    old_next = new_next = 1  # first line not yet shown, on each side
    for index, hunk in enumerate(hunks):
        # With a count of 0, git's start is the line *before* the (empty) range.
        old_first = hunk.old_start if hunk.old_count else hunk.old_start + 1
        new_first = hunk.new_start if hunk.new_count else hunk.new_start + 1
        if new_first > new_next:
            gaps.append(Gap(index, old_next, new_next, new_first - new_next))
        old_next, new_next = old_first + hunk.old_count, new_first + hunk.new_count
    if hunks and new_total >= new_next:
        gaps.append(Gap(len(hunks), old_next, new_next, new_total - new_next + 1))
    return tuple(gaps)


def _fingerprint(options: DiffOptions, lexer: str) -> str:
    text = repr((options, lexer, pygments.__version__, pygit2.LIBGIT2_VERSION))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _lines(n: int) -> str:
    return f"{n:,} line" if n == 1 else f"{n:,} lines"
