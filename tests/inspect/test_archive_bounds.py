"""The reader at its edges: sizes exactly at a limit, meta entries that set other meta entries'
sizes, the old and GNU meta types, duplicates and the memory budget, and the exact words a
reviewer reads. Each case is what npm (node-tar 7, parse.js and read-entry.js) does."""

from __future__ import annotations

from reviews.inspect.archive import (
    MAX_META_BYTES,
    ArchiveWalk,
    FileEntry,
    Finding,
    FindingKind,
    Limits,
    Refusal,
    RefusalReason,
    read_archive,
    stream_members,
)
from reviews.inspect.tar_rules import MAX_DEPTH, NEVER_WRITABLE, SURELY_WRITABLE
from tests.support.tarcraft import (
    Header,
    file,
    gnu_long,
    gzip,
    member,
    pax,
    record,
    tgz,
)

MiB = 1024 * 1024
DUPLICATE = (
    "the archive holds this path more than once; the last copy wins on extraction and is the "
    "one listed"
)


def unsure(what: str) -> Refusal:
    return Refusal(
        RefusalReason.CORRUPT,
        f"{what}: npm may install it differently from what a reader of the bytes sees, so the "
        "tarball is not shown.",
    )


def path_of(length: int) -> str:
    """A relative path of exactly `length` bytes, in parts npm can write (200 bytes each)."""
    parts, left = [], length
    while left > 201:
        parts.append("d" * 200)
        left -= 201
    return "/".join([*parts, "f" * left])


def filler(length: int) -> bytes:
    """A pax `comment` record (which npm reads and drops) of exactly `length` bytes."""
    value = length - len(record("comment", ""))
    while len(record("comment", "c" * value)) > length:
        value -= 1
    padded = record("comment", "c" * value)
    assert len(padded) == length
    return padded


# --- Meta entries (pax `x`, `g`, `X`; GNU `L`, `K`) ------------------------------------------


def test_a_global_pax_size_decides_the_size_of_a_later_extended_header():
    # read-entry.js slurps the global header after the pending one, so its size is the one
    # parse.js compares: 0 here, and npm reads the pax body that follows as headers
    tarball = tgz(
        pax(record("size", "0"), flag=b"g"),
        pax(record("path", "package/renamed.js")),
        file(b"package/a.js", b"a"),
    )

    result = read_archive(tarball)

    assert result.refusal == Refusal(
        RefusalReason.CORRUPT,
        "An extended header's size is overridden with 0 by another; npm would skip it and read "
        "on from the next block, which can hide files. Not shown.",
    )
    assert result.files == {}


def test_a_meta_entry_of_exactly_the_meta_limit_is_read_and_one_byte_more_is_ignored():
    path = record("path", "package/renamed.js")
    at_limit = path + filler(MAX_META_BYTES - len(path))
    over_limit = path + filler(MAX_META_BYTES + 1 - len(path))

    read = read_archive(tgz(pax(at_limit), file(b"package/a.js", b"a")))
    ignored = read_archive(tgz(pax(over_limit), file(b"package/a.js", b"a")))

    assert set(read.files) == {"renamed.js"}
    assert read.findings == []
    assert set(ignored.files) == {"a.js"}
    assert ignored.findings == [
        Finding(
            FindingKind.UNSUPPORTED_ENTRY,
            "PaxHeader/x",
            "extended header of 1 MiB ignored (npm ignores meta entries over 1 MiB)",
        )
    ]


def test_a_meta_body_longer_than_one_read_is_read_whole():
    # An earlier header's size (100) is what npm compares with its limit; the header's own
    # size, over 1 MiB, is how much it reads: the path record straddles the first MiB.
    path = record("path", "package/renamed.js") + record("size", "5")
    body = filler(MAX_META_BYTES - 10) + path
    tarball = tgz(pax(record("size", "100")), pax(body), file(b"package/a.js", b"hello"))

    result = read_archive(tarball, keep_contents=True)

    assert result.complete
    assert result.contents == {"renamed.js": b"hello"}


def test_an_old_style_extended_header_is_read_as_a_pax_header():
    # type 'X' is node-tar's OldExtendedHeader, parsed like 'x'
    tarball = tgz(pax(record("path", "package/renamed.js"), flag=b"X"), file(b"package/a", b"a"))

    assert read_archive(tarball, keep_contents=True).contents == {"renamed.js": b"a"}


def test_a_gnu_long_link_name_is_the_target_a_link_finding_shows():
    link = member(Header(b"package/link", flag=b"2", linkname=b"short"))

    result = read_archive(tgz(gnu_long(b"/etc/passwd", flag=b"K"), link))

    assert result.findings == [
        Finding(
            FindingKind.SYMLINK,
            "package/link",
            "symbolic link to /etc/passwd; npm does not create links",
        )
    ]
    assert result.complete


# --- Files: the size limit, duplicates, the memory budget ------------------------------------


