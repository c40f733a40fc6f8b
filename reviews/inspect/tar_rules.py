"""npm's own reading of a tarball, rule by rule, so the index shows what `npm install` writes.

npm extracts a package with pacote, which runs node-tar (bundled in npm 11) with `strip: 1`, a
filter that keeps regular files only, and node-tar's path checks. The functions here port the
parts of that code that decide *which bytes land at which path*: how a 512-byte header decodes
(node-tar `header.js`, `large-numbers.js`), how pax records and GNU long names parse and apply
(`pax.js`, `parse.js`, `read-entry.js`), and where a path ends up (`unpack.js`,
`strip-absolute-path.js`, Node's `path.win32` roots). Each function names the code it follows.
JavaScript's string rules are kept where they matter (its whitespace, `parseInt`, a regular
expression whose `.` stops at line ends); where npm's result depends on something a reader of
the bytes cannot know, the caller refuses the tarball instead of guessing.

Pure functions, no I/O, no Django.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from zlib import adler32

__all__ = [
    "HeaderError",
    "InstallPath",
    "PaxRecords",
    "RawHeader",
    "UnreadableRecord",
    "decode_header",
    "install_path",
    "js_cut_at_nul",
    "parse_pax",
    "posix_basename",
]

BLOCK = 512
MAX_SAFE_INTEGER = 2**53 - 1
# node-tar's Unpack: deeper paths are skipped ("path excessively deep").
MAX_DEPTH = 1024

# JavaScript's WhiteSpace and LineTerminator, what String.prototype.trim and parseInt skip.
JS_WHITESPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_JS_LINE_TERMINATORS = frozenset("\n\r\u2028\u2029")

# node-tar `types.js`: the type codes it knows; anything else is 'Unsupported'.
KNOWN_TYPES = frozenset("01234567gxADIKLMNSVX") | {""}
# Types a pax or GNU long-name header may describe (`normalFsTypes`); the rest are metadata.
NORMAL_FS_TYPES = frozenset({"0", "", "1", "2", "3", "4", "5", "6", "7", "D"})
META_TYPES = frozenset({"g", "x", "X", "L", "N", "K"})
# What `ReadEntry` reads as a real entry; every other known or unknown code is ignored.
ENTRY_TYPES = frozenset({"0", "1", "2", "3", "4", "5", "6", "7", "D"})
UNSUPPORTED = "Unsupported"


class HeaderError(Exception):
    """A header node-tar cannot decode (it would skip the block and read on from the next)."""


class UnreadableRecord(Exception):
    """An extended-header record npm may read differently from us (see `parse_pax`)."""


def js_cut_at_nul(text: str) -> str:
    """`text.replace(/\\0.*/, '')`: from the first NUL up to the next line end, not further.

    node-tar cleans every name with this expression. `.` does not match a line terminator, so
    `"a\\0\\nb"` becomes `"a\\nb"`, not `"a"`.
    """
    if "\0" not in text:  # most fields: nothing to cut, no regular expression to run
        return text
    return _NUL_TO_LINE_END.sub("", text, count=1)


_NUL_TO_LINE_END = re.compile("\0[^\n\r\u2028\u2029]*")


def decode_string(field: bytes) -> str:
    """node-tar `decString`: UTF-8 (bad bytes as U+FFFD, as Node decodes), then the NUL cut."""
    text = field.rstrip(b"\0")
    if b"\0" not in text:
        # what writers write, text padded with NULs: the cut takes the padding alone (NULs
        # decode on their own, whatever comes before them)
        return text.decode("utf-8", "replace")
    return js_cut_at_nul(field.decode("utf-8", "replace"))


def js_parse_int(text: str, radix: int) -> int | None:
    """`parseInt(text, radix)` for radix 8 or 10; None where JavaScript gives NaN."""
    found = (_OCTAL if radix == 8 else _DECIMAL).match(text.lstrip(JS_WHITESPACE))
    if found is None:
        return None
    sign, digits = found.groups()
    significant = digits.lstrip("0") or "0"
    if len(significant) > 40:  # beyond any length we compare with; int() has a digit cap
        return -(10**40) if sign == "-" else 10**40
    value = int(significant, radix)
    return -value if sign == "-" else value


_OCTAL = re.compile("([+-]?)([0-7]+)")
_DECIMAL = re.compile("([+-]?)([0-9]+)")


def decode_number(field: bytes) -> int | None:
    """node-tar `decNumber`: GNU base-256 when the top bit is set, else octal text.

    Base-256 must start with 0x80 (positive) or 0xff (negative) and stay within JavaScript's
    safe integers, or node-tar throws and drops the whole header.
    """
    if field[0] & 0x80:
        if field[0] == 0x80:
            value = int.from_bytes(field[1:], "big")
        elif field[0] == 0xFF:
            value = int.from_bytes(field, "big", signed=True)
        else:
            raise HeaderError("a number field is in a base-256 form npm cannot read")
        if abs(value) > MAX_SAFE_INTEGER:
            raise HeaderError("a base-256 number is too large for npm to read exactly")
        return value
    plain = _PLAIN_OCTAL.match(field)
    if plain:  # what writers write: digits, maybe spaces before, a space or NUL after
        return int(plain.group(1), 8)
    # `/\0.*$/` then trim then parseInt: only the text before the first NUL can count.
    return js_parse_int(field.decode("utf-8", "replace").split("\0", 1)[0], 8)


_PLAIN_OCTAL = re.compile(rb" *([0-7]+)[ \0]")


@dataclass(slots=True)
class RawHeader:
    """One header block decoded as node-tar's `Header` does, before pacote or Unpack look."""

    type: str
    """node-tar's type code ('0', '5', 'x', …) or 'Unsupported'."""
    flag: str
    """The type flag as written (decoded like node-tar; a NUL reads as '')."""
    path: str
    """`header.path`: the pax/GNU path (for real entries) or the name, after the ustar prefix."""
    own_path: str
    """The path from this block alone (prefix and name), what npm falls back on without pax."""
    size: int
    """Bytes of body node-tar reads after the header (0 for folders and unreadable sizes)."""
    mode: int | None
    linkname: str
    """The header's own link name field (node-tar checks it, not the pax one)."""
    checksum_ok: bool
    null_block: bool


