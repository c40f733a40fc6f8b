"""Tarballs built in memory for the review tests: ordinary, odd and hostile ones."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import tarfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from zlib_ng import zlib_ng

from tests.support.tarcraft import end_of_archive, npm_member

NPM_FORMAT = "npm"
"""`make_tarball`'s default: entries written the way npm pack writes them (see tarcraft)."""


@dataclass
class Entry:
    """A tar member with a full name (no `package/` added) and any type."""

    name: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    linkname: str = ""
    mode: int = 0o644


def make_tarball(
    files: Mapping[str, object] | Iterable[Entry] = (),
    *,
    top: str = "package",
    compress: bool = True,
    tar_format: int | str = NPM_FORMAT,
    modes: Mapping[str, int] | None = None,
) -> bytes:
    """A gzip'd tarball; paths of a mapping go under `top/`, `Entry` names are used as given.

    Written as npm pack writes it, or by `tarfile` in one of its formats (`tarfile.PAX_FORMAT`
    puts `?` for non-ASCII characters in the header's own name, which npm may then use).
    """
    entries: list[Entry]
    if isinstance(files, Mapping):
        entries = []
        for path, data in files.items():
            body = data.encode() if isinstance(data, str) else data
            assert isinstance(body, bytes)
            mode = (modes or {}).get(path, 0o644)
            entries.append(Entry(f"{top}/{path}", body, mode=mode))
    else:
        entries = list(files)
    if tar_format == NPM_FORMAT:
        raw = b"".join(_npm_entry(entry) for entry in entries) + end_of_archive()
        return gzip_bytes(raw) if compress else raw
    assert isinstance(tar_format, int)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tar_format) as archive:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type = entry.type
            info.mode = entry.mode
            info.linkname = entry.linkname
            info.mtime = 499162500  # npm pack's fixed date, 1985-10-26
            if entry.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
                info.size = len(entry.data)
                archive.addfile(info, io.BytesIO(entry.data))
            else:
                archive.addfile(info)
    raw = buffer.getvalue()
    return gzip_bytes(raw) if compress else raw


def _npm_entry(entry: Entry) -> bytes:
    data = entry.data if entry.type in (tarfile.REGTYPE, tarfile.AREGTYPE) else b""
    return npm_member(entry.name, data, flag=entry.type, mode=entry.mode, linkname=entry.linkname)


def gzip_bytes(raw: bytes, level: int = 6) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(raw) + compressor.flush()


def package(name: str = "demo", version: str = "1.0.0", **extra: object) -> bytes:
    return json.dumps({"name": name, "version": version, **extra}, indent=2).encode()


def tar_header(name: str, size: int, type_flag: bytes = tarfile.REGTYPE) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.type = type_flag
    info.mode = 0o644
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def gzip_bomb(unpacked: int = 1 << 30, name: str = "package/zeros.bin") -> bytes:
    """One tar member of `unpacked` zero bytes, compressed at level 9.

    1 GiB of zeros gives about 1 MB: a ratio near 1000, as in real bombs. Built in milliseconds
    rather than seconds: after a full flush deflate starts afresh, so every mebibyte of zeros
    compresses to the same bytes, and copies of them make one valid stream.
    """
    mebibyte = 1 << 20
    whole, rest = divmod(unpacked, mebibyte)
    head = tar_header(name, unpacked)
    tail = bytes(rest) + bytes(-unpacked % 512) + bytes(1024)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    first = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(bytes(mebibyte)) + compressor.flush(zlib.Z_FULL_FLUSH)
    last = compressor.compress(tail) + compressor.flush()
    crc = zlib_ng.crc32(head)
    for _ in range(whole):
        crc = zlib_ng.crc32(bytes(mebibyte), crc)
    crc = zlib_ng.crc32(tail, crc)
    size = len(head) + whole * mebibyte + len(tail)
    gzip_header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    return b"".join((gzip_header, first, block * whole, last, trailer))


def many_entries(count: int) -> bytes:
    """`count` tiny files, headers written directly (tarfile is slow at 100,000 members)."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = []
    for index in range(count):
        body = b"%d\n" % index
        out.append(compressor.compress(tar_header(f"package/f/{index}.js", len(body))))
        out.append(compressor.compress(body + bytes(-len(body) % 512)))
    out.append(compressor.compress(bytes(1024)))
    out.append(compressor.flush())
    return b"".join(out)


def noise(size: int, seed: int = 0) -> bytes:
    """`size` bytes of hex text without newlines that compress like real code (about 2:1)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(b"%d:%d" % (seed, counter)).hexdigest().encode()
        counter += 1
    return bytes(out[:size])
