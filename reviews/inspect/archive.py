"""Read an npm tarball as untrusted input: an index of its files, never a file on disk.

A tarball is attacker-controlled. This module streams it once, front to back, decompressing
in bounded steps and parsing tar headers itself, and refuses to go on past the caller's
`Limits` (total unpacked bytes, entries). Nothing is extracted: paths in
the archive are only strings. Links, devices, fifos, absolute and `..` paths are recorded as
`Finding`s, never followed. A refused archive still returns everything read up to that point
together with the reason (`ArchiveResult.refusal`); nothing here raises on bad input.

Why not `tarfile`: in the Python we run (3.11.7) its pax-header parsing has a quadratic regular
expression (CVE-2024-6232) and it reads pax, GNU long-name and sparse headers whole into memory,
whatever their size. The subset npm needs (ustar, pax `x`/`g`, GNU `L`/`K`) is small, and parsing
it here keeps every read bounded. Paths follow npm's extraction (node-tar with `strip: 1`):
the first path component is dropped whatever its name, top-level entries are not installed.

Typical use::

    result = read_archive(tarball_bytes, limits, keep_contents=True)
    if result.refusal: ...                      # partial index; say why
    for entry in result.files.values(): ...     # path, size, mode, sha256, is_binary, ...
    wanted = read_members(tarball_bytes, ["index.js"], limits)   # bytes of chosen files
"""

from __future__ import annotations

import hashlib
import io
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import BinaryIO