@dataclass(slots=True)
class Extended:
    """Pending pax/GNU values for the next entry: node-tar's EX or GEX."""

    values: dict[str, str | int] = field(default_factory=dict)
    unsure: dict[str, list[str | None]] = field(default_factory=dict)
    """For `path`/`linkpath`: other values npm may end up with, because the record held
    non-ASCII bytes (see `parse_pax`). None stands for "no value from here"."""
    unknowable: set[str] = field(default_factory=set)
    """Keys whose value npm may read garbled (GNU long names with non-ASCII bytes)."""


_OTHER_NUMBERS = ((108, 8), (116, 8), (136, 12))  # uid, gid, mtime
_USTAR_NUMBERS = (*_OTHER_NUMBERS, (329, 8), (337, 8))  # and the device numbers
_STAR_NUMBERS = (*_USTAR_NUMBERS, (476, 12), (488, 12))  # and star's atime and ctime


def _check_other_numbers(block: bytes, ustar: bool) -> None:
    """Raise HeaderError if a number field node-tar decodes but we do not use is unreadable.

    Only base-256 can be (octal text never throws). node-tar skips a field that a pax record
    already gave, so it throws in fewer cases than this check; refusing in all of them is
    the safe side.
    """
    fields: tuple[tuple[int, int], ...] = _OTHER_NUMBERS
    if ustar:
        fields = _STAR_NUMBERS if block[475] == 0 else _USTAR_NUMBERS
    for offset, size in fields:
        if block[offset] & 0x80:
            decode_number(block[offset : offset + size])


def decode_header(block: bytes, ex: Extended, gex: Extended) -> RawHeader:
    """node-tar `Header.decode(block, ex, gex)`; HeaderError where it would throw."""
    ustar = block[257:265] == b"ustar\x0000"
    _check_other_numbers(block, ustar)
    mode = decode_number(block[100:108])
    checksum = decode_number(block[148:160])
    code = _TYPE_FLAGS[block[156]]
    normal = code in NORMAL_FS_TYPES
    own_name = decode_string(block[0:100])
    path = own_name
    raw_size = decode_number(block[124:136])
    size = raw_size
    if normal:
        # pax values apply to real entries only, `x` before `g` (global `path` never applies)
        if "path" in ex.values:
            path = str(ex.values["path"])
        for pending in (ex, gex):
            if "size" in pending.values:
                size = int(pending.values["size"])
                break
    node_type = (code or "0") if code in KNOWN_TYPES else UNSUPPORTED
    if node_type == "0" and path.endswith("/"):
        node_type = "5"  # old tars marked folders as files with a trailing slash
    if size is None or size < 0 or node_type == "5":
        size = 0
    own_path = own_name
    if ustar:
        prefix = _prefix(block)
        if prefix is not None:
            path, own_path = f"{prefix}/{path}", f"{prefix}/{own_name}"
    total = 8 * 0x20 + byte_sum(block) - sum(block[148:156])
    return RawHeader(
        type=node_type,
        flag=code,
        path=path,
        own_path=own_path,
        size=size,
        mode=mode,
        linkname=decode_string(block[157:257]),
        checksum_ok=checksum == total,
        null_block=checksum is None and total == 8 * 0x20,
    )


