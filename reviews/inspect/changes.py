"""What changed between the baseline and the staged version, file by file, with line counts.

Statuses come from the two indexes alone (paths and SHA-256 digests): added, removed, modified,
unchanged, and renamed (a removed and an added path with identical, non-empty content). Line
counts of modified text files come from libgit2's xdiff through pygit2, in memory: the same
engine as `git diff`, lines split on `\\n` only, and linear enough for minified bundles and
huge JSON where Python's difflib is quadratic (see DIFF_ENGINE.md for the figures).

Typical use, for a whole package::

    analysis = analyse_tarballs(baseline_tarball, staged_tarball, limits)
    analysis.changeset.summary.counts[ChangeStatus.MODIFIED]
    for change in analysis.changeset.changes: ...
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

import pygit2

from reviews.inspect.archive import (
    DEFAULT_LIMITS,
    ArchiveResult,
    FileEntry,
    Limits,
    TarballSource,
    read_archive,
    stream_members,
)

__all__ = [
    "ChangeStatus",
    "ChangeSummary",
    "Changeset",
    "FileChange",
    "PackageAnalysis",
    "analyse",
    "analyse_tarballs",
    "compare_indexes",
    "line_stats",
]

# libgit2 must not second-guess our binary test (a NUL in the first 8000 bytes, as git does).
_FORCE_TEXT = pygit2.enums.DiffOption.FORCE_TEXT


class ChangeStatus(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    MODIFIED = "modified"
    UNCHANGED = "unchanged"
    RENAMED = "renamed"


@dataclass(frozen=True, slots=True)
class FileChange:
    """One path's fate between baseline (`old`) and staged version (`new`)."""

    status: ChangeStatus
    old: FileEntry | None
    new: FileEntry | None
    lines_added: int | None = None
    lines_removed: int | None = None
    """Line counts; None for binary files or when the contents were not available."""

    @property
    def path(self) -> str:
        """The staged path (the baseline path for a removed file)."""
        entry = self.new or self.old
        assert entry is not None
        return entry.path

    @property
    def old_path(self) -> str | None:
        return self.old.path if self.old else None

    @property
    def size_delta(self) -> int:
        return (self.new.size if self.new else 0) - (self.old.size if self.old else 0)

    @property
    def is_binary(self) -> bool:
        return any(entry.is_binary for entry in (self.old, self.new) if entry)

    @property
    def mode_changed(self) -> bool:
        return bool(self.old and self.new and self.old.mode != self.new.mode)

    @property
    def became_executable(self) -> bool:
        was = self.old.is_executable if self.old else False
        return bool(self.new and self.new.is_executable and not was)

    @property
    def content_changed(self) -> bool:
        return self.status in (ChangeStatus.ADDED, ChangeStatus.REMOVED) or bool(
            self.old and self.new and self.old.sha256 != self.new.sha256
        )


@dataclass(frozen=True, slots=True)
class ChangeSummary:
    """The counts shown at the top of the file tree."""

    counts: Mapping[ChangeStatus, int]
    old_size: int
    new_size: int
    lines_added: int
    lines_removed: int
    binary_changed: int
    """Added, removed or modified binary files (no line counts for them)."""

    @property
    def size_delta(self) -> int:
        return self.new_size - self.old_size


@dataclass(frozen=True, slots=True)
class Changeset:
    changes: tuple[FileChange, ...]
    """Sorted by path; removed files under their baseline path."""
    first_release: bool
    """No baseline: every file is added."""
    stats_complete: bool
    """False when some text file's line counts are missing (contents not available)."""
    summary: ChangeSummary = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "summary", _summarise(self.changes))

    def by_path(self) -> dict[str, FileChange]:
        return {change.path: change for change in self.changes}

    def changed(self) -> list[FileChange]:
        """Everything but unchanged files."""
        return [c for c in self.changes if c.status is not ChangeStatus.UNCHANGED]


@dataclass(frozen=True, slots=True)
class PackageAnalysis:
    """Both archives (index, findings, refusal) and the changeset between them."""

    old: ArchiveResult | None
    new: ArchiveResult
    changeset: Changeset


