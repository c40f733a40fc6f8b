"""The reader follows npm's own extraction rule by rule (each also checked against npm itself in
test_npm_differential.py); where npm's result cannot be known from the bytes, it refuses."""

from __future__ import annotations

import pytest

from reviews.inspect import tar_rules
from reviews.inspect.archive import (
    Finding,
    FindingKind,
    RefusalReason,
    read_archive,
    read_members,
)
from reviews.inspect.tar_rules import (
    MAX_SAFE_INTEGER,
    NAME_MAX,
    HeaderError,
    PackageFolder,
    Placement,
    decode_number,
    install_path,
    js_cut_at_nul,
    strip_absolute_path,
)
from tests.support.tarcraft import (
    Header,
    base256,
    end_of_archive,
    file,
    gnu_long,
    gzip,
    member,
    pax,
    record,
    tgz,
)


def kinds(result):
    return [finding.kind for finding in result.findings]


def test_a_pax_path_applies_before_the_trailing_slash_of_the_header_name_is_looked_at():
    body = b"console.log('from the body')\n"
    tarball = tgz(pax(record("path", "package/index.js")), file(b"package/index.js/", body))

    result = read_archive(tarball, keep_contents=True)

    assert result.contents == {"index.js": body}


def test_a_pax_size_sets_how_much_body_the_entry_has():
    tarball = tgz(pax(record("size", "4")), file(b"package/a.js", b"four", size_field=bytes(12)))

    assert read_archive(tarball, keep_contents=True).contents == {"a.js": b"four"}


def test_a_global_pax_size_applies_to_every_later_entry():
    tarball = tgz(pax(record("size", "2"), flag=b"g"), member(Header(b"package/a.js"), b"aa"))

    assert read_archive(tarball, keep_contents=True).contents == {"a.js": b"aa"}


def test_a_global_pax_path_is_ignored_as_npm_ignores_it():
    tarball = tgz(pax(record("path", "package/evil.js"), flag=b"g"), file(b"package/a.js", b"a"))

    assert set(read_archive(tarball).files) == {"a.js"}


def test_a_pax_record_whose_length_does_not_match_is_ignored():
    tarball = tgz(pax(record("path", "package/evil.js", 1)), file(b"package/a.js", b"a"))

    assert set(read_archive(tarball).files) == {"a.js"}


def test_a_folder_type_with_a_body_reads_its_body_as_headers_as_npm_does():
    inner = file(b"package/inner.js", b"inner")
    tarball = tgz(member(Header(b"package/d/", size=len(inner), flag=b"5"), inner))

    assert set(read_archive(tarball).files) == {"inner.js"}


def test_sizes_in_base_256_are_read():
    data = b"x" * 700
    tarball = tgz(member(Header(b"package/a.js", size_field=base256(len(data), 12)), data))

    assert read_archive(tarball).files["a.js"].size == 700


def test_a_negative_size_is_zero_for_npm():
    inner = file(b"package/inner.js", b"inner")
    tarball = tgz(member(Header(b"package/a.js", size_field=base256(-1, 12)), inner))

    assert set(read_archive(tarball).files) == {"a.js", "inner.js"}
    assert read_archive(tarball).files["a.js"].size == 0


def test_a_size_node_tar_cannot_decode_is_refused():
    bad = b"\x81" + (5).to_bytes(11, "big")  # base-256 must start with 0x80 or 0xff

    result = read_archive(tgz(member(Header(b"package/a.js", size_field=bad), b"abcde")))

    assert result.refusal is not None
    assert result.refusal.reason is RefusalReason.CORRUPT
    assert "base-256" in result.refusal.message


# node-tar's large-numbers `parse`: 0x80 then a positive number, 0xff then a two's complement
# one, anything else throws; so does a value outside JavaScript's safe integers (2**53 - 1).
CANNOT_READ = "a number field is in a base-256 form npm cannot read"
TOO_LARGE = "a base-256 number is too large for npm to read exactly"


