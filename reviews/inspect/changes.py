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
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import partial

import pygit2

from reviews.inspect.archive import (
    DEFAULT_LIMITS,
    ArchiveResult,
    ArchiveWalk,
    FileEntry,
    Limits,
    TarballSource,
    WalkMemo,
    read_members,
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
    old_contents: Mapping[str, bytes] = field(default_factory=dict)
    """Baseline bytes kept by `also_keep` / `keep_paths` (staged ones are in `new.contents`)."""


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


OnChangedBytes = Callable[[FileEntry, bytes], None]
"""Takes one side's bytes of a file whose content changed (modified, added or removed)."""


def analyse_tarballs(
    old: TarballSource | None,
    new: TarballSource,
    limits: Limits = DEFAULT_LIMITS,
    *,
    also_keep: Callable[[FileEntry, FileEntry | None], bool] | None = None,
    keep_paths: Collection[str] = (),
    on_changed: OnChangedBytes | None = None,
) -> PackageAnalysis:
    """Read both tarballs (in memory, within `limits`) and analyse the whole package.

    Each tarball is decompressed once: the two are read side by side, one entry of each in
    turn, and a file met on both sides is compared (by git blob id) and diffed by libgit2 as
    soon as its second copy arrives; then both copies are dropped. Only files not met on the
    other side yet are held, within `limits.max_kept_bytes` (npm packs files in the same order
    from one version to the next, so that is a handful). Past that budget a file's line counts
    come from a second, targeted read when the sources can be rewound, and are left out
    otherwise (`Changeset.stats_complete` is then False).

    `also_keep(entry, baseline_entry)` keeps staged bytes in `PackageAnalysis.new.contents`
    (the risk rules read added and changed files from there) and, for a file on both sides,
    the baseline's bytes in `PackageAnalysis.old_contents`; `keep_paths` keeps those paths on
    both sides. `on_changed(entry, data)` gets each side's bytes of every text file whose
    content changed (both sides of a modified file, the staged one of an added file, the
    baseline's of a removed one), once, as the file views will want them.
    """
    if old is None:
        return _first_release(new, limits, also_keep, frozenset(keep_paths), on_changed)

    pairing = _Pairing(limits, also_keep, frozenset(keep_paths), on_changed)
    old_start, new_start = _rewind_point(old), _rewind_point(new)
    shared = WalkMemo()
    old_walk = ArchiveWalk(old, partial(pairing.offer, OLD), limits, shared)
    new_walk = ArchiveWalk(new, partial(pairing.offer, NEW), limits, shared)
    old_going = new_going = True
    while old_going or new_going:
        old_going = old_going and old_walk.step()
        new_going = new_going and new_walk.step()
    old_archive, new_archive = old_walk.result, new_walk.result
    pairing.finish(old_archive.files, new_archive.files)
    if pairing.redo:
        _read_again(
            pairing,
            (old, old_start, old_archive.files),
            (new, new_start, new_archive.files),
            limits,
        )
    new_archive.contents = pairing.kept[NEW]
    new_archive.contents_complete = not pairing.redo

    def counts(change: FileChange) -> tuple[int, int] | None:
        return pairing.counted.get(change.path)

    changeset = _changeset(old_archive.files, new_archive.files, counts)
    return PackageAnalysis(old_archive, new_archive, changeset, pairing.kept[OLD])


def _first_release(
    new: TarballSource,
    limits: Limits,
    also_keep: Callable[[FileEntry, FileEntry | None], bool] | None,
    keep_paths: frozenset[str],
    on_changed: OnChangedBytes | None,
) -> PackageAnalysis:
    """No baseline: every file is added; each is handed to `on_changed` as it is read."""
    kept: dict[str, bytes] = {}
    budget = [limits.max_kept_bytes, True]  # bytes left, and whether all wanted fit

    def on_file(entry: FileEntry, data: bytes) -> None:
        budget[0] += len(kept.pop(entry.path, b""))  # a later copy of a path replaces it
        if entry.path in keep_paths or (also_keep is not None and also_keep(entry, None)):
            if len(data) <= budget[0]:
                kept[entry.path] = data
                budget[0] -= len(data)
            else:
                budget[1] = False
        if on_changed is not None and not entry.is_binary:
            on_changed(entry, data)

    walk = ArchiveWalk(new, on_file, limits)
    while walk.step():
        pass
    new_archive = walk.result
    new_archive.contents = {
        path: data for path, data in kept.items() if new_archive.files.get(path) is not None
    }
    new_archive.contents_complete = bool(budget[1])
    return PackageAnalysis(None, new_archive, _changeset(None, new_archive.files, _no_counts))


OLD, NEW = 0, 1
_Held = tuple[FileEntry, bytes]


class _Pairing:
    """Files of the two sides met one by one, paired by path as soon as both are read."""

    def __init__(
        self,
        limits: Limits,
        also_keep: Callable[[FileEntry, FileEntry | None], bool] | None,
        keep_paths: frozenset[str],
        on_changed: OnChangedBytes | None,
    ) -> None:
        self._budget = limits.max_kept_bytes
        self._also_keep = also_keep
        self._keep_paths = keep_paths
        self._on_changed = on_changed
        self._held: tuple[dict[str, _Held], dict[str, _Held]] = ({}, {})
        self._held_bytes = 0
        self._seen: tuple[set[str], set[str]] = (set(), set())
        self._paired: dict[str, tuple[FileEntry, FileEntry]] = {}
        self.counted: dict[str, tuple[int, int]] = {}
        self.kept: tuple[dict[str, bytes], dict[str, bytes]] = ({}, {})
        self.redo: set[str] = set()
        """Paths to read again: met twice on one side, or dropped past the budget."""

    def offer(self, side: int, entry: FileEntry, data: bytes) -> None:
        path = entry.path
        if path in self._seen[side] or path in self.redo:
            self._forget(path)  # the last copy wins: settled by a targeted read at the end
            return
        self._seen[side].add(path)
        other = self._held[1 - side].pop(path, None)
        if other is not None:
            self._held_bytes -= len(other[1])
            held = (entry, data)
            old, new = (held, other) if side == OLD else (other, held)
            self.pair(old, new)
        elif path in self._seen[1 - side]:
            self.redo.add(path)  # the other side's copy went past the budget
        elif self._held_bytes + len(data) <= self._budget:
            self._held[side][path] = (entry, data)
            self._held_bytes += len(data)
        else:
            self.redo.add(path)

    def needs_bytes(
        self, old_files: Mapping[str, FileEntry], new_files: Mapping[str, FileEntry], path: str
    ) -> bool:
        """Whether anything is to be done with this path's bytes: line counts, kept bytes, or
        `on_changed` (by the indexes: unchanged files need none)."""
        old, new = old_files.get(path), new_files.get(path)
        if path in self._keep_paths:
            return True
        if new is not None and self._also_keep is not None and self._also_keep(new, old):
            return True
        if old is not None and new is not None:
            return old.git_oid != new.git_oid and not (old.is_binary or new.is_binary)
        return self._on_changed is not None

    def _forget(self, path: str) -> None:
        self.redo.add(path)
        for side in (OLD, NEW):
            held = self._held[side].pop(path, None)
            if held is not None:
                self._held_bytes -= len(held[1])
            self.kept[side].pop(path, None)
        self.counted.pop(path, None)
        self._paired.pop(path, None)

    def pair(self, old: _Held, new: _Held) -> None:
        (old_entry, old_data), (new_entry, new_data) = old, new
        path = new_entry.path
        self._paired[path] = (old_entry, new_entry)
        if self._also_keep is not None and self._also_keep(new_entry, old_entry):
            self.kept[NEW][path] = new_data
            self.kept[OLD][path] = old_data
        elif path in self._keep_paths:
            self.kept[NEW][path], self.kept[OLD][path] = new_data, old_data
        if old_entry.git_oid == new_entry.git_oid or old_entry.is_binary or new_entry.is_binary:
            return
        self.counted[path] = line_stats(old_data, new_data)
        if self._on_changed is not None:
            self._on_changed(old_entry, old_data)
            self._on_changed(new_entry, new_data)

    def finish(
        self, old_files: Mapping[str, FileEntry], new_files: Mapping[str, FileEntry]
    ) -> None:
        """Settle what was never paired, and check the pairs against the final indexes."""
        for path, (old_entry, new_entry) in self._paired.items():
            if old_files.get(path) != old_entry or new_files.get(path) != new_entry:
                self._forget(path)  # npm skipped a copy, or a later one took its place
        for side, files in ((OLD, old_files), (NEW, new_files)):
            for path, (entry, data) in self._held[side].items():
                if files.get(path) != entry:
                    self.redo.add(path)
                    continue
                self.settle_unpaired(side, entry, data, old_files, new_files)
        self._held = ({}, {})
        self._held_bytes = 0
        # a redone path may have been settled from a copy that is not the last
        for path in self.redo:
            self.kept[OLD].pop(path, None)
            self.kept[NEW].pop(path, None)

    def settle_unpaired(
        self,
        side: int,
        entry: FileEntry,
        data: bytes,
        old_files: Mapping[str, FileEntry],
        new_files: Mapping[str, FileEntry],
    ) -> None:
        """A file of one side whose other copy never came: added, removed, or unreadable."""
        path = entry.path
        if side == NEW:
            wanted = self._also_keep is not None and self._also_keep(entry, old_files.get(path))
            if wanted or path in self._keep_paths:
                self.kept[NEW][path] = data
        elif path in self._keep_paths:
            self.kept[OLD][path] = data
        on_other_side = path in (old_files if side == NEW else new_files)
        if self._on_changed is not None and not entry.is_binary and not on_other_side:
            self._on_changed(entry, data)


def _read_again(
    pairing: _Pairing,
    old: tuple[TarballSource, int | None, Mapping[str, FileEntry]],
    new: tuple[TarballSource, int | None, Mapping[str, FileEntry]],
    limits: Limits,
) -> None:
    """The paths the side-by-side read could not settle, read once more: the staged copies
    kept (within the budget), then the baseline's streamed past them. Paths still unsettled
    (past the budget again, or a source that cannot be rewound) keep no line counts."""
    (old_source, old_start, old_files), (new_source, new_start, new_files) = old, new
    paths = {path for path in pairing.redo if pairing.needs_bytes(old_files, new_files, path)}
    pairing.redo = paths
    if not paths or old_start is None or new_start is None:
        return
    for source, start in ((old_source, old_start), (new_source, new_start)):
        if not isinstance(source, bytes | bytearray | memoryview):
            source.seek(start)
    new_bytes = read_members(new_source, paths, limits)
    old_bytes: dict[str, bytes] = {}

    def on_old(entry: FileEntry, data: bytes) -> None:
        if old_files.get(entry.path) == entry:
            old_bytes[entry.path] = data  # the last copy is the one that counts
        if entry.path in new_bytes and entry.path in old_bytes:
            pairing.redo.discard(entry.path)
            pairing.pair((entry, data), (new_files[entry.path], new_bytes[entry.path]))
            del old_bytes[entry.path]

    stream_members(old_source, paths, on_old, limits)
    for path, data in old_bytes.items():
        if path not in new_files:
            pairing.redo.discard(path)
            pairing.settle_unpaired(OLD, old_files[path], data, old_files, new_files)
    for path, data in new_bytes.items():
        if path not in old_files:
            pairing.redo.discard(path)
            pairing.settle_unpaired(NEW, new_files[path], data, old_files, new_files)


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
