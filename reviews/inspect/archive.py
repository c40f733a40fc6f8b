"""Read an npm tarball as untrusted input: an index of its files, never a file on disk.

A tarball is attacker-controlled. This module streams it once, front to back, decompressing
in bounded steps and parsing tar headers itself, and refuses to go on past the caller's
`Limits` (total unpacked bytes, entries). Nothing is extracted: paths in
the archive are only strings. A refused archive still returns everything read up to that point
together with the reason (`ArchiveResult.refusal`); nothing here raises on bad input.

The index is what `npm install` writes, file for file: the headers are read with node-tar's
rules (pax and GNU long names applied before anything looks at the name, sizes in base-256,
the ustar prefix), paths go where pacote's `strip: 1` and node-tar's checks put them (absolute
paths lose their root, `..` paths are skipped, a `.gitignore` becomes `.npmignore`), and the
package folder is modelled as npm fills it (the last copy of a path wins, a file cannot go
where a folder with files is). Links, devices and fifos, which npm does not create, are
`Finding`s, never followed. Where npm's result depends on something the bytes do not settle,
the tarball is refused. The rules live in `tar_rules`; tests/inspect/test_npm_differential.py
checks them against the installed npm itself.

Why not `tarfile`: in the Python we run (3.11.7) its pax-header parsing has a quadratic regular
expression (CVE-2024-6232), it reads pax, GNU long-name and sparse headers whole into memory,
whatever their size, and it reads several corner cases differently from npm.

Typical use::

    result = read_archive(tarball_bytes, limits, keep_contents=True)
    if result.refusal: ...                      # partial index; say why
    for entry in result.files.values(): ...     # path, size, mode, sha256, is_binary, ...
    wanted = read_members(tarball_bytes, ["index.js"], limits)   # bytes of chosen files
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from types import ModuleType
from typing import BinaryIO, cast

from zlib_ng import zlib_ng as gunzip

from reviews.inspect.tar_rules import (
    MAX_DEPTH,
    META_TYPES,
    NAME_MAX,
    NEVER_WRITABLE,
    SURELY_WRITABLE,
    Extended,
    HeaderError,
    PackageFolder,
    Placement,
    RawHeader,
    UnreadableRecord,
    decode_header,
    install_path,
    merge_pax,
    parse_pax,
    posix_basename,
    set_long_name,
    strip_absolute_path,
)
from reviews.inspect.units import format_size

__all__ = [
    "DEFAULT_LIMITS",
    "ArchiveResult",
    "ArchiveWalk",
    "FileEntry",
    "Finding",
    "FindingKind",
    "Limits",
    "Refusal",
    "RefusalReason",
    "TarballSource",
    "WalkMemo",
    "count_lines",
    "format_size",
    "git_blob_oid",
    "is_binary",
    "longest_line",
    "read_archive",
    "read_members",
    "stream_members",
]

MiB = 1024 * 1024
BLOCK = 512
# git's rule: a NUL byte within the first 8000 bytes makes a file binary.
BINARY_SNIFF_BYTES = 8000
# node-tar ignores meta entries (pax and GNU long names) larger than this; so do we.
MAX_META_BYTES = 1 * MiB
MAX_FINDINGS = 1000
_MAX_SHOWN = 1000
_CHUNK = 1 * MiB
_NEWLINE = ord("\n")
_COMPRESSED_CHUNK = 64 * 1024

TarballSource = bytes | bytearray | memoryview | BinaryIO


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one tarball may cost. Callers pass values from settings."""

    max_total_bytes: int = 512 * MiB
    """Unpacked tar stream (headers and padding included); beyond it the archive is refused.

    This, not a compression ratio, is what bounds a decompression bomb: a ratio would refuse a
    small tarball padded with zeros, whose install script then goes unread."""
    max_entries: int = 50_000
    """Entries of any type except pax/GNU meta headers; beyond it the archive is refused."""
    max_entry_bytes: int = 64 * MiB
    """Larger files are indexed (hashed while streaming) but their bytes are never held."""
    max_kept_bytes: int = 256 * MiB
    """Budget for file contents held in memory by `keep_contents` and `read_members`."""


DEFAULT_LIMITS = Limits()


class FindingKind(StrEnum):
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    DEVICE = "device"
    FIFO = "fifo"
    ABSOLUTE_PATH = "absolute-path"
    PARENT_PATH = "parent-path"
    OUTSIDE_PACKAGE_FOLDER = "outside-package-folder"
    SEVERAL_TOP_FOLDERS = "several-top-folders"
    DUPLICATE_PATH = "duplicate-path"
    OVERSIZED_ENTRY = "oversized-entry"
    UNSUPPORTED_ENTRY = "unsupported-entry"
    SUSPICIOUS_NAME = "suspicious-name"
    PATH_TOO_LONG = "path-too-long"
    BLOCKED_PATH = "blocked-path"
    """A file npm cannot write because a file or a folder with files is in its way."""
    PATH_COLLISION = "path-collision"
    """Two paths that differ only in letter case or Unicode normalisation (NFC/NFD): one path
    on macOS and Windows, so they install differently there."""
    MANY_FINDINGS = "many-findings"
    """The last finding when more than `MAX_FINDINGS` were met; says how many were left out."""