def test_base_256_numbers_are_read_up_to_javascripts_safe_integers_and_refused_past_them():
    assert decode_number(base256(MAX_SAFE_INTEGER, 12)) == MAX_SAFE_INTEGER
    assert decode_number(base256(-MAX_SAFE_INTEGER, 12)) == -MAX_SAFE_INTEGER
    for value in (MAX_SAFE_INTEGER + 1, -MAX_SAFE_INTEGER - 1, 2**80, -(2**80)):
        with pytest.raises(HeaderError) as raised:
            decode_number(base256(value, 12))
        assert str(raised.value) == TOO_LARGE


def test_base_256_numbers_must_start_with_0x80_or_0xff():
    for first in (0x81, 0xC0, 0xFE):
        with pytest.raises(HeaderError) as raised:
            decode_number(bytes([first, 0xFF]) + bytes(10))
        assert str(raised.value) == CANNOT_READ


def test_octal_text_is_read_as_parse_int_reads_it():
    assert decode_number(b"17\x01       ") == 0o17  # digits, then anything: parseInt stops
    assert decode_number(b"12\xff\xfe") == 0o12  # bytes that are not UTF-8 after the digits
    assert decode_number(b"        ") is None  # nothing but spaces: NaN
    assert decode_number(b"\0" * 8) is None


def test_plain_octal_text_is_read_without_the_general_rule(monkeypatch):
    def general_rule(text: str, radix: int) -> int | None:
        raise AssertionError(f"parseInt asked for {text!r}")

    monkeypatch.setattr(tar_rules, "js_parse_int", general_rule)
    assert decode_number(b"0000644\0") == 0o644
    assert decode_number(b"  755 \0") == 0o755


def test_octal_fields_are_read_with_javascripts_whitespace_rules():
    # parseInt after String.trim: a no-break space before the digits does not stop it (as the
    # first byte it would: a set top bit means base-256)
    field = " \u00a06\0".encode().ljust(12, b"\0")
    tarball = tgz(member(Header(b"package/a.js", size_field=field), b"sixsix"))

    assert read_archive(tarball, keep_contents=True).contents == {"a.js": b"sixsix"}


def test_a_set_byte_475_makes_the_prefix_155_bytes_with_its_slash_even_when_empty():
    long_prefix = file(b"index.js", b"a", prefix=b"package/" + b"p" * 123)
    empty_prefix = file(b"package/b.js", b"b", prefix=b"\0" * 130 + b"1")

    result = read_archive(tgz(long_prefix, empty_prefix))

    # "/package/b.js": npm strips the empty first part and installs package/b.js
    assert set(result.files) == {"p" * 123 + "/index.js", "package/b.js"}


def test_the_nul_cut_stops_at_a_line_end_as_javascripts_dot_does():
    assert js_cut_at_nul("a\0junk\nb") == "a\nb"
    assert js_cut_at_nul("a\0junk") == "a"

    # only the first match goes: the name must fill its 100 bytes, or the padding NULs stay
    name = b"package/a\0x\n" + b"b" * 88
    result = read_archive(tgz(file(name, b"a")))

    assert set(result.files) == {"a\n" + "b" * 88}
    assert kinds(result) == [FindingKind.SUSPICIOUS_NAME]


def test_a_name_that_keeps_a_nul_byte_is_refused():
    result = read_archive(tgz(file(b"package/a\0\nb\0c", b"a")))

    assert result.refusal is not None
    assert "NUL" in result.refusal.message


def test_strip_drops_the_first_part_whatever_it_is():
    assert install_path("package/lib/a.js").path == "lib/a.js"
    assert install_path("./package/a.js").path == "package/a.js"
    assert install_path("/etc/passwd").path == "etc/passwd"
    assert install_path("package//etc/x").path == "etc/x"
    assert install_path("package/C:/x.js").path == "x.js"
    assert install_path("package/C:").skipped == "package-folder"  # the root is all there is
    assert install_path("package/a\\..\\b").skipped == "parent"
    assert install_path("package/../x").skipped == "parent"
    assert install_path("package").skipped == "package-folder"
    assert install_path("package/" + "d/" * 1025 + "f").skipped == "depth"