def byte_sum(data: bytes) -> int:
    """`sum(data)` without a Python int per byte: the low half of Adler-32 is 1 plus the byte
    sum modulo 65521, which is the sum itself for up to 256 bytes (256 * 255 < 65521)."""
    total = 0
    for start in range(0, len(data), 256):
        total += (adler32(data[start : start + 256]) & 0xFFFF) - 1
    return total


# the type flag, one byte, decoded as `decode_string` does, for each value it can have
_TYPE_FLAGS = tuple(decode_string(bytes([value])) for value in range(256))


def _prefix(block: bytes) -> str | None:
    """The ustar prefix to put before the name with a slash, or None."""
    # node-tar reads 155 bytes of prefix when byte 475 is set, and then always adds the slash;
    # otherwise 130 bytes (star puts times after them), and only a non-empty prefix counts.
    if block[475] != 0:
        return decode_string(block[345:500])
    return decode_string(block[345:475]) or None


# ---------------------------------------------------------------------------------------------
# pax records (node-tar pax.js parseKV), and GNU long names


@dataclass(slots=True)
class PaxRecords:
    """The records of one pax header that change what npm writes: `path`, `linkpath`, `size`."""

    values: dict[str, str | int] = field(default_factory=dict)
    """What a whole, unsplit reading gives (the last record of each key)."""
    others: dict[str, list[str | None]] = field(default_factory=dict)
    """Other values npm may end up with for a key, because a later record of it held non-ASCII
    bytes (see `parse_pax`); None stands for "whatever was pending before this header"."""


_RELEVANT_KEYS = frozenset({"path", "linkpath", "size"})
_JS_NUMBER = re.compile(
    r"[+-]?(Infinity|([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?)"
    r"|0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+"
)


def parse_pax(body: bytes) -> PaxRecords:
    """The records of a pax `x` or `g` body, read line by line as node-tar does.

    node-tar decodes the body as UTF-8 and keeps a record only when its length prefix equals
    the line's byte length plus one. It decodes each chunk of the stream on its own, and the
    stream is cut into chunks wherever the network or gunzip cut it: a multi-byte character
    split between two chunks comes out as replacement characters, the line grows, its length
    no longer matches, and npm drops that record. So a record line with non-ASCII bytes may or
    may not count for npm: the values it may fall back on are kept in `others` for the caller
    to check that they do not matter, and a line we drop but npm might keep (its length prefix
    is larger than the line) raises UnreadableRecord.
    """
    records = PaxRecords()
    text = body.decode("utf-8", "replace").removesuffix("\n")
    for line in text.split("\n"):
        length = js_parse_int(line, 10)
        if length is None:
            continue
        key, value = _split_record(line, length)
        if key not in _RELEVANT_KEYS:
            continue
        actual = len(line.encode("utf-8")) + 1
        if length != actual:
            if not line.isascii() and length > actual:
                raise UnreadableRecord(f"a pax {key} record npm may read differently")
            continue
        _keep_record(records, key, value, certain=line.isascii())
    return records


def _keep_record(records: PaxRecords, key: str, value: str, *, certain: bool) -> None:
    if key == "size":
        if not certain:
            raise UnreadableRecord("a pax size record holds non-ASCII characters")
        size = _pax_size(value)
        if size is None:
            return
        records.values[key] = size
        records.others.pop(key, None)
        return
    if certain:
        records.others.pop(key, None)
    else:
        previous = records.values.get(key)
        fallbacks = records.others.get(key, [] if key in records.values else [None])
        records.others[key] = [*fallbacks, *([previous] if isinstance(previous, str) else [])]
    records.values[key] = value


def _split_record(line: str, length: int) -> tuple[str, str]:
    """`line.slice((n + ' ').length)`, then key and value around the first `=`."""
    rest = _slice_utf16(line, len(str(length)) + 1)
    key, _, value = rest.partition("=")
    return key, js_cut_at_nul(value)


def _slice_utf16(text: str, units: int) -> str:
    """`text.slice(units)` in JavaScript's UTF-16 code units."""
    seen = 0
    for index, char in enumerate(text):
        if seen >= units:
            return text[index:]
        width = 2 if ord(char) > 0xFFFF else 1
        if seen + width > units:  # the cut falls inside a surrogate pair: a lone low half
            return chr(0xDC00 + ((ord(char) - 0x10000) & 0x3FF)) + text[index + 1 :]
        seen += width
    return ""


