"""Reading ordinary tarballs: the index, contents on demand, the formats npm meets."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pygit2
import pytest

from reviews.inspect.archive import (
    Finding,
    FindingKind,
    Limits,
    RefusalReason,
    count_lines,
    format_size,
    git_blob_oid,
    is_binary,
    read_archive,
    read_members,
)
from tests.inspect.builders import Entry, gzip_bytes, make_tarball, noise, package


def test_indexes_every_file_under_the_package_folder():
    tarball = make_tarball(
        {
            "package.json": package(),
            "index.js": "module.exports = 1;\n",
            "lib/deep/util.js": "a\nb\nc",
            "bin/cli.js": "#!/usr/bin/env node\n",
        },
        modes={"bin/cli.js": 0o755},
    )

    result = read_archive(tarball)

    assert result.complete
    assert result.refused is None
    assert result.findings == []
    assert set(result.files) == {"package.json", "index.js", "lib/deep/util.js", "bin/cli.js"}
    assert result.top_folders == ("package",)
    entry = result.files["index.js"]
    assert entry.size == 20
    assert entry.sha256 == hashlib.sha256(b"module.exports = 1;\n").hexdigest()
    assert entry.git_oid == str(pygit2.hash(b"module.exports = 1;\n"))
    assert entry.line_count == 1
    assert not entry.is_binary
    assert result.files["lib/deep/util.js"].line_count == 3
    assert result.files["bin/cli.js"].is_executable
    assert not entry.is_executable
    assert result.contents == {}


def test_strips_whatever_single_top_folder_the_tarball_uses():
    tarball = make_tarball({"index.js": "x\n", "lib/a.js": "y\n"}, top="node")

    result = read_archive(tarball)

    assert set(result.files) == {"index.js", "lib/a.js"}
    assert result.top_folders == ("node",)
    assert result.findings == []


def test_several_top_folders_merge_as_npm_extracts_them_and_are_reported():
    tarball = make_tarball([Entry("package/a.js", b"a\n"), Entry("other/b.js", b"b\n")])

    result = read_archive(tarball)

    assert set(result.files) == {"a.js", "b.js"}
    assert [f.kind for f in result.findings] == [FindingKind.SEVERAL_TOP_FOLDERS]
    assert "package, other" in result.findings[0].detail


def test_binary_is_a_nul_in_the_first_8000_bytes_as_git_decides():
    late_nul = b"a" * 8000 + b"\0"
    tarball = make_tarball(
        {"a.wasm": b"\0asm\x01\0\0\0", "late.txt": late_nul, "empty.txt": b"", "t.js": b"x"}
    )

    files = read_archive(tarball).files

    assert files["a.wasm"].is_binary
    assert files["a.wasm"].line_count is None
    assert not files["late.txt"].is_binary
    assert not files["empty.txt"].is_binary
    assert files["empty.txt"].line_count == 0
    assert files["t.js"].line_count == 1
    assert is_binary(b"ab\0")
    assert not is_binary(late_nul)


def test_lines_split_on_newline_only_never_on_form_feed_or_unicode_separators():
    text = "a\fb\vc\x1cd\u2028e\u2029f\u0085g\r\nh\ri\n".encode()
    assert len(text.decode().splitlines()) == 9  # the trap

    entry = read_archive(make_tarball({"min.js": text})).files["min.js"]

    assert entry.line_count == 2 == count_lines(text)


def test_longest_line_is_measured_across_read_chunks():
    one_line = noise(3 * 1024 * 1024 + 17)  # spans several 1 MiB reads
    mixed = b"short\n" + noise(1_500_000, seed=1) + b"\n" + b"z\n" * 10
    files = read_archive(make_tarball({"bundle.min.js": one_line, "mixed.js": mixed})).files

    assert files["bundle.min.js"].line_count == 1
    assert files["bundle.min.js"].longest_line == len(one_line)
    assert files["mixed.js"].line_count == 12
    assert files["mixed.js"].longest_line == 1_500_000


def test_keep_contents_holds_bytes_in_memory_within_the_budget():
    files = {"a.js": b"a" * 1000, "b.js": b"b" * 1000, "c.js": b"c" * 1000}
    tarball = make_tarball(files)

    everything = read_archive(tarball, keep_contents=True)
    chosen = read_archive(tarball, keep_contents=["b.js"])
    one = read_archive(tarball, keep_contents="c.js")
    budget = read_archive(tarball, Limits(max_kept_bytes=2500), keep_contents=True)
    by_entry = read_archive(tarball, keep_contents=lambda entry: entry.path != "a.js")

    assert everything.contents == files
    assert everything.contents_complete
    assert chosen.contents == {"b.js": b"b" * 1000}
    assert chosen.contents_complete
    assert one.contents == {"c.js": b"c" * 1000}
    assert len(budget.contents) == 2
    assert not budget.contents_complete
    assert set(budget.files) == set(files)  # the index is whole all the same
    assert set(by_entry.contents) == {"b.js", "c.js"}


def test_read_members_returns_only_the_chosen_files():
    tarball = make_tarball({"a.js": "A", "b.js": "B", "c/d.js": "D"})

    assert read_members(tarball, ["c/d.js", "a.js", "missing.js"]) == {"c/d.js": b"D", "a.js": b"A"}
    assert read_members(tarball, []) == {}


def test_reads_from_a_binary_file_object(tmp_path: Path):
    path = tmp_path / "demo-1.0.0.tgz"
    path.write_bytes(make_tarball({"package.json": package(), "a.js": "A"}))

    with path.open("rb") as handle:
        result = read_archive(handle, keep_contents=True)

    assert result.complete
    assert result.contents["a.js"] == b"A"
    assert result.compressed_bytes == path.stat().st_size


def test_reads_an_uncompressed_tar_too():
    result = read_archive(make_tarball({"a.js": "A"}, compress=False))

    assert result.complete
    assert set(result.files) == {"a.js"}


def test_reads_several_gzip_members_back_to_back_as_gunzip_does():
    raw = make_tarball({"a.js": "A" * 5000, "b.js": "B"}, compress=False)
    tarball = gzip_bytes(raw[:4096]) + gzip_bytes(raw[4096:])

    result = read_archive(tarball, keep_contents=True)

    assert result.complete
    assert result.contents == {"a.js": b"A" * 5000, "b.js": b"B"}


@pytest.mark.parametrize(
    "tar_format", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT]
)
def test_long_names_in_pax_gnu_and_ustar_prefix_forms(tar_format):
    deep = "lib/" + "/".join(["very-long-directory-name-" + str(i) for i in range(5)]) + "/f.js"
    assert len("package/" + deep) > 100

    result = read_archive(make_tarball({deep: "x\n"}, tar_format=tar_format))

    assert result.complete
    assert set(result.files) == {deep}


def test_unicode_file_names_survive_as_npm_pack_writes_them():
    # npm pack puts a non-ASCII name both in a pax record and, as UTF-8, in the header itself
    result = read_archive(make_tarball({"lib/naïve-日本.js": "x"}))

    assert result.complete
    assert set(result.files) == {"lib/naïve-日本.js"}
    assert result.findings == []


def test_a_non_ascii_pax_path_over_a_different_header_name_is_refused():
    # tarfile writes "na?ve-??.js" in the header under the pax path. npm decodes each network
    # chunk on its own: a character split between two chunks voids the pax record, and npm
    # installs the file under the header's name instead. What npm installs is not knowable.
    result = read_archive(make_tarball({"lib/naïve-日本.js": "x"}, tar_format=tarfile.PAX_FORMAT))

    assert result.refusal is not None
    assert result.refusal.reason is RefusalReason.CORRUPT
    assert "non-ASCII" in result.refusal.message
    assert "package/lib/na?ve-??.js" in result.refusal.message


def test_a_duplicate_path_keeps_the_last_copy_like_extraction_and_is_reported():
    tarball = make_tarball([Entry("package/a.js", b"first\n"), Entry("package/a.js", b"second\n")])

    result = read_archive(tarball, keep_contents=True)

    assert result.contents == {"a.js": b"second\n"}
    assert result.files["a.js"].sha256 == hashlib.sha256(b"second\n").hexdigest()
    assert result.findings == [
        Finding(FindingKind.DUPLICATE_PATH, "a.js", result.findings[0].detail)
    ]


def test_directory_entries_are_not_files():
    tarball = make_tarball(
        [
            Entry("package/", type=tarfile.DIRTYPE),
            Entry("package/lib/", type=tarfile.DIRTYPE),
            Entry("package/lib/a.js", b"a"),
        ]
    )

    result = read_archive(tarball)

    assert set(result.files) == {"lib/a.js"}
    assert result.findings == []


def test_format_size_reads_like_a_person_wrote_it():
    assert format_size(87) == "87 bytes"
    assert format_size(512 * 1024) == "512 KiB"
    assert format_size(int(3.4 * 1024 * 1024)) == "3.4 MiB"
    assert git_blob_oid(b"") == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"  # git's empty blob


@pytest.mark.npm
def test_a_tarball_made_by_npm_pack_is_indexed_like_tarfile_sees_it(tmp_path: Path):
    assert shutil.which("npm"), "the suite needs the npm CLI (npm 11.15 or later) on PATH"
    source = tmp_path / "src"
    (source / "lib").mkdir(parents=True)
    (source / "package.json").write_text('{"name": "packed", "version": "1.2.3"}\n')
    (source / "lib" / "index.js").write_text("module.exports = 42;\n")
    (source / "README.md").write_text("# packed\n")
    subprocess.run(
        ["npm", "pack", "--ignore-scripts", "--silent", "--pack-destination", str(tmp_path)],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=120,
    )
    tarball = (tmp_path / "packed-1.2.3.tgz").read_bytes()

    result = read_archive(tarball, keep_contents=True)

    with tarfile.open(fileobj=io.BytesIO(tarball)) as archive:
        expected = {
            member.name.split("/", 1)[1]: archive.extractfile(member).read()  # type: ignore[union-attr]
            for member in archive.getmembers()
            if member.isfile()
        }
    assert result.complete
    assert result.findings == []
    assert result.contents == expected
    assert {"package.json", "lib/index.js", "README.md"} <= set(result.files)