def test_empty_and_dot_parts_inside_a_path_are_dropped_as_path_resolve_drops_them():
    assert install_path("package/lib//x.js").path == "lib/x.js"
    assert install_path("package/lib/./x.js").path == "lib/x.js"
    assert install_path("package/./lib/.//x.js").path == "lib/x.js"


def test_a_path_of_exactly_1024_parts_after_the_first_installs_and_one_more_is_too_deep():
    # node-tar's maxDepth (1024) counts the parts left after `strip: 1`, and refuses only more.
    at_the_limit = "package/" + "d/" * 1023 + "f"
    assert install_path(at_the_limit).path == "d/" * 1023 + "f"
    assert install_path("package/" + "d/" * 1024 + "f").skipped == "depth"
    assert strip_absolute_path("\\\\server\\share\\x") == ("\\\\server\\share\\", "x")
    assert strip_absolute_path("//server/share/x") == ("//", "server/share/x")


# What node-tar's own stripAbsolutePath (npm 10, Node 20) returns for win32 roots: UNC shares with
# doubled, missing or mixed separators, drive letters and the characters either side of a-z/A-Z.
# Where a file lands depends on how much is peeled off, so every branch of the root scan counts.
NODE_TAR_STRIPS = [
    ("\\\\server\\share\\x", ("\\\\server\\share\\", "x")),
    ("\\\\server\\share", ("\\\\server\\share", "")),
    ("\\\\server\\\\\\share\\x", ("\\\\server\\\\\\share\\", "x")),
    ("\\\\server", ("\\\\", "server")),
    ("\\\\server\\x", ("\\\\server\\x", "")),
    ("\\\\\\x", ("\\\\\\", "x")),
    ("\\\\", ("\\\\", "")),
    ("\\\\s\\\\x", ("\\\\s\\\\x", "")),
    ("\\\\a\\b", ("\\\\a\\b", "")),
    ("\\\\a\\b\\", ("\\\\a\\b\\", "")),
    ("\\\\a\\b\\\\c", ("\\\\a\\b\\\\", "c")),
    ("\\\\a\\\\", ("\\\\", "a\\\\")),
    ("\\\\ab\\cd\\ef", ("\\\\ab\\cd\\", "ef")),
    ("\\\\a\\\\\\b", ("\\\\a\\\\\\b", "")),
    ("\\/a/b/c/d", ("\\/a/b/", "c/d")),
    ("\\\\a\\b/c", ("\\\\a\\b/", "c")),
    ("/\\a\\b\\c", ("/\\", "a\\b\\c")),
    ("\\\\a/b\\c\\d", ("\\\\a/b\\", "c\\d")),
    ("C:\\\\\\server\\share\\x", ("C:\\\\\\server\\share\\", "x")),
    ("C:\\x", ("C:\\", "x")),
    ("C:x", ("C:", "x")),
    ("1:\\x", ("", "1:\\x")),
    ("[:\\x", ("", "[:\\x")),
    ("@:/x", ("", "@:/x")),
    ("z:/x", ("z:/", "x")),
    ("Z:/x", ("Z:/", "x")),
    ("{:/x", ("", "{:/x")),
    ("`:/x", ("", "`:/x")),
    ("a:/x", ("a:/", "x")),
    ("A:/x", ("A:/", "x")),
    ("//?/x", ("//?/x", "")),
    ("//?/C:/x", ("//?/C:/", "x")),
]


@pytest.mark.parametrize(("path", "stripped"), NODE_TAR_STRIPS)
def test_absolute_roots_are_peeled_off_as_node_tar_does(
    path: str, stripped: tuple[str, str]
) -> None:
    assert strip_absolute_path(path) == stripped