@dataclass(frozen=True, slots=True)
class Finding:
    """Something in the archive that is not a plain file to index, or deserves a look."""

    kind: FindingKind
    path: str
    """The name as stored in the archive (not stripped: for `..` or absolute paths the
    stripped form is meaningless)."""
    detail: str


class RefusalReason(StrEnum):
    TOTAL_SIZE = "total-size"
    ENTRIES = "entries"
    CORRUPT = "corrupt"
    TRUNCATED = "truncated"
    EMPTY = "empty"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why reading stopped early; the index holds what was read before."""

    reason: RefusalReason
    message: str


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One regular file of the package, path relative to the package folder."""

    path: str
    size: int
    mode: int
    sha256: str
    git_oid: str
    """The git blob id (sha1 of `blob <size>\\0` + content), for pygit2 and `git` tools."""
    is_binary: bool
    line_count: int | None
    """Lines as git counts them (split on `\\n` only); None for binary files."""
    longest_line: int | None
    """Length in bytes of the longest line; None for binary files."""
    oversized: bool = False
    """Larger than `Limits.max_entry_bytes`: indexed, but its bytes are never held."""

    @property
    def is_executable(self) -> bool:
        return bool(self.mode & 0o111)


@dataclass(slots=True)
class ArchiveResult:
    """The index of a tarball, what was found suspicious in it, and whether it was read whole."""

    files: dict[str, FileEntry] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    refusal: Refusal | None = None
    contents: dict[str, bytes] = field(default_factory=dict)
    """File bytes, when asked for with `keep_contents` (or by `read_members`)."""
    contents_complete: bool = False
    """True when `contents` holds every file that was asked for (none over a budget)."""
    top_folders: tuple[str, ...] = ()
    unpacked_bytes: int = 0
    compressed_bytes: int = 0

    @property
    def complete(self) -> bool:
        return self.refusal is None

    @property
    def refused(self) -> str | None:
        """The human sentence saying why reading stopped, or None when it did not."""
        return self.refusal.message if self.refusal else None

    @property
    def total_size(self) -> int:
        return sum(entry.size for entry in self.files.values())


def read_archive(
    source: TarballSource,
    limits: Limits = DEFAULT_LIMITS,
    *,
    keep_contents: bool | Collection[str] | Callable[[FileEntry], bool] = False,
) -> ArchiveResult:
    """Index a gzip'd (or plain) tarball without writing anything anywhere.

    `keep_contents` also keeps file bytes in `result.contents`, while they fit
    `limits.max_kept_bytes`: `True` for every file, a collection of paths for those, or a
    predicate called with each file's finished index entry (so it can look at the digest, e.g.
    to keep only files that differ from a baseline). A file object is read from its current
    position to the end and not closed.
    """
    keep: Callable[[FileEntry], bool] | None
    if keep_contents is True:
        keep = _keep_all
    elif keep_contents is False:
        keep = None
    elif callable(keep_contents):
        keep = keep_contents
    elif isinstance(keep_contents, str):
        keep = _keep_paths(frozenset([keep_contents]))
    else:
        wanted = frozenset(keep_contents)
        keep = _keep_paths(wanted)
    return _Reader(_as_stream(source), limits, keep).run()


def read_members(
    source: TarballSource, paths: Iterable[str], limits: Limits = DEFAULT_LIMITS
) -> dict[str, bytes]:
    """The bytes of the chosen files (paths as in the index); absent ones are left out.

    Files over `limits.max_entry_bytes`, or past the `max_kept_bytes` budget, are left out too.
    When a path occurs twice in the archive, the last copy wins, as it would on extraction.
    """
    wanted = frozenset(paths)
    if not wanted:
        return {}
    # Only the chosen files are hashed and gathered; the others are skipped through.
    reader = _Reader(_as_stream(source), limits, _keep_paths(wanted), only=wanted)
    return reader.run().contents


def stream_members(
    source: TarballSource,
    paths: Iterable[str],
    on_member: Callable[[FileEntry, bytes], None],
    limits: Limits = DEFAULT_LIMITS,
) -> Refusal | None:
    """Hand each chosen file's index entry and bytes to `on_member` as soon as it is read.

    One file is held at a time, so no budget applies beyond `limits.max_entry_bytes` (larger
    files are skipped). Returns why reading stopped early, or None. A path that occurs twice
    is handed over twice, in archive order (the last one is what extraction keeps).
    """
    wanted = frozenset(paths)
    if not wanted:
        return None
    reader = _Reader(_as_stream(source), limits, _keep_paths(wanted), only=wanted, sink=on_member)
    return reader.run().refusal


@dataclass(slots=True)
class WalkMemo:
    """What walks of related archives (two versions of a package) share: each content's
    measures by SHA-256, so an unchanged file is counted once."""

    measures: dict[str, _Measure] = field(default_factory=dict)