def compare_indexes(
    old: Mapping[str, FileEntry] | None, new: Mapping[str, FileEntry]
) -> list[FileChange]:
    """Statuses from paths and digests alone, without line counts; sorted by path."""
    old = old or {}
    changes: list[FileChange] = []
    removed = [entry for path, entry in old.items() if path not in new]
    added = [entry for path, entry in new.items() if path not in old]
    for path, entry in new.items():
        before = old.get(path)
        if before is None:
            continue
        same = before.sha256 == entry.sha256 and before.mode == entry.mode
        status = ChangeStatus.UNCHANGED if same else ChangeStatus.MODIFIED
        changes.append(FileChange(status, before, entry))

    # Renames: identical non-empty content under a new path. Empty files are left out, as git
    # does, or every new empty file would pair with any removed one.
    by_digest: dict[str, list[FileEntry]] = defaultdict(list)
    for entry in sorted(removed, key=lambda e: e.path):
        if entry.size:
            by_digest[entry.sha256].append(entry)
    paired: set[str] = set()
    for entry in sorted(added, key=lambda e: e.path):
        candidates = by_digest.get(entry.sha256)
        if entry.size and candidates:
            source = candidates.pop(0)
            paired.add(source.path)
            changes.append(FileChange(ChangeStatus.RENAMED, source, entry, 0, 0))
        else:
            changes.append(FileChange(ChangeStatus.ADDED, None, entry))
    changes.extend(
        FileChange(ChangeStatus.REMOVED, entry, None)
        for entry in removed
        if entry.path not in paired
    )
    changes.sort(key=lambda change: change.path)
    return changes


def line_stats(old: bytes, new: bytes) -> tuple[int, int]:
    """(lines added, lines removed) between two texts, by libgit2, split on `\\n` only."""
    if old == new:
        return 0, 0
    patch = pygit2.Patch.create_from(old, new, flag=_FORCE_TEXT, context_lines=0)
    _context, added, removed = patch.line_stats
    return int(added), int(removed)


def analyse(
    old: Mapping[str, FileEntry] | None,
    new: Mapping[str, FileEntry],
    old_contents: Mapping[str, bytes],
    new_contents: Mapping[str, bytes],
) -> Changeset:
    """The changeset with line counts for every text file whose contents are given."""

    def counts(change: FileChange) -> tuple[int, int] | None:
        assert change.old is not None
        assert change.new is not None
        old_bytes, new_bytes = old_contents.get(change.old.path), new_contents.get(change.new.path)
        if old_bytes is None or new_bytes is None:
            return None
        return line_stats(old_bytes, new_bytes)

    return _changeset(old, new, counts)