def _pax_size(value: str) -> int | None:
    """`+value`, kept when >= 0 (node-tar). Plain digits are read; other numbers refused."""
    if value.isascii() and value.isdigit():
        size = int(value)
        if size > MAX_SAFE_INTEGER:
            raise UnreadableRecord("a pax size beyond what npm reads exactly")
        return size
    trimmed = value.strip(JS_WHITESPACE)
    if not trimmed or _JS_NUMBER.fullmatch(trimmed):
        raise UnreadableRecord(f"a pax size written as {value[:40]!r}")
    return None  # NaN: npm ignores the record


def merge_pax(pending: Extended, records: PaxRecords) -> None:
    """`Pax.parse(body, EX)`: the new records over the pending ones, key by key."""
    for key, value in records.values.items():
        others = records.others.get(key)
        if others is None:
            pending.values[key] = value
            pending.unsure.pop(key, None)
            pending.unknowable.discard(key)
            continue
        # npm may drop the new records and keep what was pending (with its own doubts)
        before = pending.values.get(key)
        alternatives = [
            before if item is None and isinstance(before, str) else item for item in others
        ]
        if None in others:
            alternatives += pending.unsure.get(key, [])
        pending.values[key] = value
        pending.unsure[key] = alternatives
        if None not in others:
            pending.unknowable.discard(key)


def set_long_name(pending: Extended, key: str, body: bytes) -> None:
    """A GNU `L` (key 'path') or `K` ('linkpath') body: the whole text up to the NUL cut.

    No length check guards these, so a multi-byte character split between two chunks stays in
    the name as replacement characters: with non-ASCII bytes, npm's name is unknowable.
    """
    pending.values[key] = decode_string(body)
    pending.unsure.pop(key, None)
    if body.isascii():
        pending.unknowable.discard(key)
    else:
        pending.unknowable.add(key)


# ---------------------------------------------------------------------------------------------
# Where a file lands: Unpack's CHECKPATH with pacote's strip: 1


@dataclass(frozen=True, slots=True)
class InstallPath:
    """Where npm writes an entry (relative to the package folder), or why it writes nothing."""

    path: str | None
    skipped: str = ""
    """Why the entry is not written ("parent", "depth", "package-folder"), when path is None."""
    root_stripped: bool = False
    """npm removed a leading `/`, `\\` or drive root before writing (an absolute path)."""


def install_path(entry_path: str) -> InstallPath:
    """node-tar `[CHECKPATH]` with `strip: 1` on Linux, then `path.resolve(cwd, …)`."""
    parts = entry_path.split("/")
    stripped_parts = parts[1:]  # strip: 1 drops the first part, whatever it is
    if len(stripped_parts) > MAX_DEPTH:
        return InstallPath(None, "depth")
    root, rest = strip_absolute_path("/".join(stripped_parts))
    if not root and stripped_parts and "\\" not in rest:
        # the usual case: the parts are the ones split above, seen once
        if ".." in stripped_parts:
            return InstallPath(None, "parent")
        if "" not in stripped_parts and "." not in stripped_parts:
            return InstallPath(rest)
    if ".." in rest.replace("\\", "/").split("/"):
        return InstallPath(None, "parent")
    resolved = "/".join(part for part in rest.split("/") if part not in ("", "."))
    if not resolved:
        return InstallPath(None, "package-folder")
    return InstallPath(resolved, root_stripped=bool(root))


def strip_absolute_path(path: str) -> tuple[str, str]:
    """node-tar `stripAbsolutePath`: peel off win32 roots (even on Linux) until none is left."""
    if path[:1] not in ("/", "\\") and path[1:2] != ":":
        return "", path  # no root at all: the usual case, settled without parsing
    return peel_roots(path)


def peel_roots(path: str) -> tuple[str, str]:
    """`strip_absolute_path` the long way, for any path."""
    removed = ""
    root = _win32_root(path)
    # node-tar loops `while (isAbsolute(path) || parsed.root)`; every path win32's
    # `isAbsolute` accepts (a leading separator, or `C:` and a separator) has a root, so the
    # root alone decides
    while root:
        if path[:1] == "/" and path[:4] != "//?/":
            root = "/"
        path = path[len(root) :]
        removed += root
        root = _win32_root(path)
    return removed, path


def _is_separator(char: str) -> bool:
    return char in ("/", "\\")


def _is_drive_letter(char: str) -> bool:
    return ("a" <= char <= "z") or ("A" <= char <= "Z")