class ArchiveWalk:
    """`read_archive` one entry at a time, so two archives can be read side by side.

    `on_file(entry, data)` gets every file's bytes as soon as it is read (files over
    `limits.max_entry_bytes` excepted), one file held at a time; `step()` reads one more entry
    and says whether there was one; `result` is the whole `ArchiveResult` once `step()` has
    returned False. A path that occurs twice is handed over twice, in archive order. Walks
    given the same `shared` object measure (lines, longest line) a content met by either once.
    """

    def __init__(
        self,
        source: TarballSource,
        on_file: Callable[[FileEntry, bytes], None],
        limits: Limits = DEFAULT_LIMITS,
        shared: WalkMemo | None = None,
    ) -> None:
        measures = None if shared is None else shared.measures
        self._reader = _Reader(
            _as_stream(source), limits, _keep_all, sink=on_file, measures=measures
        )

    def step(self) -> bool:
        return self._reader.step()

    @property
    def result(self) -> ArchiveResult:
        """The whole result (reading what is left first)."""
        return self._reader.run()


def is_binary(data: bytes) -> bool:
    """git's rule: a NUL byte in the first 8000 bytes."""
    return b"\0" in data[:BINARY_SNIFF_BYTES]


def count_lines(data: bytes) -> int:
    """Lines as git counts them: `\\n`-terminated, plus an unterminated last one."""
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def git_blob_oid(data: bytes) -> str:
    return _git_blob_oid(data, len(data))


def _git_blob_oid(data: bytes, size: int) -> str:
    digest = hashlib.sha1(b"blob %d\0" % size, usedforsecurity=False)
    digest.update(data)
    return digest.hexdigest()


def _keep_all(_entry: FileEntry) -> bool:
    return True


def _keep_paths(paths: frozenset[str]) -> Callable[[FileEntry], bool]:
    return lambda entry: entry.path in paths


def _as_stream(source: TarballSource) -> BinaryIO:
    if isinstance(source, bytes | bytearray | memoryview):
        return io.BytesIO(source)
    return source


class _Stop(Exception):
    """Raised inside the reader to stop at once; carries the refusal to report."""

    def __init__(self, reason: RefusalReason, message: str) -> None:
        super().__init__(message)
        self.refusal = Refusal(reason, message)


_GZIP_MAGIC = b"\x1f\x8b"
# zlib-ng's inflate: the same algorithm and checks as zlib, 2.5-3x faster here (README,
# "Analysis and diffs"); its stub types `error` as an instance.
_GZIP_ERROR = cast(type[Exception], gunzip.error)