def test_a_gitignore_installs_as_npmignore_unless_one_came_first():
    renamed = tgz(file(b"package/.gitignore", b"g"), file(b"package/lib/.gitignore", b"h"))
    shadowed = tgz(file(b"package/.npmignore", b"n"), file(b"package/.gitignore", b"g"))

    assert set(read_archive(renamed).files) == {".npmignore", "lib/.npmignore"}
    assert read_archive(shadowed, keep_contents=True).contents == {".npmignore": b"n"}


def test_only_a_file_named_exactly_gitignore_is_renamed():
    near = tgz(file(b"package/.gitignore ", b"g"), file(b"package/lib/.gitignoreX", b"h"))

    assert set(read_archive(near).files) == {".gitignore ", "lib/.gitignoreX"}


def test_a_file_rewritten_in_place_keeps_the_first_copys_mode():
    first = file(b"package/run.js", b"one", mode=0o755)
    second = file(b"package/run.js", b"two", mode=0o644)  # type '0': npm opens the old file
    fresh = file(b"package/run.js", b"two", mode=0o644, flag=b"7")  # '7': unlinked first

    in_place = read_archive(tgz(first, second))
    unlinked = read_archive(tgz(first, fresh))

    assert in_place.files["run.js"].is_executable
    assert "keeps mode 755" in in_place.findings[0].detail
    assert not unlinked.files["run.js"].is_executable


def test_files_blocked_by_a_file_or_a_folder_are_not_listed_and_are_reported():
    tarball = tgz(
        file(b"package/a", b"file a"),
        file(b"package/a/b.js", b"under a file"),
        file(b"package/lib/x.js", b"x"),
        file(b"package/lib", b"over a folder with files"),
    )

    result = read_archive(tarball)

    assert set(result.files) == {"a", "lib/x.js"}
    assert kinds(result) == [FindingKind.BLOCKED_PATH, FindingKind.BLOCKED_PATH]
    assert result.findings == [
        Finding(
            FindingKind.BLOCKED_PATH,
            "package/a/b.js",
            "a file sits where one of its folders must go, so npm skips this file",
        ),
        Finding(
            FindingKind.BLOCKED_PATH,
            "package/lib",
            "a folder holding files sits where it must go, so npm skips this file",
        ),
    ]


def test_a_name_part_over_255_bytes_is_not_installed_and_is_reported():
    result = read_archive(tgz(pax(record("path", "package/" + "n" * 256)), file(b"x", b"a")))

    assert result.files == {}
    assert kinds(result) == [FindingKind.PATH_TOO_LONG]


def test_a_path_whose_install_depends_on_the_install_folder_is_refused():
    long_path = "package/" + "/".join(["d" * 200] * 16)  # 3,215 bytes: under PATH_MAX or not

    result = read_archive(tgz(pax(record("path", long_path)), file(b"x", b"a")))

    assert result.refusal is not None
    assert "depending on the folder" in result.refusal.message


def test_paths_that_differ_only_in_case_or_normalisation_are_reported():
    tarball = tgz(
        file(b"package/index.js", b"a"),
        file(b"package/Index.js", b"b"),
        file("package/café.js".encode(), b"c"),  # NFC
        file("package/cafe\u0301.js".encode(), b"d"),  # NFD
        file(b"package/lib/a.js", b"e"),
        file(b"package/LIB/b.js", b"f"),
    )

    result = read_archive(tarball)

    assert len(result.files) == 6  # all install on Linux
    collisions = [f for f in result.findings if f.kind is FindingKind.PATH_COLLISION]
    assert [f.path for f in collisions] == ["Index.js", "cafe\u0301.js", "LIB"]
    assert "macOS and Windows" in collisions[0].detail
    assert "index.js" in collisions[0].detail


def test_read_members_finds_files_under_their_installed_names():
    tarball = tgz(file(b"package/.gitignore", b"g"), file(b"/abs.js", b"a"))

    assert read_members(tarball, [".npmignore", "abs.js"]) == {".npmignore": b"g", "abs.js": b"a"}