def _win32_root(path: str) -> str:
    """Node's `path.win32.parse(path).root`."""
    length = len(path)
    if length == 0:
        return ""
    first = path[0]
    if length == 1:
        return path if _is_separator(first) else ""
    if _is_separator(first):
        return path[: _unc_root_end(path)]
    if _is_drive_letter(first) and path[1] == ":":
        if length > 2 and _is_separator(path[2]):
            return path[:3]
        return path[:2]
    return ""


def _unc_root_end(path: str) -> int:
    """Length of a root starting with a separator: `\\\\server\\share\\`, or just the first one."""
    length = len(path)
    if not _is_separator(path[1]):
        return 1
    j = 2
    last = j
    while j < length and not _is_separator(path[j]):
        j += 1
    if not (j < length and j != last):
        return 1
    last = j
    while j < length and _is_separator(path[j]):
        j += 1
    if not (j < length and j != last):
        return 1
    last = j
    while j < length and not _is_separator(path[j]):
        j += 1
    if j == length:
        return j
    if j != last:
        return j + 1
    return 1


def posix_basename(path: str) -> str:
    """Node's `path.posix.basename`: the last part, trailing slashes ignored."""
    trimmed = path.rstrip("/")
    return trimmed.rsplit("/", 1)[-1] if trimmed else ""


# ---------------------------------------------------------------------------------------------
# The package folder as npm fills it: Unpack's mkdir, lstat, rmdir, unlink and open on Linux

NAME_MAX = 255
"""Bytes in one path component on Linux file systems; npm fails to write a longer one."""
SURELY_WRITABLE = 3000
"""Bytes of path that fit wherever npm installs (PATH_MAX 4096 less a 1 KiB install folder)."""
NEVER_WRITABLE = 4095
"""Bytes of path that fit nowhere (PATH_MAX 4096 counts the folder it goes in and the NUL)."""


@dataclass(frozen=True, slots=True)
class Placement:
    """What writing one file does to the package folder."""

    outcome: str
    """'new', 'over-empty-folder' (rmdir, then new), 'replaced' (the old file unlinked, a new
    one made), 'reused' (opened over the old file, which keeps its mode), 'under-file' (a file
    sits where a parent folder must go), 'non-empty-folder' (rmdir fails), 'too-long'."""
    kept_mode: int | None = None
    """The old file's mode, for 'reused'."""

    @property
    def written(self) -> bool:
        return self.outcome in ("new", "over-empty-folder", "replaced", "reused")


_FOLDER = -1
_NEW = Placement("new")


def _utf8_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


@dataclass(slots=True)
class PackageFolder:
    """Files and folders npm has made so far: path -> file mode, or `_FOLDER`."""

    nodes: dict[str, int] = field(default_factory=dict)
    children: dict[str, int] = field(default_factory=dict)

    def place(self, path: str, node_type: str, mode: int) -> Placement:
        """Write a file the way node-tar's `[CHECKFS2]` does (type '0' or '7')."""
        parts = path.split("/")
        # a folder is only made after its parents, and one with a child never becomes a file:
        # when the parent is there as a folder, so are all the others
        if len(parts) > 1 and self.nodes.get(path.rpartition("/")[0]) != _FOLDER:
            for depth in range(1, len(parts)):
                blocked = self._make_folder("/".join(parts[:depth]), parts[depth - 1])
                if blocked is not None:
                    return blocked
        if _utf8_length(parts[-1]) > NAME_MAX or _utf8_length(path) > NEVER_WRITABLE:
            return Placement("too-long")
        existing = self.nodes.get(path)
        if existing is None:
            self._add(path, mode)
            return _NEW
        if existing == _FOLDER:
            if self.children.get(path, 0):
                return Placement("non-empty-folder")  # rmdir fails: npm skips the file
            self.nodes[path] = mode  # an empty folder is removed, the file takes its place
            return Placement("over-empty-folder")
        if node_type == "0":
            return Placement("reused", kept_mode=existing)  # O_TRUNC on the old inode
        self.nodes[path] = mode
        return Placement("replaced")

    def _make_folder(self, folder: str, name: str) -> Placement | None:
        existing = self.nodes.get(folder)
        if existing == _FOLDER:
            return None
        if existing is not None:
            return Placement("under-file")
        if _utf8_length(name) > NAME_MAX or _utf8_length(folder) > SURELY_WRITABLE:
            # mkdir fails (too long), or may: the file's own length check decides what follows
            return Placement("too-long")
        self._add(folder, _FOLDER)
        return None

    def _add(self, path: str, value: int) -> None:
        self.nodes[path] = value
        parent = path.rpartition("/")[0]
        if parent:
            self.children[parent] = self.children.get(parent, 0) + 1