class _Inflater:
    """The tar stream out of a gzip'd (or plain) source, in bounded steps, counted.

    Each decompression step yields at most `_CHUNK` bytes, so a bomb never allocates more than
    that before the total-size check sees it. Several gzip members back to back are
    read as one stream; after the last, zero bytes are ignored and anything else must be another
    member, as Node's gunzip (npm's) has it.
    """

    def __init__(self, source: BinaryIO, limits: Limits) -> None:
        self._source = source
        self._limits = limits
        # decompressed pieces not read yet, whole, and how far the first one is read: a read
        # within one piece is one slice (or the piece itself), nothing is copied to a buffer
        self._pieces: deque[bytes] = deque()
        self._offset = 0
        self._buffered = 0  # bytes in `_pieces` past `_offset`
        self._raw = b""  # compressed bytes read from the source, not yet given to zlib
        self._zlib: gunzip._Decompress | None = None
        self._eof = False
        self.fed = 0  # source bytes given to zlib (or passed through, for a plain tar)
        self.produced = 0

    def start(self) -> None:
        self._raw = self._source.read(len(_ZSTD_MAGIC))
        if not self._raw:
            raise _Stop(RefusalReason.EMPTY, "The tarball is empty.")
        if self._raw.startswith(_GZIP_MAGIC):
            self._zlib = gunzip.decompressobj(16 + gunzip.MAX_WBITS)
        elif self._raw == _ZSTD_MAGIC:
            # npm's tar unpacks zstd too; npm itself never writes it, and we do not read it
            raise _Stop(RefusalReason.CORRUPT, "The tarball is zstd-compressed; not read.")

    def read(self, size: int) -> bytes:
        """Exactly `size` bytes, or fewer at the end of the stream."""
        while self._buffered < size and self._fill():
            pass
        size = min(size, self._buffered)
        if not size:
            return b""
        self._buffered -= size
        piece, start = self._pieces[0], self._offset
        end = start + size
        if end < len(piece):
            self._offset = end
            return piece[start:end]
        if end == len(piece):
            self._pieces.popleft()
            self._offset = 0
            return piece if start == 0 else piece[start:]
        return self._read_across(size)

    def _read_across(self, size: int) -> bytes:
        """`size` bytes that begin in the first piece and end in a later one."""
        parts = []
        while size:
            piece, start = self._pieces[0], self._offset
            taken = min(size, len(piece) - start)
            parts.append(piece[start : start + taken])
            size -= taken
            if start + taken == len(piece):
                self._pieces.popleft()
                self._offset = 0
            else:
                self._offset = start + taken
        return b"".join(parts)

    def chunks(self, size: int) -> Iterator[bytes]:
        """`size` bytes as a series of chunks; stops the reader if the stream ends first."""
        remaining = size
        while remaining:
            chunk = self.read(min(remaining, _CHUNK))
            if not chunk:
                raise _Stop(RefusalReason.TRUNCATED, "The tarball ends in the middle of an entry.")
            remaining -= len(chunk)
            yield chunk

    def skip(self, size: int) -> None:
        """Pass `size` bytes (without copying them); stops the reader if the stream ends first."""
        while size:
            if not self._buffered and not self._fill():
                raise _Stop(RefusalReason.TRUNCATED, "The tarball ends in the middle of an entry.")
            piece, start = self._pieces[0], self._offset
            taken = min(size, len(piece) - start)
            size -= taken
            self._buffered -= taken
            if start + taken == len(piece):
                self._pieces.popleft()
                self._offset = 0
            else:
                self._offset = start + taken

    def drain(self) -> None:
        """Decompress the rest and drop it: npm's gunzip fails on a corrupt end all the same."""
        while self.read(_CHUNK):
            pass

    def _fill(self) -> bool:
        """Add the next decompressed piece; False at the end of the stream."""
        while not self._eof:
            out = self._next_piece()
            if out:
                self._pieces.append(out)
                self._buffered += len(out)
                self._count(len(out))
                return True
        return False

    def _next_piece(self) -> bytes:
        if self._zlib is None:
            data = self._raw or self._source.read(_CHUNK)
            self._raw = b""
            self.fed += len(data)
            self._eof = not data
            return data
        if self._zlib.eof:
            self._next_member()
            return b""
        data = self._zlib.unconsumed_tail
        if not data:
            data = self._raw or self._source.read(_COMPRESSED_CHUNK)
            self._raw = b""
            if not data:
                raise _Stop(RefusalReason.TRUNCATED, "The gzip stream ends early.")
            self.fed += len(data)
        try:
            out = self._zlib.decompress(data, _CHUNK)
        except _GZIP_ERROR as error:
            raise _Stop(RefusalReason.CORRUPT, f"The gzip stream is corrupt ({error}).") from None
        if self._zlib.eof:
            self.fed -= len(self._zlib.unused_data)
        return out

    def _next_member(self) -> None:
        assert self._zlib is not None
        rest = self._zlib.unused_data
        while len(rest) < 1:
            more = self._source.read(_COMPRESSED_CHUNK)
            if not more:
                break
            rest += more
        # Node's gunzip reads any byte after a member as the start of another one, except a
        # zero byte, after which it ignores the rest (padding).
        if rest[:1] not in (b"", b"\0"):
            self._raw = rest
            self._zlib = gunzip.decompressobj(16 + gunzip.MAX_WBITS)
        else:
            self._eof = True

    def _count(self, produced: int) -> None:
        self.produced += produced
        limits = self._limits
        if self.produced > limits.max_total_bytes:
            raise _Stop(
                RefusalReason.TOTAL_SIZE,
                f"The tarball unpacks to more than {format_size(limits.max_total_bytes)}.",
            )


_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# node-tar ignores meta entries (pax and GNU long names) larger than this; so do we.
_LINK_TYPES = frozenset({"1", "2"})
_FILE_TYPES = frozenset({"0", "7"})  # node-tar's File (NUL reads as '0') and ContiguousFile
_TYPE_FINDINGS = {
    "2": (FindingKind.SYMLINK, "symbolic link to {link}; npm does not create links"),
    "1": (FindingKind.HARDLINK, "hard link to {link}; npm does not create links"),
    "3": (FindingKind.DEVICE, "character device"),
    "4": (FindingKind.DEVICE, "block device"),
    "6": (FindingKind.FIFO, "named pipe (fifo)"),
}
# Control characters, and U+FFFD where bytes were not UTF-8
_UNSAFE_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\ufffd]")
_HIDES_WHAT_FOLLOWS = "npm would skip it and read on from the next block, which can hide files"


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN else f"{text[:_MAX_SHOWN]}… ({len(text):,} characters)"


def _padding(size: int) -> int:
    return -size % BLOCK


def _unreadable(what: str) -> _Stop:
    return _Stop(RefusalReason.CORRUPT, f"{what}; {_HIDES_WHAT_FOLLOWS}. Not shown.")


def _unsure(what: str) -> _Stop:
    return _Stop(
        RefusalReason.CORRUPT,
        f"{what}: npm may install it differently from what a reader of the bytes sees, so "
        "the tarball is not shown.",
    )