@pytest.mark.parametrize(
    ("before", "what"),
    [
        (b"", "no name"),
        (b"package/a.js", "link target"),
    ],
)
def test_headers_npm_would_skip_alone_are_refused(before, what):
    # npm skips such a header and reads its body as headers: a way to hide files from readers
    header = Header(before, size=6, linkname=b"x" if before else b"")

    result = read_archive(tgz(member(header, b"ok();\n")))

    assert result.refusal is not None
    assert what in result.refusal.message


def test_a_meta_header_sized_zero_by_an_earlier_one_is_refused():
    tarball = tgz(pax(record("size", "0")), pax(record("path", "package/x.js")), file(b"a", b"a"))

    result = read_archive(tarball)

    assert result.refusal is not None
    assert "overridden" in result.refusal.message


def test_a_non_ascii_gnu_long_name_is_refused():
    # npm decodes each network chunk on its own: a split character garbles the name
    result = read_archive(tgz(gnu_long("package/日本.js".encode()), file(b"x", b"a")))

    assert result.refusal is not None
    assert "non-ASCII" in result.refusal.message


def test_a_non_ascii_pax_path_matching_the_header_name_is_read():
    name = "package/日本.js".encode()

    result = read_archive(tgz(pax(record("path", name)), file(name, b"a")))

    assert set(result.files) == {"日本.js"}


def test_a_file_with_a_link_target_is_refused():
    result = read_archive(tgz(pax(record("linkpath", "../../x")), file(b"package/a.js", b"a")))

    assert result.refusal is not None
    assert "link target" in result.refusal.message


@pytest.mark.parametrize("value", ["0x10", " 8", "1e1", "-1", ""])
def test_a_pax_size_written_as_another_kind_of_number_is_refused(value):
    result = read_archive(tgz(pax(record("size", value)), file(b"package/a.js", b"a")))

    assert result.refusal is not None
    assert "pax size" in result.refusal.message


def test_a_pax_size_npm_cannot_read_exactly_is_refused_and_the_largest_it_can_is_read():
    beyond = read_archive(tgz(pax(record("size", str(2**53))), file(b"package/a.js", b"a")))
    largest = read_archive(tgz(pax(record("size", str(2**53 - 1))), file(b"package/a.js", b"a")))

    assert beyond.refusal is not None
    assert "a pax size beyond what npm reads exactly" in beyond.refusal.message
    # Taken as the body's length, which the tarball does not hold.
    assert largest.refusal is not None
    assert largest.refusal.reason is RefusalReason.TRUNCATED


# Not numbers to JavaScript (NaN), so npm ignores the record and keeps the header's size:
# `\x1c` is whitespace to Python's `str.strip` but not to JavaScript's `Number`.
@pytest.mark.parametrize("value", ["abc", "\x1c", "\x1c4"])
def test_a_pax_size_that_is_not_a_number_is_ignored_as_npm_does(value):
    result = read_archive(tgz(pax(record("size", value)), file(b"package/a.js", b"a")))

    assert result.refusal is None
    assert set(result.files) == {"a.js"}


def test_a_missing_end_marker_and_a_partial_last_block_are_ignored_as_npm_does():
    raw = file(b"package/a.js", b"a") + b"partial block"

    assert set(read_archive(gzip(raw)).files) == {"a.js"}


def test_after_the_end_marker_nothing_counts_but_gzip_must_still_be_valid():
    raw = file(b"package/a.js", b"a") + end_of_archive() + file(b"package/late.js", b"late")

    assert set(read_archive(gzip(raw)).files) == {"a.js"}
    corrupt = read_archive(gzip(raw) + b"junk")
    assert corrupt.refusal is not None
    assert corrupt.refusal.reason is RefusalReason.CORRUPT


def test_zero_bytes_after_the_gzip_stream_are_ignored_as_node_does():
    tarball = tgz(file(b"package/a.js", b"a")) + bytes(100)

    assert read_archive(tarball).complete