def test_a_file_exactly_at_the_size_limit_is_loaded_and_one_byte_more_is_not():
    tarball = tgz(file(b"package/four.js", b"four"), file(b"package/five.js", b"five!"))

    result = read_archive(tarball, Limits(max_entry_bytes=4), keep_contents=True)

    assert result.contents == {"four.js": b"four"}
    assert not result.files["four.js"].oversized
    assert result.files["five.js"].oversized
    assert result.findings == [
        Finding(
            FindingKind.OVERSIZED_ENTRY,
            "five.js",
            "5 bytes file, over the 4 bytes limit for one file: listed and hashed, never loaded",
        )
    ]


def test_a_duplicate_rewritten_in_place_says_which_mode_it_keeps():
    first = file(b"package/run.js", b"one", mode=0o755)
    second = file(b"package/run.js", b"two", mode=0o644)

    result = read_archive(tgz(first, second))

    assert result.findings == [
        Finding(
            FindingKind.DUPLICATE_PATH,
            "run.js",
            f"{DUPLICATE} (npm writes it over the first copy, which keeps mode 755)",
        )
    ]
    assert result.files["run.js"].mode == 0o755


def test_a_contiguous_file_over_a_file_is_a_duplicate_with_its_own_mode():
    # type '7' is unlinked and made anew: nothing of the first copy is kept
    first = file(b"package/run.js", b"one", mode=0o755)
    fresh = file(b"package/run.js", b"fresh", mode=0o644, flag=b"7")

    result = read_archive(tgz(first, fresh), keep_contents=True)

    assert result.findings == [Finding(FindingKind.DUPLICATE_PATH, "run.js", DUPLICATE)]
    assert result.files["run.js"].mode == 0o644
    assert result.contents == {"run.js": b"fresh"}


def test_contents_that_fill_the_budget_exactly_are_kept_even_when_a_copy_replaces_them():
    # the second copy takes the first one's place in memory: 6 bytes held, never 12
    tarball = tgz(file(b"package/a.js", b"first!"), file(b"package/a.js", b"second"))

    result = read_archive(tarball, Limits(max_kept_bytes=6), keep_contents=True)

    assert result.contents == {"a.js": b"second"}
    assert result.contents_complete


def test_a_replaced_copy_frees_its_bytes_once_for_the_files_after_it():
    # held: a (4) + b (10), then a again (still 14), then c (6): 20 in all
    tarball = tgz(
        file(b"package/a.js", b"aaaa"),
        file(b"package/b.js", b"b" * 10),
        file(b"package/a.js", b"AAAA"),
        file(b"package/c.js", b"c" * 6),
    )

    fits = read_archive(tarball, Limits(max_kept_bytes=20), keep_contents=True)
    short = read_archive(tarball, Limits(max_kept_bytes=19), keep_contents=True)

    assert fits.contents == {"a.js": b"AAAA", "b.js": b"b" * 10, "c.js": b"c" * 6}
    assert fits.contents_complete
    assert short.contents == {"a.js": b"AAAA", "b.js": b"b" * 10}
    assert short.contents_complete is False