def analyse_tarballs(
    old: TarballSource | None,
    new: TarballSource,
    limits: Limits = DEFAULT_LIMITS,
    *,
    also_keep: Callable[[FileEntry, FileEntry | None], bool] | None = None,
) -> PackageAnalysis:
    """Read both tarballs (in memory, within `limits`) and analyse the whole package.

    The staged tarball is read once, keeping the bytes of the text files that differ from the
    baseline under the same path (the only ones diffed), within `limits.max_kept_bytes`. The
    baseline is read twice when it can be (bytes, or a seekable file): once for its index, once
    more streaming those files one at a time into libgit2. A baseline that cannot be rewound is
    read once, keeping all its text files' bytes (within the same budget). Files past a budget
    keep no line counts (`Changeset.stats_complete` is then False).

    `also_keep(entry, baseline_entry)` keeps more of the staged side's bytes in
    `PackageAnalysis.new.contents` (the risk rules read added and changed files from there),
    within the same budget; `baseline_entry` is the baseline's file at that path, or None.
    """
    if old is None:
        keep = (lambda entry: also_keep(entry, None)) if also_keep is not None else False
        new_archive = read_archive(new, limits, keep_contents=keep)
        return PackageAnalysis(None, new_archive, _changeset(None, new_archive.files, _no_counts))

    old_start = _rewind_point(old)
    old_archive = read_archive(old, limits, keep_contents=old_start is None and _is_text)
    old_files = old_archive.files

    def differs(entry: FileEntry) -> bool:
        before = old_files.get(entry.path)
        return (
            before is not None
            and before.sha256 != entry.sha256
            and not before.is_binary
            and not entry.is_binary
        )

    def kept(entry: FileEntry) -> bool:
        return differs(entry) or (
            also_keep is not None and also_keep(entry, old_files.get(entry.path))
        )

    new_archive = read_archive(new, limits, keep_contents=kept)
    # Line counts only for what `differs` asked for (`also_keep` may have kept more).
    new_contents = {
        path: data
        for path, data in new_archive.contents.items()
        if path in new_archive.files and differs(new_archive.files[path])
    }
    counted: dict[str, tuple[int, int]] = {}
    if old_start is None:
        for path, data in new_contents.items():
            if path in old_archive.contents:
                counted[path] = line_stats(old_archive.contents[path], data)
    else:

        def count(entry: FileEntry, data: bytes) -> None:
            if entry.path in new_contents and old_files.get(entry.path) == entry:
                counted[entry.path] = line_stats(data, new_contents[entry.path])

        if not isinstance(old, bytes | bytearray | memoryview):
            old.seek(old_start)
        stream_members(old, new_contents, count, limits)

    def counts(change: FileChange) -> tuple[int, int] | None:
        return counted.get(change.path)

    changeset = _changeset(old_files, new_archive.files, counts)
    return PackageAnalysis(old_archive, new_archive, changeset)


def _no_counts(_change: FileChange) -> None:
    return None


def _changeset(
    old: Mapping[str, FileEntry] | None,
    new: Mapping[str, FileEntry],
    counts: Callable[[FileChange], tuple[int, int] | None],
) -> Changeset:
    complete = True
    changes: list[FileChange] = []
    for change in compare_indexes(old, new):
        counted = _with_line_counts(change, counts)
        if counted is None:
            complete = False
            counted = change
        changes.append(counted)
    return Changeset(tuple(changes), first_release=old is None, stats_complete=complete)


def _with_line_counts(
    change: FileChange, counts: Callable[[FileChange], tuple[int, int] | None]
) -> FileChange | None:
    """The change with its line counts, or None when they were needed but not computable."""
    old, new = change.old, change.new
    if change.status in (ChangeStatus.UNCHANGED, ChangeStatus.RENAMED) or change.is_binary:
        return change
    if change.status is ChangeStatus.ADDED:
        assert new is not None
        return replace(change, lines_added=new.line_count, lines_removed=0)
    if change.status is ChangeStatus.REMOVED:
        assert old is not None
        return replace(change, lines_added=0, lines_removed=old.line_count)
    assert old is not None
    assert new is not None
    if old.sha256 == new.sha256:  # only the mode changed
        return replace(change, lines_added=0, lines_removed=0)
    counted = counts(change)
    if counted is None:
        return None
    return replace(change, lines_added=counted[0], lines_removed=counted[1])


def _is_text(entry: FileEntry) -> bool:
    return not entry.is_binary


def _rewind_point(source: TarballSource | None) -> int | None:
    """Where a second pass over `source` can start from, or None if it cannot be re-read."""
    if source is None:
        return None
    if isinstance(source, bytes | bytearray | memoryview):
        return 0
    try:
        return source.tell() if source.seekable() else None
    except OSError:
        return None


def _summarise(changes: Iterable[FileChange]) -> ChangeSummary:
    counts: Counter[ChangeStatus] = Counter(dict.fromkeys(ChangeStatus, 0))
    old_size = new_size = added = removed = binary = 0
    for change in changes:
        counts[change.status] += 1
        old_size += change.old.size if change.old else 0
        new_size += change.new.size if change.new else 0
        added += change.lines_added or 0
        removed += change.lines_removed or 0
        if change.is_binary and change.content_changed:
            binary += 1
    return ChangeSummary(dict(counts), old_size, new_size, added, removed, binary)