def test_a_zstd_tarball_is_refused_by_name():
    result = read_archive(b"\x28\xb5\x2f\xfd" + bytes(600))

    assert result.refusal is not None
    assert "zstd" in result.refusal.message


def test_a_tarball_with_no_entry_is_refused_as_npm_fails_it():
    result = read_archive(gzip(end_of_archive(4)))

    assert result.refusal is not None
    assert result.refusal.reason is RefusalReason.EMPTY


# The package folder npm fills, one placement at a time (the limits at their exact bounds).


def placed(*paths: str) -> list[str]:
    folder = PackageFolder()
    return [folder.place(path, "0", 0o644).outcome for path in paths]


def test_a_name_of_exactly_255_bytes_is_written_and_one_more_is_too_long():
    assert placed("a" * NAME_MAX, "b" * (NAME_MAX + 1)) == ["new", "too-long"]
    assert placed("a" * NAME_MAX + "/x", "b" * (NAME_MAX + 1) + "/x") == ["new", "too-long"]


def test_names_are_measured_in_utf8_bytes_not_characters():
    assert placed("é" * 127 + "a", "é" * 128) == ["new", "too-long"]  # 255 bytes, then 256
    assert placed("é" * 128 + "/x") == ["too-long"]  # the folder's name too


def test_a_folder_path_of_exactly_3000_bytes_is_made_and_one_more_is_too_long():
    folder = "/".join(["d" * 199] * 15)  # 15 x 199 + 14 slashes = 2,999 bytes
    assert placed(folder + "e/x", folder + "ee/x") == ["new", "too-long"]


def test_a_file_cannot_go_under_another_file():
    assert placed("a", "a/b") == ["new", "under-file"]


def test_a_file_over_a_folder_holding_files_is_skipped_at_any_depth():
    assert placed("a/b/c", "a/b", "a") == ["new", "non-empty-folder", "non-empty-folder"]


def test_a_file_replaces_an_empty_folder_and_is_then_written_over_like_a_file():
    folder = PackageFolder()
    # The folder is made for a file npm then fails to write, so it stays empty.
    assert folder.place("d/" + "x" * (NAME_MAX + 1), "0", 0o644).outcome == "too-long"
    assert folder.place("d", "0", 0o755).outcome == "over-empty-folder"
    again = folder.place("d", "0", 0o644)
    assert (again.outcome, again.kept_mode) == ("reused", 0o755)


def test_a_file_unlinked_and_made_again_is_then_written_over_with_its_new_mode():
    folder = PackageFolder()
    assert folder.place("run.js", "0", 0o644).outcome == "new"
    assert folder.place("run.js", "7", 0o755).outcome == "replaced"
    again = folder.place("run.js", "0", 0o644)  # opened over the file the '7' entry made
    assert (again.outcome, again.kept_mode) == ("reused", 0o755)


def test_a_file_whose_folder_is_made_already_checks_no_folder_again(monkeypatch):
    # the work per file stays bounded by what is new: npm's usual order, folders before files
    folder = PackageFolder()
    folder.place("a/b/c/one.js", "0", 0o644)
    checked: list[str] = []
    make_folder = PackageFolder._make_folder

    def counted(self: PackageFolder, path: str, name: str) -> Placement | None:
        checked.append(path)
        return make_folder(self, path, name)

    monkeypatch.setattr(PackageFolder, "_make_folder", counted)
    assert placed_in(folder, "a/b/c/two.js", "a/b/d/three.js", "four.js") == ["new"] * 3
    assert checked == ["a", "a/b", "a/b/d"]


def placed_in(folder: PackageFolder, *paths: str) -> list[str]:
    return [folder.place(path, "0", 0o644).outcome for path in paths]


def test_a_root_under_the_first_part_is_reported_as_stripped():
    assert install_path("package/C:/x.js").root_stripped is True
    assert install_path("/etc/passwd").root_stripped is False  # the first part goes anyway