def test_a_file_longer_than_one_read_is_kept_and_handed_over_whole():
    big = b"0123456789abcdef" * (MiB // 8)  # 2 MiB: two reads
    tarball = tgz(file(b"package/big.js", big), file(b"package/small.js", b"small"))
    streamed: list[tuple[FileEntry, bytes]] = []
    walked: list[tuple[str, bytes]] = []

    kept = read_archive(tarball, keep_contents=True)
    refusal = stream_members(tarball, ["big.js"], lambda *member: streamed.append(member))
    walk = ArchiveWalk(tarball, lambda entry, data: walked.append((entry.path, data)))

    assert kept.contents == {"big.js": big, "small.js": b"small"}
    assert refusal is None
    assert streamed == [(kept.files["big.js"], big)]
    assert walk.result.files == kept.files
    assert walked == [("big.js", big), ("small.js", b"small")]


def test_a_binary_file_has_no_line_figures():
    entry = read_archive(tgz(file(b"package/logo.png", b"PNG\0\nline\n"))).files["logo.png"]

    assert entry.is_binary
    assert entry.line_count is None
    assert entry.longest_line is None


# --- Headers npm skips, and where a file lands -----------------------------------------------


def test_a_header_with_a_wrong_checksum_stops_the_reading():
    tarball = tgz(file(b"package/a.js", b"a"), file(b"package/b.js", b"b", checksum_delta=1))

    result = read_archive(tarball)

    assert result.refusal == Refusal(
        RefusalReason.CORRUPT, "A tar header has a wrong checksum: the file is corrupt."
    )
    assert set(result.files) == {"a.js"}


def test_a_header_without_a_name_stops_the_reading():
    result = read_archive(tgz(file(b"", b"ok();\n")))

    assert result.refusal == Refusal(
        RefusalReason.CORRUPT,
        "A tar header has no name; npm would skip it and read on from the next block, which "
        "can hide files. Not shown.",
    )


def test_a_link_without_a_target_in_its_own_header_stops_the_reading():
    # npm checks the header's own field, before a pax or GNU link name applies
    tarball = tgz(gnu_long(b"/etc/passwd", flag=b"K"), member(Header(b"package/l", flag=b"2")))

    assert read_archive(tarball).refusal == Refusal(
        RefusalReason.CORRUPT,
        "A link entry has no target in its own header; npm would skip it and read on from the "
        "next block, which can hide files. Not shown.",
    )


def test_only_pax_headers_and_links_may_name_a_link_target():
    # parse.js: /^(Global)?ExtendedHeader$/, so 'x' and 'g', not the old 'X'
    records = record("path", "package/renamed.js")
    local = member(Header(b"PaxHeader/x", len(records), b"x", linkname=b"t"), records)
    global_ = member(Header(b"PaxHeader/g", 0, b"g", linkname=b"t"))
    old = member(Header(b"PaxHeader/X", len(records), b"X", linkname=b"t"), records)
    after = file(b"package/a.js", b"a")

    assert set(read_archive(tgz(global_, local, after)).files) == {"renamed.js"}
    assert read_archive(tgz(old, after)).refusal == Refusal(
        RefusalReason.CORRUPT,
        "A tar header that is not a link names a link target; npm would skip it and read on "
        "from the next block, which can hide files. Not shown.",
    )


def test_a_tarball_exactly_at_the_total_size_limit_is_read_and_one_byte_less_refuses_it():
    tarball = tgz(file(b"package/a.js", b"a"))  # 512 + 512 + 1,024 bytes unpacked

    whole = read_archive(tarball, Limits(max_total_bytes=2048))
    refused = read_archive(tarball, Limits(max_total_bytes=2047))

    assert whole.complete
    assert whole.unpacked_bytes == 2048
    assert refused.refusal == Refusal(
        RefusalReason.TOTAL_SIZE, "The tarball unpacks to more than 2 KiB."
    )


def test_a_name_with_a_control_character_is_installed_and_reported():
    result = read_archive(tgz(file(b"package/a\x1bb.js", b"a")))

    assert set(result.files) == {"a\x1bb.js"}
    assert result.findings == [
        Finding(
            FindingKind.SUSPICIOUS_NAME,
            "package/a\x1bb.js",
            "the name holds control characters or bytes that are not UTF-8",
        )
    ]


def test_a_path_deeper_than_npm_goes_is_skipped_and_reported():
    deepest = "package/" + "d/" * (MAX_DEPTH - 1) + "f.js"
    deeper = "package/" + "d/" * MAX_DEPTH + "g.js"
    tarball = tgz(
        pax(record("path", deepest)),
        file(b"x", b"a"),
        pax(record("path", deeper)),
        file(b"y", b"b"),
    )

    result = read_archive(tarball)

    assert set(result.files) == {deepest.removeprefix("package/")}
    assert [(finding.kind, finding.detail) for finding in result.findings] == [
        (FindingKind.PATH_TOO_LONG, f"nested deeper than {MAX_DEPTH:,} folders; npm skips it")
    ]


def test_a_path_surely_writable_is_installed_and_one_byte_more_is_refused():
    surely, unsure_path = path_of(SURELY_WRITABLE), path_of(SURELY_WRITABLE + 1)

    installed = read_archive(tgz(pax(record("path", "package/" + surely)), file(b"x", b"a")))
    refused = read_archive(tgz(pax(record("path", "package/" + unsure_path)), file(b"x", b"a")))

    assert set(installed.files) == {surely}
    assert refused.refusal == unsure(
        f"The path '{unsure_path[:1000]}… (3,001 characters)' is 3,001 bytes long, which "
        "installs or not depending on the folder npm installs into"
    )


def test_a_path_of_the_longest_length_is_refused_and_one_byte_more_is_never_written():
    longest, too_long = path_of(NEVER_WRITABLE), path_of(NEVER_WRITABLE + 1)

    refused = read_archive(tgz(pax(record("path", "package/" + longest)), file(b"x", b"a")))
    skipped = read_archive(tgz(pax(record("path", "package/" + too_long)), file(b"x", b"a")))

    assert refused.refusal is not None
    assert "is 4,095 bytes long" in refused.refusal.message
    assert skipped.complete
    assert skipped.files == {}
    assert [finding.detail for finding in skipped.findings] == [
        "a part of this path is over 255 bytes or the whole over 4 KiB; npm cannot write it"
    ]


def test_a_tarball_cut_inside_a_file_says_so_in_plain_words():
    truncated = gzip(file(b"package/a.js", b"a" * 5000)[:2048])  # the header and 1,536 bytes

    result = read_archive(truncated)

    assert result.refusal == Refusal(
        RefusalReason.TRUNCATED, "The tarball ends in the middle of an entry."
    )
