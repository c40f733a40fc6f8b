"""Tricky tarballs for the differential tests, as a hypothesis strategy.

A case is a short list of members, each written in one of the forms tar writers use (or
abuse): long names in the ustar prefix, a pax `path`, a GNU `L`; sizes in octal, base-256 or
a pax `size` that disagrees with the header; global `g` headers; links, devices, folders;
names that differ only in case or Unicode normalisation, `..`, absolute and drive paths, NUL
bytes, `.gitignore`; bodies that hold tar headers of their own (so a reader that gets one size
wrong reads a different archive); broken blocks, truncation, several gzip members. Members are
drawn from small pools so that paths collide often.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass

from hypothesis import strategies as st

from tests.support.tarcraft import (
    BLOCK,
    Header,
    base256,
    end_of_archive,
    gnu_long,
    gzip,
    member,
    pax,
    record,
)

TOPS = ["package"] * 12 + ["pkg", "", ".", "C:", "\\", "package\\..", "PACKAGE"]
PARTS = [
    *["index.js", "a", "lib", "b.js"] * 4,
    "Index.js",
    "A",
    "Lib",
    "café.js",  # NFC
    "cafe\u0301.js",  # NFD
    ".gitignore",
    ".npmignore",
    "..",
    ".",
    "",
    "C:",
    "x\\..\\y",
    "\\abs",
    "d" * 120,
    "e" * 256,
    "日本語のファイル名" * 4,
    "n\0\nul",
    "tab\there",
]
DATA = [
    b"",
    b"ok();\n",
    b"EVIL();\n",
    b"\0\x01binary",
    b"x" * 700,
]
MODES = [0o644, 0o644, 0o755, 0o100, 0o4755, 0o000, 0o7777]
FILE_FLAGS = [b"0", b"0", b"0", b"\0", b"7"]


def _smuggled() -> bytes:
    """Bytes that read as a tar stream of their own: a `g` header, then an index.js."""
    evil = b"EVIL_FROM_INSIDE();\n"
    return pax(record("comment", "inner"), flag=b"g") + member(
        Header(b"package/index.js", size=len(evil)), evil
    )


DATA.append(_smuggled())


@dataclass(frozen=True)
class Case:
    """One generated tarball and how it was made (for the report when a case fails)."""

    steps: tuple[str, ...]
    tarball: bytes

    def describe(self) -> str:
        return "\n".join(self.steps)


@st.composite
def paths(draw: st.DrawFn) -> str:
    parts = [draw(st.sampled_from(TOPS))]
    parts += draw(st.lists(st.sampled_from(PARTS), min_size=1, max_size=3))
    before = draw(st.sampled_from([""] * 14 + ["/", "./", "//"]))
    after = draw(st.sampled_from([""] * 12 + ["/"]))
    return before + "/".join(parts) + after


def _split_prefix(raw: bytes) -> tuple[bytes, bytes] | None:
    """A ustar prefix/name split at a slash, if one fits (name <= 100, prefix <= 155)."""
    for cut in range(len(raw) - 1, -1, -1):
        if raw[cut : cut + 1] == b"/" and len(raw) - cut - 1 <= 100 and cut <= 155:
            return raw[:cut], raw[cut + 1 :]
    return None


@st.composite
def _decoy_name(draw: st.DrawFn, raw: bytes) -> bytes:
    """The header's own name under a pax or GNU long name: what writers put there, or a lie."""
    choice = draw(st.sampled_from([0] * 6 + [1, 1, 2, 3, 4, 5]))
    if choice == 0:
        return raw[:100]  # npm pack, tarfile (truncated)
    if choice == 1:
        return raw.decode("utf-8", "replace").encode("ascii", "replace")[:100]  # tarfile, non-ASCII
    if choice == 2:
        return raw[:99] + b"/"  # looks like a folder until the pax path applies
    if choice == 3:
        return b"package/index.js"
    if choice == 4:
        return b"package/index.js/"
    return b""


