"""Tar archives written byte by byte, odd and hostile ones included, for the reader's tests.

`tarfile` only writes what is valid; the differential tests need headers with the wrong
checksum, base-256 sizes, a ustar prefix with byte 475 set, pax records whose length lies,
names with NUL bytes, bodies that hold other headers. `header` writes one 512-byte block with
every field under control; `pax_body`, `member` and `finish` put archives together.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

BLOCK = 512
NPM_MTIME = 499162500  # npm pack's fixed date, 1985-10-26


def octal(value: int, width: int) -> bytes:
    """An octal field as most writers put it: zero-padded digits and a NUL."""
    return b"%0*o\0" % (width - 1, value)


def base256(value: int, width: int) -> bytes:
    """GNU's base-256 form: 0x80 then the big-endian value (0xff and two's complement if < 0)."""
    if value < 0:
        return (value % (1 << (8 * width))).to_bytes(width, "big")
    return b"\x80" + value.to_bytes(width - 1, "big")


@dataclass(frozen=True)
class Header:
    """Every field of one header block; `None` fields get the usual value."""

    name: bytes
    size: int = 0
    flag: bytes = b"0"
    mode: int = 0o644
    linkname: bytes = b""
    magic: str = "ustar"  # "ustar" (POSIX), "gnu" ("ustar  \0") or "v7" (none)
    prefix: bytes = b""  # up to 155 bytes at offset 345 (a 155th byte sets byte 475)
    size_field: bytes | None = None  # 12 raw bytes instead of `size` in octal
    mode_field: bytes | None = None  # 8 raw bytes instead of `mode` in octal
    checksum_delta: int = 0  # added to the right checksum (non-zero: a corrupt header)
    checksum_form: str = "%06o\0 "  # how the checksum is written in its 8 bytes

    def encode(self) -> bytes:
        block = bytearray(BLOCK)
        block[0:100] = self.name[:100].ljust(100, b"\0")
        block[100:108] = self.mode_field if self.mode_field is not None else octal(self.mode, 8)
        block[108:116] = octal(0, 8)
        block[116:124] = octal(0, 8)
        block[124:136] = self.size_field if self.size_field is not None else octal(self.size, 12)
        block[136:148] = octal(NPM_MTIME, 12)
        block[156:157] = self.flag[:1].ljust(1, b"\0")
        block[157:257] = self.linkname[:100].ljust(100, b"\0")
        if self.magic == "ustar":
            block[257:265] = b"ustar\x0000"
        elif self.magic == "gnu":
            block[257:265] = b"ustar  \0"
        if self.magic != "v7":
            block[329:337] = octal(0, 8)
            block[337:345] = octal(0, 8)
            block[345:500] = self.prefix[:155].ljust(155, b"\0")
        checksum = 8 * 0x20 + sum(block[:148]) + sum(block[156:]) + self.checksum_delta
        written = (self.checksum_form % checksum).encode("latin-1")
        block[148:156] = written[:8].ljust(8, b"\0")
        return bytes(block)


def padded(body: bytes) -> bytes:
    return body + bytes(-len(body) % BLOCK)


def member(header: Header, body: bytes = b"") -> bytes:
    """A header block and its body, padded to whole blocks."""
    return header.encode() + padded(body)


def record(key: str | bytes, value: str | bytes, length_error: int = 0) -> bytes:
    """One pax record `<length> <key>=<value>\\n`, its length off by `length_error`."""
    key_bytes = key.encode() if isinstance(key, str) else key
    value_bytes = value.encode() if isinstance(value, str) else value
    text = b" " + key_bytes + b"=" + value_bytes + b"\n"
    digits = 1
    while len(str(len(text) + digits)) > digits:
        digits += 1
    return b"%d%s" % (len(text) + digits + length_error, text)


def pax(records: bytes, flag: bytes = b"x", name: bytes = b"PaxHeader/x") -> bytes:
    """A pax header (`x` or `g`) with its records."""
    return member(Header(name, size=len(records), flag=flag), records)


def gnu_long(value: bytes, flag: bytes = b"L") -> bytes:
    """A GNU long name (`L`) or long link (`K`) entry; the value gets its NUL."""
    body = value + b"\0"
    return member(Header(b"././@LongLink", size=len(body), flag=flag, magic="gnu"), body)


def end_of_archive(zero_blocks: int = 2) -> bytes:
    return bytes(BLOCK * zero_blocks)


def gzip(raw: bytes, level: int = 6) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(raw) + compressor.flush()


def tgz(*members: bytes, zero_blocks: int = 2) -> bytes:
    """A gzipped tarball of `members`, ended by `zero_blocks` zero blocks."""
    return gzip(b"".join(members) + end_of_archive(zero_blocks))


def file(name: bytes, data: bytes, **fields: object) -> bytes:
    """One regular file member named exactly `name`, its size taken from `data`."""
    return member(Header(name, size=len(data), **fields), data)  # type: ignore[arg-type]


def npm_member(
    name: str, data: bytes = b"", *, flag: bytes = b"0", mode: int = 0o644, linkname: str = ""
) -> bytes:
    """An entry as npm pack (node-tar) writes it: the path in the header as UTF-8, split into
    prefix and name when it is long, plus a pax header when it holds non-ASCII characters or
    does not fit."""
    raw, link = name.encode("utf-8"), linkname.encode("utf-8")
    field, prefix, fits = _split_like_node_tar(raw)
    records = b""
    if not fits or not name.isascii():
        records += record("path", raw)
    if len(link) > 100 or not linkname.isascii():
        records += record("linkpath", link)
    head = pax(records, name=b"PaxHeader/" + field.rsplit(b"/", 1)[-1][:80]) if records else b""
    header = Header(field, size=len(data), flag=flag, mode=mode, linkname=link, prefix=prefix)
    return head + member(header, data)


def _split_like_node_tar(raw: bytes) -> tuple[bytes, bytes, bool]:
    """node-tar's splitPrefix: (name field, prefix field, whether the path fits in them)."""
    if len(raw) < 100:
        return raw, b"", True
    for cut in range(len(raw) - 1, 0, -1):
        if raw[cut : cut + 1] == b"/" and len(raw) - cut - 1 <= 100 and cut <= 155:
            return raw[cut + 1 :], raw[:cut], True
    return _utf8_prefix(raw, 99), b"", False


def _utf8_prefix(raw: bytes, limit: int) -> bytes:
    """The longest start of `raw` within `limit` bytes that ends on a whole character."""
    cut = raw[:limit]
    while cut and (cut[-1] & 0xC0) == 0x80:
        cut = cut[:-1]
    if cut and cut[-1] >= 0xC0:
        cut = cut[:-1]
    return cut