class _Reader:
    """One pass over one tarball, read as npm extracts it (see `tar_rules`)."""

    def __init__(
        self,
        source: BinaryIO,
        limits: Limits,
        keep: Callable[[FileEntry], bool] | None,
        *,
        only: frozenset[str] | None = None,
        sink: Callable[[FileEntry, bytes], None] | None = None,
        measures: dict[str, _Measure] | None = None,
    ) -> None:
        self._inflater = _Inflater(source, limits)
        # by SHA-256: a content met before (a copy, or the other side's) is not counted again
        self._measures: dict[str, _Measure] = {} if measures is None else measures
        self._limits = limits
        self._keep = keep
        self._only = only  # paths to read; the others are skipped without being indexed
        self._sink = sink  # takes kept files one by one instead of `result.contents`
        self._kept = 0
        self._entries = 0
        self._top_folders: dict[str, None] = {}
        self._finding_count = 0
        self._result = ArchiveResult(contents_complete=keep is not None)
        self._ex = Extended()  # node-tar's EX: pax `x` and GNU long names, for the next entry
        self._gex = Extended()  # GEX: pax `g`, for every entry after it
        self._saw_entry = False  # node-tar fails a tarball in which it finds no valid entry
        self._folder = PackageFolder()
        self._npmignores: set[str] = set()
        self._walk = self._steps()

    def _finding(self, kind: FindingKind, path: str, detail: str) -> None:
        """Record a finding; names and details are cut, and the list is bounded."""
        self._finding_count += 1
        if self._finding_count <= MAX_FINDINGS:
            self._result.findings.append(Finding(kind, _cut(path), _cut(detail)))

    def run(self) -> ArchiveResult:
        """Read to the end (what is left of it, after `step()`s) and give the result."""
        for _ in self._walk:
            pass
        return self._result

    def step(self) -> bool:
        """Read one more entry; False once the archive is read to its end."""
        return next(self._walk, False)

    def _steps(self) -> Iterator[bool]:
        """Read the archive, pausing after each entry; `_result` is whole once exhausted."""
        result = self._result
        try:
            self._inflater.start()
            for _ in self._read_entries():
                yield True
        except _Stop as stop:
            result.refusal = stop.refusal
        except (OSError, ValueError, OverflowError) as error:
            # Input-driven errors the parsers above should already prevent; the partial index
            # is still worth returning.
            result.refusal = Refusal(
                RefusalReason.CORRUPT, f"The tarball could not be read ({error})."
            )
        result.unpacked_bytes = self._inflater.produced
        result.compressed_bytes = self._inflater.fed
        result.top_folders = tuple(self._top_folders)
        if len(self._top_folders) > 1:
            names = _cut(", ".join(name or "/" for name in self._top_folders))
            detail = (
                f"entries sit under several top folders ({names}); npm strips the first "
                "folder of every entry, so their files merge into one package"
            )
            result.findings.append(Finding(FindingKind.SEVERAL_TOP_FOLDERS, "", detail))
        self._report_collisions()
        if self._finding_count > MAX_FINDINGS:
            left_out = f"{self._finding_count - MAX_FINDINGS:,} more findings not listed"
            result.findings.append(Finding(FindingKind.MANY_FINDINGS, "", left_out))

    def _read_entries(self) -> Iterator[None]:
        inflater = self._inflater
        saw_null_block = False
        while True:
            block = inflater.read(BLOCK)
            if len(block) < BLOCK:
                break  # npm ignores a last partial block and a missing end-of-archive marker
            header = self._decode(block)
            if header.null_block:
                if saw_null_block:
                    inflater.drain()  # npm reads no further, but gunzip checks the rest
                    break
                saw_null_block = True
                continue
            saw_null_block = False
            self._check(header)
            if header.type in META_TYPES:
                self._read_meta(header)
            else:
                self._read_entry(header)
                yield
        if not self._saw_entry:
            if inflater.produced < BLOCK:
                raise _Stop(RefusalReason.TRUNCATED, "The tarball ends in the middle of a header.")
            raise _Stop(RefusalReason.EMPTY, "The tarball holds no entry npm can read.")

    def _decode(self, block: bytes) -> RawHeader:
        try:
            return decode_header(block, self._ex, self._gex)
        except HeaderError as error:
            raise _unreadable(f"A tar header is unreadable to npm ({error})") from None

    def _check(self, header: RawHeader) -> None:
        """node-tar's checks: a header failing one is skipped alone, its body read as headers."""
        if not header.checksum_ok:
            raise _Stop(
                RefusalReason.CORRUPT, "A tar header has a wrong checksum: the file is corrupt."
            )
        if not header.path:
            raise _unreadable("A tar header has no name")
        is_link = header.type in _LINK_TYPES
        if is_link and not header.linkname:
            raise _unreadable("A link entry has no target in its own header")
        if not is_link and header.type not in ("g", "x") and header.linkname:
            raise _unreadable("A tar header that is not a link names a link target")
        self._saw_entry = True

    def _read_meta(self, header: RawHeader) -> None:
        # `ReadEntry` takes its size from pax `g`, then `x`, then the header: that size decides
        # whether node-tar reads the body, but the header's own size is how much it reads.
        size = int(self._gex.values.get("size", self._ex.values.get("size", header.size)))
        body = header.size + _padding(header.size)
        if size > MAX_META_BYTES:
            self._finding(
                FindingKind.UNSUPPORTED_ENTRY,
                header.path,
                f"extended header of {format_size(size)} ignored (npm ignores meta "
                f"entries over {format_size(MAX_META_BYTES)})",
            )
            self._inflater.skip(body)
            return
        if size == 0:
            if header.size:
                raise _unreadable("An extended header's size is overridden with 0 by another")
            return
        data = b"".join(self._inflater.chunks(header.size))
        self._inflater.skip(_padding(header.size))
        try:
            if header.type in ("x", "X"):
                merge_pax(self._ex, parse_pax(data))
            elif header.type == "g":
                merge_pax(self._gex, parse_pax(data))
            else:
                set_long_name(self._ex, "linkpath" if header.type == "K" else "path", data)
        except UnreadableRecord as error:
            raise _unsure(f"The tarball has {error}") from None

    def _read_entry(self, header: RawHeader) -> None:
        self._entries += 1
        if self._entries > self._limits.max_entries:
            raise _Stop(
                RefusalReason.ENTRIES,
                f"The tarball has more than {self._limits.max_entries:,} entries.",
            )
        ex = self._ex
        if ex.values or ex.unsure or ex.unknowable:
            self._ex = Extended()  # else the empty one serves again
        # `ReadEntry` takes the pax/GNU path as it is, without the ustar prefix
        path = str(ex.values["path"]) if "path" in ex.values else header.path
        body = header.size + _padding(header.size)
        if header.type in _FILE_TYPES:
            self._read_file_entry(header, path, ex)
            return
        if header.type in _TYPE_FINDINGS:
            kind, text = _TYPE_FINDINGS[header.type]
            link = self._gex.values.get("linkpath", ex.values.get("linkpath", header.linkname))
            self._finding(kind, path, text.format(link=link))
        elif header.type != "5":  # folders: npm makes the ones its files need, no others
            self._finding(
                FindingKind.UNSUPPORTED_ENTRY,
                path,
                f"entry of unsupported type {header.flag!r} ignored (npm ignores it too)",
            )
        self._inflater.skip(body)

    def _read_file_entry(self, header: RawHeader, path: str, ex: Extended) -> None:
        self._check_pending(header, path, ex)
        target = self._target(path)
        placement = None if target is None else self._place(path, target, header)
        if target is None or placement is None:
            self._inflater.skip(header.size + _padding(header.size))
            return
        self._top_folders.setdefault(path.split("/", 1)[0])
        if self._only is not None and target not in self._only:
            self._inflater.skip(header.size + _padding(header.size))
            return
        self._read_file(header, target, placement)
        self._inflater.skip(_padding(header.size))

    def _check_pending(self, header: RawHeader, path: str, ex: Extended) -> None:
        """Refuse where npm's path or link target for this file depends on stream chunking."""
        gex = self._gex
        settled = not (ex.unsure or ex.unknowable or gex.unsure or gex.unknowable)
        if settled and not ex.values.get("linkpath") and not gex.values.get("linkpath"):
            return  # nothing pending that could differ: the usual case
        if "path" in ex.unknowable:
            raise _unsure(f"The GNU long name {_cut(path)!r} holds non-ASCII bytes")
        alternatives = {
            header.own_path if other is None else other for other in ex.unsure.get("path", [])
        }
        if alternatives - {path}:
            raise _unsure(
                f"The pax path {_cut(path)!r} holds non-ASCII characters and the header's own "
                f"name ({_cut(header.own_path)!r}) differs"
            )
        for pending in (ex, self._gex):
            targets = [pending.values.get("linkpath", ""), *pending.unsure.get("linkpath", [])]
            if "linkpath" in pending.unknowable or any(targets):
                raise _unsure(f"The file {_cut(path)!r} carries a link target")

    def _target(self, path: str) -> str | None:
        """Where pacote and node-tar write this file, or None (with a finding) if nowhere."""
        if _UNSAFE_CHARACTERS.search(path):
            self._finding(
                FindingKind.SUSPICIOUS_NAME,
                path,
                "the name holds control characters or bytes that are not UTF-8",
            )
        renamed = self._gitignore_as_npmignore(path)
        if renamed is None:
            return None  # a `.gitignore` after a `.npmignore`: pacote leaves it out
        path = renamed
        where = install_path(path)
        if where.path is None:
            self._report_not_installed(path, where.skipped)
            return None
        if where.root_stripped or strip_absolute_path(path)[0]:
            self._finding(
                FindingKind.ABSOLUTE_PATH,
                path,
                f"absolute path: npm drops its first part and its root and installs it as "
                f"{where.path}",
            )
        if "\0" in where.path:
            raise _unsure(f"The name {_cut(path)!r} keeps a NUL byte after npm's clean-up")
        length = len(where.path) if where.path.isascii() else len(where.path.encode("utf-8"))
        if SURELY_WRITABLE < length <= NEVER_WRITABLE:
            raise _unsure(
                f"The path {_cut(where.path)!r} is {length:,} bytes long, which installs or "
                "not depending on the folder npm installs into"
            )
        return where.path

    def _gitignore_as_npmignore(self, path: str) -> str | None:
        """pacote's filter: a `.gitignore` installs as `.npmignore`, unless one came before."""
        base = posix_basename(path)
        if base == ".npmignore":
            self._npmignores.add(path)
        elif base == ".gitignore":
            renamed = re.sub(r"\.gitignore\Z", ".npmignore", path)
            if renamed in self._npmignores:
                return None
            return renamed
        return path

    def _report_not_installed(self, path: str, why: str) -> None:
        if ".." in path.replace("\\", "/").split("/"):
            self._finding(FindingKind.PARENT_PATH, path, "path with '..'; npm skips it")
        elif why == "depth":
            self._finding(
                FindingKind.PATH_TOO_LONG,
                path,
                f"nested deeper than {MAX_DEPTH:,} folders; npm skips it",
            )
        else:
            self._finding(
                FindingKind.OUTSIDE_PACKAGE_FOLDER,
                path,
                "file outside the package folder; npm does not install it",
            )

    def _place(self, path: str, target: str, header: RawHeader) -> Placement | None:
        placement = self._folder.place(target, header.type, _file_mode(header))
        if placement.written:
            return placement
        if placement.outcome == "too-long":
            detail = f"a part of this path is over {NAME_MAX} bytes or the whole over 4 KiB"
            self._finding(FindingKind.PATH_TOO_LONG, path, f"{detail}; npm cannot write it")
        else:
            where = (
                "a file sits where one of its folders"
                if placement.outcome == "under-file"
                else "a folder holding files sits where it"
            )
            self._finding(
                FindingKind.BLOCKED_PATH, path, f"{where} must go, so npm skips this file"
            )
        return None

    def _read_file(self, header: RawHeader, path: str, placement: Placement) -> None:
        limits, result, size = self._limits, self._result, header.size
        oversized = size > limits.max_entry_bytes
        if oversized:
            self._finding(
                FindingKind.OVERSIZED_ENTRY,
                path,
                f"{format_size(size)} file, over the {format_size(limits.max_entry_bytes)} "
                "limit for one file: listed and hashed, never loaded",
            )
        within_budget = self._sink is not None or (
            self._kept - len(result.contents.get(path, b"")) + size <= limits.max_kept_bytes
        )
        # Bytes are gathered (one file at a time) before `keep` sees the finished entry.
        gather = self._keep is not None and not oversized and within_budget

        if size <= _CHUNK or gather:  # the whole file at once: hashed and measured in one go
            data = self._inflater.read(size)
            if len(data) < size:
                raise _Stop(RefusalReason.TRUNCATED, "The tarball ends in the middle of an entry.")
            sha256 = hashlib.sha256(data).hexdigest()
            git_oid = _git_blob_oid(data, size)
            measure = self._measures.get(sha256)
            if measure is None:
                measure = self._measures[sha256] = _measure_whole(data)
        else:
            data = b""
            sha256, git_oid, measure = self._read_large_file(size)
        binary, line_count, longest_line = measure

        mode = _file_mode(header)
        if placement.outcome in ("replaced", "reused"):
            detail = (
                "the archive holds this path more than once; the last copy wins on "
                "extraction and is the one listed"
            )
            if placement.kept_mode is not None and placement.kept_mode != mode:
                mode = placement.kept_mode
                detail += f" (npm writes it over the first copy, which keeps mode {mode:o})"
            self._finding(FindingKind.DUPLICATE_PATH, path, detail)
            self._kept -= len(result.contents.pop(path, b""))
        # path, size, mode, sha256, git_oid, is_binary, line_count, longest_line, oversized
        entry = FileEntry(
            path, size, mode, sha256, git_oid, binary, line_count, longest_line, oversized
        )
        result.files[path] = entry
        if self._keep is None or not self._keep(entry):
            return
        if gather and self._sink is not None:
            self._sink(entry, data)
        elif gather:
            result.contents[path] = data
            self._kept += size
        else:
            result.contents_complete = False

    def _read_large_file(self, size: int) -> tuple[str, str, _Measure]:
        """A file over one chunk whose bytes are not kept: hashed and counted as it streams."""
        sha256 = hashlib.sha256()
        git_oid = hashlib.sha1(b"blob %d\0" % size, usedforsecurity=False)
        lines = _LineCounter()
        binary: bool | None = None
        for chunk in self._inflater.chunks(size):
            sha256.update(chunk)
            git_oid.update(chunk)
            if binary is None:
                binary = is_binary(chunk)  # the first chunk holds the first 8000 bytes
            if not binary:
                lines.feed(chunk)
        measure = _BINARY if binary else (False, lines.count, lines.longest)
        return sha256.hexdigest(), git_oid.hexdigest(), measure

    def _report_collisions(self) -> None:
        """Paths that differ only in case or Unicode normalisation: one path on macOS/Windows."""
        seen: dict[str, str] = {}
        for path in self._folder.nodes:
            # ASCII is its own NFD, and lower then upper case is upper case alone
            key = path.upper() if path.isascii() else _fold(path)
            first = seen.setdefault(key, path)
            if first != path:
                self._finding(
                    FindingKind.PATH_COLLISION,
                    path,
                    f"the same path as {_cut(first)} on macOS and Windows (it differs only in "
                    "letter case or Unicode normalisation): there npm writes one over the other",
                )