__all__ = [
    "DEFAULT_LIMITS",
    "ArchiveResult",
    "FileEntry",
    "Finding",
    "FindingKind",
    "Limits",
    "Refusal",
    "RefusalReason",
    "TarballSource",
    "count_lines",
    "format_size",
    "git_blob_oid",
    "is_binary",
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
# Linux's PATH_MAX: a longer path cannot be extracted anywhere npm runs.
MAX_PATH_CHARS = 4096
MAX_FINDINGS = 1000
_MAX_SHOWN = 1000
_CHUNK = 1 * MiB
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


def is_binary(data: bytes) -> bool:
    """git's rule: a NUL byte in the first 8000 bytes."""
    return b"\0" in data[:BINARY_SNIFF_BYTES]


def count_lines(data: bytes) -> int:
    """Lines as git counts them: `\\n`-terminated, plus an unterminated last one."""
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def git_blob_oid(data: bytes) -> str:
    digest = hashlib.sha1(b"blob %d\0" % len(data), usedforsecurity=False)
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


class _Inflater:
    """The tar stream out of a gzip'd (or plain) source, in bounded steps, counted.

    Each decompression step yields at most `_CHUNK` bytes, so a bomb never allocates more than
    that before the total-size check sees it. Several gzip members back to back are
    read as one stream (as gunzip does); other bytes after the end are ignored (as npm does).
    """

    def __init__(self, source: BinaryIO, limits: Limits) -> None:
        self._source = source
        self._limits = limits
        self._buffer = bytearray()
        self._offset = 0
        self._raw = b""  # compressed bytes read from the source, not yet given to zlib
        self._zlib: zlib._Decompress | None = None
        self._eof = False
        self.fed = 0  # source bytes given to zlib (or passed through, for a plain tar)
        self.produced = 0

    def start(self) -> None:
        self._raw = self._source.read(2)
        if not self._raw:
            raise _Stop(RefusalReason.EMPTY, "The tarball is empty.")
        if self._raw == _GZIP_MAGIC:
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def read(self, size: int) -> bytes:
        """Exactly `size` bytes, or fewer at the end of the stream."""
        while len(self._buffer) - self._offset < size and self._fill():
            pass
        end = min(self._offset + size, len(self._buffer))
        with memoryview(self._buffer) as view:
            data = bytes(view[self._offset : end])
        self._offset = end
        if self._offset >= _CHUNK:
            del self._buffer[: self._offset]
            self._offset = 0
        return data

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
        for _ in self.chunks(size):
            pass

    def _fill(self) -> bool:
        """Append the next decompressed piece to the buffer; False at the end of the stream."""
        while not self._eof:
            out = self._next_piece()
            if out:
                self._buffer += out
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
        except zlib.error as error:
            raise _Stop(RefusalReason.CORRUPT, f"The gzip stream is corrupt ({error}).") from None
        if self._zlib.eof:
            self.fed -= len(self._zlib.unused_data)
        return out

    def _next_member(self) -> None:
        assert self._zlib is not None
        rest = self._zlib.unused_data
        while len(rest) < 2:
            more = self._source.read(_COMPRESSED_CHUNK)
            if not more:
                break
            rest += more
        if rest[:2] == _GZIP_MAGIC:
            self._raw = rest
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
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


# Tar type flags (POSIX ustar, pax and GNU), and what node-tar does with each.
_FILE_TYPES = frozenset({b"0", b"\0", b"7"})
_DIRECTORY = b"5"
_HARDLINK = b"1"
_SYMLINK = b"2"
_DEVICES = frozenset({b"3", b"4"})
_FIFO = b"6"
_PAX = frozenset({b"x", b"X"})
_PAX_GLOBAL = b"g"
_LONG_PATH = frozenset({b"L", b"N"})
_LONG_LINK = b"K"
_META_TYPES = _PAX | _LONG_PATH | {_PAX_GLOBAL, _LONG_LINK}
_ZERO_BLOCK = bytes(BLOCK)
_OCTAL_DIGITS = frozenset(b"01234567")


@dataclass(slots=True)
class _Header:
    name: str
    mode: int
    size: int
    type: bytes
    linkname: str
    raw_name: bytes


def _cstring(field: bytes) -> tuple[str, bytes]:
    raw = field.split(b"\0", 1)[0]
    return raw.decode("utf-8", "replace"), raw


def _number(field: bytes) -> int:
    """A numeric header field: octal text, or GNU base-256 for large values."""
    if field and field[0] & 0x80:
        if field[0] == 0xFF:
            return -1  # negative: invalid for sizes and modes
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    text = field.split(b"\0", 1)[0].strip()
    digits = 0
    for byte in text:  # parseInt(…, 8) as node-tar does: leading octal digits only
        if byte not in _OCTAL_DIGITS:
            break
        digits += 1
    return int(text[:digits], 8) if digits else 0


def _checksum_ok(block: bytes) -> bool:
    stored = block[148:156].split(b"\0", 1)[0].strip()
    if not stored or not all(byte in _OCTAL_DIGITS for byte in stored):
        return False
    unsigned = sum(block[:148]) + 8 * 0x20 + sum(block[156:])
    return int(stored, 8) == unsigned


def _parse_header(block: bytes) -> _Header:
    if not _checksum_ok(block):
        raise _Stop(
            RefusalReason.CORRUPT, "A tar header has a wrong checksum: the file is corrupt."
        )
    name, raw_name = _cstring(block[0:100])
    type_flag = block[156:157]
    if block[257:265] == b"ustar\x0000":
        # ustar splits long names into prefix + name; node-tar reads 155 bytes of prefix
        # when byte 475 is set and 130 (the rest holds times, star-style) otherwise.
        prefix, raw_prefix = _cstring(block[345:500] if block[475] else block[345:475])
        if prefix:
            name, raw_name = f"{prefix}/{name}", raw_prefix + b"/" + raw_name
    if type_flag in (b"0", b"\0") and name.endswith("/"):
        type_flag = _DIRECTORY  # old tars marked directories as files with a trailing slash
    size = _number(block[124:136])
    if size < 0:
        raise _Stop(RefusalReason.CORRUPT, "A tar header has a negative size.")
    return _Header(
        name=name,
        mode=max(_number(block[100:108]), 0) & 0o7777,
        size=0 if type_flag == _DIRECTORY else size,
        type=type_flag,
        linkname=_cstring(block[157:257])[0],
        raw_name=raw_name,
    )


def _parse_pax(data: bytes) -> dict[str, str]:
    """pax records (`<length> <key>=<value>\\n`) the way node-tar reads them, line by line."""
    records: dict[str, str] = {}
    for line in data.removesuffix(b"\n").split(b"\n"):
        length_text, _, record = line.partition(b" ")
        if not _is_small_number(length_text) or int(length_text) != len(line) + 1:
            continue
        key, sep, value = record.partition(b"=")
        if sep and key:
            records[key.decode("utf-8", "replace")] = _cstring(value)[0]
    return records


def _is_small_number(text: bytes | str) -> bool:
    # int() refuses more than 4,300 digits with ValueError; no real field needs over 19.
    return text.isdigit() and len(text) <= 19


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN else f"{text[:_MAX_SHOWN]}… ({len(text):,} characters)"


def _padding(size: int) -> int:
    return -size % BLOCK


def format_size(n: int) -> str:
    """A byte count for people: `3.4 MiB`, `512 KiB`, `87 bytes`."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}".replace(".0 ", " ")
    return f"{n:,} bytes"


_TYPE_FINDINGS = {
    _SYMLINK: (FindingKind.SYMLINK, "symbolic link to {link}"),
    _HARDLINK: (FindingKind.HARDLINK, "hard link to {link}"),
    b"3": (FindingKind.DEVICE, "character device"),
    b"4": (FindingKind.DEVICE, "block device"),
    _FIFO: (FindingKind.FIFO, "named pipe (fifo)"),
}


class _Reader:
    """One pass over one tarball."""

    def __init__(
        self,
        source: BinaryIO,
        limits: Limits,
        keep: Callable[[FileEntry], bool] | None,
        *,
        only: frozenset[str] | None = None,
        sink: Callable[[FileEntry, bytes], None] | None = None,
    ) -> None:
        self._inflater = _Inflater(source, limits)
        self._limits = limits
        self._keep = keep
        self._only = only  # paths to read; the others are skipped without being indexed
        self._sink = sink  # takes kept files one by one instead of `result.contents`
        self._kept = 0
        self._entries = 0
        self._top_folders: dict[str, None] = {}
        self._finding_count = 0
        self._result = ArchiveResult(contents_complete=keep is not None)

    def _finding(self, kind: FindingKind, path: str, detail: str) -> None:
        """Record a finding; names and details are cut, and the list is bounded."""
        self._finding_count += 1
        if self._finding_count <= MAX_FINDINGS:
            self._result.findings.append(Finding(kind, _cut(path), _cut(detail)))

    def run(self) -> ArchiveResult:
        result = self._result
        try:
            self._inflater.start()
            self._read_entries()
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
            names = _cut(", ".join(self._top_folders))
            detail = (
                f"entries sit under several top folders ({names}); npm strips the first "
                "folder of every entry, so their files merge into one package"
            )
            result.findings.append(Finding(FindingKind.SEVERAL_TOP_FOLDERS, "", detail))
        if self._finding_count > MAX_FINDINGS:
            left_out = f"{self._finding_count - MAX_FINDINGS:,} more findings not listed"
            result.findings.append(Finding(FindingKind.MANY_FINDINGS, "", left_out))
        return result

    def _read_entries(self) -> None:
        inflater = self._inflater
        extended: dict[str, str] = {}  # from pax `x` and GNU long names, for the next entry
        global_extended: dict[str, str] = {}
        saw_zero_block = False
        while True:
            block = inflater.read(BLOCK)
            if not block:
                return  # no end-of-archive marker; node-tar accepts that too
            if len(block) < BLOCK:
                raise _Stop(RefusalReason.TRUNCATED, "The tarball ends in the middle of a header.")
            if block == _ZERO_BLOCK:
                if saw_zero_block:
                    return
                saw_zero_block = True
                continue
            saw_zero_block = False
            header = _parse_header(block)
            if header.type in _META_TYPES:
                self._read_meta(header, extended, global_extended)
                continue
            self._entries += 1
            if self._entries > self._limits.max_entries:
                raise _Stop(
                    RefusalReason.ENTRIES,
                    f"The tarball has more than {self._limits.max_entries:,} entries.",
                )
            self._apply_extended(header, extended, global_extended)
            extended = {}
            self._read_entry(header)

    def _read_meta(
        self, header: _Header, extended: dict[str, str], global_extended: dict[str, str]
    ) -> None:
        if header.size > MAX_META_BYTES:
            self._finding(
                FindingKind.UNSUPPORTED_ENTRY,
                header.name,
                f"extended header of {format_size(header.size)} ignored (npm ignores meta "
                f"entries over {format_size(MAX_META_BYTES)})",
            )
            self._inflater.skip(header.size + _padding(header.size))
            return
        data = b"".join(self._inflater.chunks(header.size))
        self._inflater.skip(_padding(header.size))
        if header.type in _PAX:
            extended.update(_parse_pax(data))
        elif header.type == _PAX_GLOBAL:
            global_extended.update(_parse_pax(data))
        elif header.type in _LONG_PATH:
            extended["path"] = _cstring(data)[0]
        else:
            extended["linkpath"] = _cstring(data)[0]

    def _apply_extended(
        self, header: _Header, extended: dict[str, str], global_extended: dict[str, str]
    ) -> None:
        # node-tar takes size from either kind, but path and link path only from `x`/`L`/`K`.
        for records in (global_extended, extended):
            size = records.get("size", "")
            if _is_small_number(size) and header.type != _DIRECTORY:
                header.size = int(size)
        if "path" in extended:
            header.name = extended["path"]
            header.raw_name = header.name.encode("utf-8", "replace")
            if header.type in (b"0", b"\0") and header.name.endswith("/"):
                header.type, header.size = _DIRECTORY, 0
        if "linkpath" in extended:
            header.linkname = extended["linkpath"]
        if "type" in extended:
            header.type = b"pax-type"  # an entry retyped by a pax record: report, never index

    def _read_entry(self, header: _Header) -> None:
        body = header.size + _padding(header.size)
        if header.type in _TYPE_FINDINGS:
            kind, text = _TYPE_FINDINGS[header.type]
            self._finding(kind, header.name, text.format(link=header.linkname))
            self._inflater.skip(body)
            return
        if header.type != _DIRECTORY and header.type not in _FILE_TYPES:
            shown = header.type.decode("ascii", "replace")
            self._finding(
                FindingKind.UNSUPPORTED_ENTRY,
                header.name,
                f"entry of unsupported type {shown!r} ignored (npm ignores it too)",
            )
            self._inflater.skip(body)
            return
        path = self._package_path(header)
        if path is None or header.type == _DIRECTORY or (self._only and path not in self._only):
            self._inflater.skip(body)
            return
        self._read_file(header, path)
        self._inflater.skip(_padding(header.size))

    def _package_path(self, header: _Header) -> str | None:
        """The path inside the package, or None (with a finding) for entries not to index."""
        name = header.name
        if _has_unsafe_characters(header):
            self._finding(
                FindingKind.SUSPICIOUS_NAME,
                name,
                "the name holds control characters or bytes that are not UTF-8",
            )
        if len(name) > MAX_PATH_CHARS:
            self._finding(
                FindingKind.PATH_TOO_LONG,
                name,
                f"path of {len(name):,} characters; no system npm runs on can extract it",
            )
            return None
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":" and name[0].isalpha()):
            self._finding(FindingKind.ABSOLUTE_PATH, name, "absolute path not followed")
            return None
        if ".." in name.replace("\\", "/").split("/"):
            self._finding(FindingKind.PARENT_PATH, name, "path with '..' not followed")
            return None
        parts = [part for part in name.split("/") if part not in ("", ".")]
        if not parts:
            return None
        if len(parts) == 1:
            if header.type != _DIRECTORY:
                self._finding(
                    FindingKind.OUTSIDE_PACKAGE_FOLDER,
                    name,
                    "file outside the package folder; npm does not install it",
                )
            else:
                self._top_folders.setdefault(parts[0])
            return None
        self._top_folders.setdefault(parts[0])
        return "/".join(parts[1:])

    def _read_file(self, header: _Header, path: str) -> None:
        limits, result, size = self._limits, self._result, header.size
        oversized = size > limits.max_entry_bytes
        if oversized:
            self._finding(
                FindingKind.OVERSIZED_ENTRY,
                path,
                f"{format_size(size)} file, over the {format_size(limits.max_entry_bytes)} "
                "limit for one file: listed and hashed, never loaded",
            )
        replaced = len(result.contents.get(path, b""))
        within_budget = self._sink is not None or (
            self._kept - replaced + size <= limits.max_kept_bytes
        )
        # Bytes are gathered (one file at a time) before `keep` sees the finished entry.
        gather = self._keep is not None and not oversized and within_budget

        sha256 = hashlib.sha256()
        git_oid = hashlib.sha1(b"blob %d\0" % size, usedforsecurity=False)
        lines = _LineCounter()
        binary: bool | None = None
        parts: list[bytes] = []
        for chunk in self._inflater.chunks(size):
            sha256.update(chunk)
            git_oid.update(chunk)
            if binary is None:
                # the first chunk holds the first 8000 bytes unless the file is shorter
                binary = is_binary(chunk)
            if not binary:
                lines.feed(chunk)
            if gather:
                parts.append(chunk)
        binary = bool(binary)

        if path in result.files:
            self._finding(
                FindingKind.DUPLICATE_PATH,
                path,
                "the archive holds this path more than once; the last copy wins on "
                "extraction and is the one listed",
            )
            self._kept -= len(result.contents.pop(path, b""))
        entry = FileEntry(
            path=path,
            size=size,
            mode=header.mode,
            sha256=sha256.hexdigest(),
            git_oid=git_oid.hexdigest(),
            is_binary=binary,
            line_count=None if binary else lines.count,
            longest_line=None if binary else lines.longest,
            oversized=oversized,
        )
        result.files[path] = entry
        if self._keep is None or not self._keep(entry):
            return
        if gather and self._sink is not None:
            self._sink(entry, b"".join(parts))
        elif gather:
            result.contents[path] = b"".join(parts)
            self._kept += size
        else:
            result.contents_complete = False


def _has_unsafe_characters(header: _Header) -> bool:
    if "\ufffd" in header.name and b"\xef\xbf\xbd" not in header.raw_name:
        return True  # bytes that are not UTF-8
    return any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in header.name)


class _LineCounter:
    """Counts `\\n`-separated lines and the longest one over a stream of chunks."""

    __slots__ = ("_current", "_ends_with_newline", "_longest", "_newlines", "_seen")

    def __init__(self) -> None:
        self._newlines = 0
        self._current = 0  # length of the line still open at the end of the last chunk
        self._longest = 0
        self._seen = False
        self._ends_with_newline = False

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._seen = True
        self._ends_with_newline = chunk.endswith(b"\n")
        first = chunk.find(b"\n")
        if first < 0:
            self._current += len(chunk)
            return
        self._newlines += chunk.count(b"\n")
        self._longest = max(self._longest, self._current + first)
        last = chunk.rfind(b"\n")
        # a line between the first and last newline can only beat the record if the span can
        if last - first - 1 > self._longest:
            inner = chunk[first + 1 : last].split(b"\n")
            self._longest = max(self._longest, *map(len, inner))
        self._current = len(chunk) - last - 1

    @property
    def count(self) -> int:
        if not self._seen:
            return 0
        return self._newlines + (0 if self._ends_with_newline else 1)

    @property
    def longest(self) -> int:
        return max(self._longest, self._current)