@st.composite
def files(draw: st.DrawFn) -> tuple[str, bytes]:
    path = draw(paths())
    raw = path.encode("utf-8")
    data = draw(st.sampled_from(DATA))
    mode = draw(st.sampled_from(MODES))
    flag = draw(st.sampled_from(FILE_FLAGS))
    name_form = draw(
        st.sampled_from(
            ["field"] * 4 + ["prefix", "prefix-odd", "pax", "pax", "pax", "gnu", "pax+prefix"]
        )
    )
    size_form = draw(
        st.sampled_from(["octal"] * 6 + ["octal-odd", "base256", "pax", "pax", "pax-lie"])
    )
    head = b""
    records = b""
    name, prefix = raw, b""
    if name_form == "prefix" and (split := _split_prefix(raw)):
        prefix, name = split
    elif name_form == "prefix-odd":
        # byte 475 (the prefix's 131st) set behind NULs or not, NUL then junk, NUL then a line end
        prefix = draw(
            st.sampled_from([b"\0" * 130 + b"1", b"a" * 131, b"a" * 130, b"pkg\0junk", b"p\0\nq"])
        )
    elif name_form in ("pax", "pax+prefix"):
        records += record("path", raw, draw(st.sampled_from([0] * 8 + [1, -1])))
        name = draw(_decoy_name(raw))
        if name_form == "pax+prefix":
            prefix = draw(st.sampled_from([b"package", b"x" * 155, b"\0" * 130 + b"1"]))
    elif name_form == "gnu":
        head += gnu_long(raw, flag=draw(st.sampled_from([b"L", b"L", b"N"])))
        name = draw(_decoy_name(raw))
    size_field = None
    raw_size = len(data)
    if size_form == "base256":
        size_field = base256(len(data), 12)
    elif size_form == "octal-odd":
        forms = ["%11o\0", "%-11o\0", "\u00a0%o\0", "%012o", "+%o\0", "%ox\0", "\u3000%o "]
        text = draw(st.sampled_from(forms)) % len(data)
        size_field = text.encode("utf-8")[:12].ljust(12, b"\0")
    elif size_form == "pax":
        records += record("size", str(len(data)))
        raw_size = draw(st.sampled_from([0, len(data), 1, 4096]))
    elif size_form == "pax-lie":
        # the header and the pax record disagree; the body fits one of them
        pax_size = draw(st.sampled_from([0, 1, len(data) + 512]))
        records += record("size", str(pax_size))
    if records:
        head = pax(records) + head if draw(st.booleans()) else head + pax(records)
    mode_field = draw(
        st.sampled_from([None] * 8 + [base256(mode, 8), base256(-1, 8), b"junk\0\0\0\0", b" 755\0"])
    )
    checksum_form = draw(st.sampled_from(["%06o\0 "] * 12 + ["%07o\0", " %06o ", "%o", "%08o"]))
    header = Header(
        name,
        size=raw_size,
        flag=flag,
        mode=mode,
        prefix=prefix,
        size_field=size_field,
        mode_field=mode_field,
        checksum_form=checksum_form,
    )
    step = (
        f"file {path!r} data={len(data)} mode={mode:o} ({mode_field!r}) flag={flag!r} "
        f"{name_form} {size_form} checksum {checksum_form!r}"
    )
    return step, head + member(header, data)


@st.composite
def extended(draw: st.DrawFn) -> tuple[str, bytes]:
    """A pax `x`/`g` header or GNU `L`/`K` on its own, for whatever entry follows."""
    kind = draw(st.sampled_from([b"x", b"x", b"x", b"g", b"L", b"K", b"X"]))
    if kind in (b"L", b"K"):
        long_name = draw(paths()).encode("utf-8")
        return f"long {kind!r} {long_name!r}", gnu_long(long_name, flag=kind)
    count = draw(st.integers(1, 3))
    records = b""
    for _ in range(count):
        key = draw(st.sampled_from(["path"] * 4 + ["linkpath", "size", "comment", "type", "mode"]))
        if key == "path" or key == "linkpath":
            value = draw(paths())
        elif key == "size":
            value = draw(st.sampled_from(["0", "5", "8", "512", "", "x", " 8", "0x10", "-1"]))
        else:
            value = draw(st.sampled_from(["0", "5", "755", "Ω", "a\0\rb"]))
        records += record(key, value, draw(st.sampled_from([0] * 6 + [2, -1])))
    return f"pax {kind!r} {records!r}", pax(records, flag=kind)


@st.composite
def others(draw: st.DrawFn) -> tuple[str, bytes]:
    """Folders, links, devices and unknown types."""
    path = draw(paths()).encode("utf-8")
    kind = draw(
        st.sampled_from(["dir"] * 3 + ["dir-with-body", "symlink", "hardlink", "dev", "unknown"])
    )
    if kind == "dir":
        return f"dir {path!r}", member(Header(path, flag=b"5", mode=0o755))
    if kind == "dir-with-body":
        data = draw(st.sampled_from(DATA))
        return f"dir+body {path!r}", member(Header(path, size=len(data), flag=b"5"), data)
    if kind in ("symlink", "hardlink"):
        target = draw(st.sampled_from([b"package/index.js", b"../../etc/passwd", b"/etc", b""]))
        flag = b"2" if kind == "symlink" else b"1"
        return f"{kind} {path!r} -> {target!r}", member(Header(path, flag=flag, linkname=target))
    if kind == "dev":
        flag = draw(st.sampled_from([b"3", b"4", b"6"]))
        return f"dev {flag!r} {path!r}", member(Header(path, flag=flag))
    data = draw(st.sampled_from(DATA))
    flag = draw(st.sampled_from([b"Z", b"A", b"D", b"I", b"M", b"S", b"V", b"\xff"]))
    return f"type {flag!r} {path!r}", member(Header(path, size=len(data), flag=flag), data)