def _fold(path: str) -> str:
    return unicodedata.normalize("NFD", path).lower().upper()


def _file_mode(header: RawHeader) -> int:
    # node-tar keeps the low 12 bits (of a negative base-256 mode too); an unreadable mode
    # becomes pacote's default, which has no executable bit
    return (header.mode or 0) & 0o7777


_Measure = tuple[bool, int | None, int | None]
"""A file's `is_binary`, `line_count` and `longest_line`: what its bytes alone decide."""
_BINARY: _Measure = (True, None, None)


_SPLIT_BELOW = 4 * 1024
_BLOCK = 1 * MiB
"""At most this much text is handed to numpy at once: its newline offsets take 8 bytes each."""

_numpy: ModuleType | None = None


def count_lines_with_numpy() -> None:
    """Count the lines of larger texts with numpy from now on (this process).

    numpy finds newlines 2 to 6 times as fast as the pure-Python count (DIFF_ENGINE.md), but
    importing it costs about 0.1 s: long-running workers call this once at start, and a
    one-off process (a CLI, a cold benchmark) keeps the pure-Python count. Both give the same
    figures (tests/inspect/test_line_counter.py runs every case through both)."""
    global _numpy
    import numpy

    _numpy = numpy


def longest_line(data: bytes) -> int:
    """The length of the longest `\\n`-separated line."""
    if len(data) < _SPLIT_BELOW:
        return max(map(len, data.split(b"\n")))
    if _numpy is not None:
        return _count_in_blocks(data).longest
    return _longest_by_windows(data)