@st.composite
def broken(draw: st.DrawFn) -> tuple[str, bytes]:
    """Blocks npm skips or stops at."""
    kind = draw(
        st.sampled_from(
            ["null", "bad-checksum", "bad-base256", "no-name", "file-with-link", "negative-size"]
        )
    )
    data = b"ok();\n"
    if kind == "null":
        return "null block", end_of_archive(1)
    if kind == "bad-checksum":
        return "bad checksum", member(Header(b"package/a.js", size=6, checksum_delta=1), data)
    if kind == "bad-base256":
        field = b"\x81" + (6).to_bytes(11, "big")
        return "bad base-256", member(Header(b"package/a.js", size_field=field), data)
    if kind == "no-name":
        return "no name", member(Header(b"", size=6), data)
    if kind == "file-with-link":
        return "file with link", member(Header(b"package/a.js", size=6, linkname=b"x"), data)
    return "negative size", member(Header(b"package/a.js", size_field=base256(-6, 12)), data)


@st.composite
def padding_file(draw: st.DrawFn) -> tuple[str, bytes]:
    """A file that moves what follows next to a 16 KiB boundary (where gunzip output splits)."""
    blocks = draw(st.integers(1, 40))
    size = blocks * BLOCK - draw(st.sampled_from([0, 1, 511]))
    return f"pad {size}", member(Header(b"package/pad.bin", size=size), bytes(size))


@st.composite
def cases(draw: st.DrawFn) -> Case:
    steps: list[str] = []
    raw = b""
    kinds = [files()] * 30 + [extended()] * 4 + [others()] * 4 + [padding_file()] * 2 + [broken()]
    parts = draw(
        st.lists(st.sampled_from(kinds).flatmap(lambda kind: kind), min_size=1, max_size=7)
    )
    for step, data in parts:
        steps.append(step)
        raw += data
    zero_blocks = draw(st.sampled_from([2] * 8 + [1, 0, 3]))
    raw += end_of_archive(zero_blocks)
    late = member(Header(b"package/late.js", size=4), b"late")
    tail = draw(st.sampled_from([b""] * 8 + [b"\0" * 100, b"junk", late]))
    raw += tail
    steps.append(f"end: {zero_blocks} zero blocks, tail {tail[:20]!r}")
    if draw(st.sampled_from([False] * 20 + [True])):
        cut = draw(st.integers(1, len(raw)))
        raw = raw[:cut]
        steps.append(f"cut at {cut}")
    return Case(tuple(steps), _compress(draw, raw, steps))


def _compress(draw: st.DrawFn, raw: bytes, steps: list[str]) -> bytes:
    form = draw(st.sampled_from(["gzip"] * 16 + ["plain", "members", "zeros", "junk", "cut"]))
    steps.append(f"compression: {form}")
    if form == "plain":
        return raw
    if form == "members":
        cut = draw(st.integers(0, len(raw)))
        return gzip(raw[:cut]) + gzip(raw[cut:])
    if form == "zeros":
        return gzip(raw) + bytes(draw(st.integers(1, 20)))
    if form == "junk":
        return gzip(raw) + draw(st.sampled_from([b"\x1f", b"xyz", b"\x1f\x8b"]))
    if form == "cut":
        whole = gzip(raw)
        return whole[: draw(st.integers(1, len(whole) - 1))]
    return gzip(raw)


# --- Known cases ---------------------------------------------------------------------------


def audit_reproduction() -> tuple[bytes, bytes]:
    """The audit's tarball: a harmless index.js, then a pax `path=package/index.js` over a
    header named `package/index.js/` whose body starts with a pax `g` header. npm applies the
    pax path first, sees a file, and installs the body as index.js."""
    hidden = pax(record("comment", "x"), flag=b"g") + member(
        Header(b"package/index.js", size=9), b"EVIL();\n\n"
    )
    raw = (
        member(Header(b"package/index.js", size=6), b"ok();\n")
        + pax(record("path", "package/index.js"))
        + member(Header(b"package/index.js/", size=len(hidden)), hidden)
        + end_of_archive()
    )
    return gzip(raw), hidden


def python_long_path(tar_format: int) -> tuple[bytes, str, bytes]:
    """A path whose first 100 bytes end with `/`, written by tarfile in pax or GNU form."""
    path = "package/" + "a" * 91 + "/index.js"
    assert path.encode()[:100].endswith(b"/")
    data = b"module.exports = 'long';\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tar_format) as archive:
        info = tarfile.TarInfo(path)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return gzip(buffer.getvalue()), path.removeprefix("package/"), data