def _longest_by_windows(data: bytes) -> int:
    """The longest line without numpy, crossed in windows as long as the longest line met so far.

    A newline in the window (its last one, found by one `rfind`) means no line ends there
    longer than that, and the next window starts after it; a window without one holds a
    longer line, measured by one `find`. Steps are as long as the longest line, not as the
    average one: in a bundle with a few long lines that is a few hundred steps where splitting
    makes a bytes object per line (3.5 to 9 times faster on typescript and react-dom, up to 1.3
    times slower where every line is about as long as the longest).
    """
    size = len(data)
    longest = start = 0  # `start` is always where a line starts
    while start + longest < size:
        last = data.rfind(b"\n", start, start + longest + 1)
        if last >= 0:
            start = last + 1
            continue
        end = data.find(b"\n", start + longest + 1)
        if end < 0:
            end = size
        longest = end - start
        start = end + 1
    return longest


def _measure_whole(data: bytes) -> _Measure:
    if data.find(b"\0", 0, BINARY_SNIFF_BYTES) >= 0:  # `is_binary`, without copying a slice
        return _BINARY
    if not data:
        return False, 0, 0
    if len(data) < _SPLIT_BELOW:  # one split gives both
        lines = data.split(b"\n")
        newlines, longest = len(lines) - 1, max(map(len, lines))
    elif _numpy is not None:
        counted = _count_in_blocks(data)
        return False, counted.count, counted.longest
    else:
        newlines, longest = data.count(b"\n"), _longest_by_windows(data)
    return False, newlines + (0 if data.endswith(b"\n") else 1), longest


def _count_in_blocks(data: bytes) -> _LineCounter:
    counter = _LineCounter()
    view = memoryview(data)
    for start in range(0, len(data), _BLOCK):
        counter.feed(view[start : start + _BLOCK])
    return counter


_Newlines = tuple[int, int, int, int]
"""A chunk's newlines: how many, the first and last offsets, the longest line between them."""


def _newlines_by_numpy(chunk: bytes | memoryview, _record: int) -> _Newlines | None:
    assert _numpy is not None
    offsets = (_numpy.frombuffer(chunk, dtype=_numpy.uint8) == _NEWLINE).nonzero()[0]
    if not offsets.size:
        return None
    inner = int((offsets[1:] - offsets[:-1]).max()) - 1 if offsets.size > 1 else 0
    return int(offsets.size), int(offsets[0]), int(offsets[-1]), inner


def _newlines_by_find(chunk: bytes | memoryview, record: int) -> _Newlines | None:
    chunk = bytes(chunk)  # a no-op for bytes; memoryview has no `find`
    first = chunk.find(b"\n")
    if first < 0:
        return None
    last = chunk.rfind(b"\n")
    # a line between the first and last newline can only beat the record if the span can
    inner = _longest_by_windows(chunk[first + 1 : last]) if last - first - 1 > record else 0
    return chunk.count(b"\n"), first, last, inner


class _LineCounter:
    """Counts `\\n`-separated lines and the longest one over a stream of chunks."""

    __slots__ = ("_current", "_ends_with_newline", "_longest", "_newlines", "_seen")

    def __init__(self) -> None:
        self._newlines = 0
        self._current = 0  # length of the line still open at the end of the last chunk
        self._longest = 0
        self._seen = False
        self._ends_with_newline = False

    def feed(self, chunk: bytes | memoryview) -> None:
        if not chunk:
            return
        self._seen = True
        self._ends_with_newline = chunk[-1] == _NEWLINE
        scan = _newlines_by_find if _numpy is None else _newlines_by_numpy
        found = scan(chunk, self._longest)
        if found is None:
            self._current += len(chunk)
            return
        newlines, first, last, inner = found
        self._newlines += newlines
        self._longest = max(self._longest, self._current + first, inner)
        self._current = len(chunk) - last - 1

    @property
    def count(self) -> int:
        if not self._seen:
            return 0
        return self._newlines + (0 if self._ends_with_newline else 1)

    @property
    def longest(self) -> int:
        return max(self._longest, self._current)
