"""File statuses against the baseline, line counts, and whole-package analysis."""

from __future__ import annotations

import difflib
import io
import json
from typing import Any

import pytest
from zlib_ng import zlib_ng

from reviews.inspect.archive import Limits, read_archive
from reviews.inspect.changes import (
    ChangeStatus,
    analyse,
    analyse_tarballs,
    compare_indexes,
    line_stats,
)
from tests.inspect.builders import Entry, make_tarball, noise, package

OLD: dict[str, bytes | str] = {
    "package.json": package(version="1.0.0"),
    "index.js": "a\nb\nc\nd\n",
    "same.js": "unchanged\n",
    "gone.js": "removed\nfile\n",
    "old/name.js": "moved content\n",
    "logo.png": b"\x89PNG\r\n\x1a\n\0\0\0" + b"\1" * 100,
    "empty-old.txt": "",
    "script.sh": "echo hi\n",
}
NEW: dict[str, bytes | str] = {
    "package.json": package(version="1.1.0"),
    "index.js": "a\nB\nc\nd\ne\n",
    "same.js": "unchanged\n",
    "new.js": "fresh\nfile\nhere\n",
    "new/name.js": "moved content\n",
    "logo.png": b"\x89PNG\r\n\x1a\n\0\0\0" + b"\2" * 120,
    "empty-new.txt": "",
    "script.sh": "echo hi\n",
}


def statuses(changeset):
    return {change.path: change.status for change in changeset.changes}


def test_every_status_against_the_baseline():
    old = make_tarball(OLD)
    new = make_tarball(NEW, modes={"script.sh": 0o755})

    changeset = analyse_tarballs(old, new).changeset

    assert statuses(changeset) == {
        "package.json": ChangeStatus.MODIFIED,
        "index.js": ChangeStatus.MODIFIED,
        "same.js": ChangeStatus.UNCHANGED,
        "gone.js": ChangeStatus.REMOVED,
        "new.js": ChangeStatus.ADDED,
        "new/name.js": ChangeStatus.RENAMED,
        "logo.png": ChangeStatus.MODIFIED,
        "empty-old.txt": ChangeStatus.REMOVED,  # empty files are never "renamed"
        "empty-new.txt": ChangeStatus.ADDED,
        "script.sh": ChangeStatus.MODIFIED,  # same bytes, became executable
    }
    assert not changeset.first_release
    assert changeset.stats_complete


def test_line_counts_and_size_changes_per_file():
    changes = analyse_tarballs(make_tarball(OLD), make_tarball(NEW)).changeset.by_path()

    index = changes["index.js"]
    assert (index.lines_added, index.lines_removed) == (2, 1)
    assert index.size_delta == 2
    assert (changes["new.js"].lines_added, changes["new.js"].lines_removed) == (3, 0)
    assert (changes["gone.js"].lines_added, changes["gone.js"].lines_removed) == (0, 2)
    assert changes["gone.js"].size_delta == -len("removed\nfile\n")
    renamed = changes["new/name.js"]
    assert renamed.old_path == "old/name.js"
    assert (renamed.lines_added, renamed.lines_removed, renamed.size_delta) == (0, 0, 0)
    logo = changes["logo.png"]
    assert logo.is_binary
    assert (logo.lines_added, logo.lines_removed) == (None, None)
    assert logo.size_delta == 20


def test_mode_change_alone_is_a_modification_without_lines():
    changes = analyse_tarballs(
        make_tarball(OLD), make_tarball(NEW, modes={"script.sh": 0o755})
    ).changeset.by_path()

    script = changes["script.sh"]
    assert script.mode_changed
    assert script.became_executable
    assert not script.content_changed
    assert (script.lines_added, script.lines_removed) == (0, 0)


def test_summary_counts_at_the_top_of_the_tree():
    summary = analyse_tarballs(make_tarball(OLD), make_tarball(NEW)).changeset.summary

    assert summary.counts[ChangeStatus.ADDED] == 2
    assert summary.counts[ChangeStatus.REMOVED] == 2
    assert summary.counts[ChangeStatus.RENAMED] == 1
    assert summary.counts[ChangeStatus.UNCHANGED] == 2
    assert summary.counts[ChangeStatus.MODIFIED] == 3
    assert summary.binary_changed == 1
    old_size = sum(len(v if isinstance(v, bytes) else v.encode()) for v in OLD.values())
    new_size = sum(len(v if isinstance(v, bytes) else v.encode()) for v in NEW.values())

    assert (summary.old_size, summary.new_size) == (old_size, new_size)
    assert summary.size_delta == new_size - old_size
    assert summary.lines_added >= 5


def test_a_first_release_has_every_file_added():
    analysis = analyse_tarballs(None, make_tarball(NEW))

    assert analysis.old is None
    assert analysis.changeset.first_release
    assert set(statuses(analysis.changeset).values()) == {ChangeStatus.ADDED}
    assert analysis.changeset.by_path()["new.js"].lines_added == 3


def test_several_identical_files_renamed_pair_up_one_to_one():
    old = {"a/x.js": "same\n", "a/y.js": "same\n"}
    new = {"b/x.js": "same\n", "b/y.js": "same\n", "b/z.js": "same\n"}

    changes = compare_indexes(
        read_archive(make_tarball(old)).files, read_archive(make_tarball(new)).files
    )

    by_path = {c.path: c for c in changes}
    assert by_path["b/x.js"].old_path == "a/x.js"
    assert by_path["b/y.js"].old_path == "a/y.js"
    assert by_path["b/z.js"].status is ChangeStatus.ADDED


def test_line_stats_split_on_newline_only():
    old = "a\fb\u2028c\n".encode()
    new = "a\fB\u2028c\n".encode()

    assert line_stats(old, new) == (1, 1)  # one line for git, three for str.splitlines
    assert line_stats(b"x\n", b"x\n") == (0, 0)
    assert line_stats(b"", b"a\nb\n") == (2, 0)
    assert line_stats(b"a", b"a\n") == (1, 1)  # a newline added at the end


def test_missing_contents_leave_counts_empty_and_say_so():
    old = read_archive(make_tarball(OLD)).files
    new = read_archive(make_tarball(NEW)).files

    changeset = analyse(old, new, {}, {})

    assert not changeset.stats_complete
    assert changeset.by_path()["index.js"].lines_added is None
    assert changeset.by_path()["new.js"].lines_added == 3  # from the index alone


def budget_pair():
    """Two versions whose files come in opposite orders: side by side, every file of one
    side waits for its other copy, past a small budget."""
    old = {f"f{i}.js": noise(4000, seed=i) + b"\n" for i in range(20)}
    new = {**old, "f3.js": old["f3.js"] + b"more\n", "f4.js": old["f4.js"] + b"more\n"}
    return make_tarball(old), make_tarball(dict(reversed(new.items())))


def test_past_the_memory_budget_a_second_read_settles_what_fits_and_says_what_did_not():
    old, new = budget_pair()

    analysis = analyse_tarballs(old, new, Limits(max_kept_bytes=5_000))

    changes = analysis.changeset.by_path()
    counted = [
        path
        for path in ("f3.js", "f4.js")
        if (changes[path].lines_added, changes[path].lines_removed) == (1, 0)
    ]
    assert len(counted) == 1  # one of the two changed files fits the budget at a time
    assert not analysis.changeset.stats_complete
    assert not analysis.new.contents_complete


def test_a_second_read_settles_every_count_within_the_budget():
    old, new = budget_pair()

    analysis = analyse_tarballs(old, new, Limits(max_kept_bytes=9_000))

    assert analysis.changeset.stats_complete
    changes = analysis.changeset.by_path()
    assert (changes["f3.js"].lines_added, changes["f4.js"].lines_added) == (1, 1)


def test_past_the_memory_budget_one_way_streams_leave_counts_out_and_say_so():
    old, new = budget_pair()

    analysis = analyse_tarballs(
        OneWayStream(old),  # type: ignore[arg-type]
        OneWayStream(new),  # type: ignore[arg-type]
        Limits(max_kept_bytes=5_000),
    )

    assert not analysis.changeset.stats_complete
    assert not analysis.new.contents_complete
    assert analysis.changeset.by_path()["f4.js"].lines_added is None


class OneWayStream(io.RawIOBase):
    """A stream that cannot be rewound, like a download read as it arrives."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_file_objects_work_whether_they_can_be_rewound_or_not(tmp_path):
    (tmp_path / "old.tgz").write_bytes(make_tarball(OLD))
    (tmp_path / "new.tgz").write_bytes(make_tarball(NEW))

    with (tmp_path / "old.tgz").open("rb") as old, (tmp_path / "new.tgz").open("rb") as new:
        seekable = analyse_tarballs(old, new).changeset
    one_way = analyse_tarballs(
        OneWayStream(make_tarball(OLD)),  # type: ignore[arg-type]
        OneWayStream(make_tarball(NEW)),  # type: ignore[arg-type]
    )

    for changeset in (seekable, one_way.changeset):
        assert changeset.stats_complete
        index = changeset.by_path()["index.js"]
        assert (index.lines_added, index.lines_removed) == (2, 1)


def test_each_tarball_is_decompressed_once(monkeypatch):
    made = []
    real = zlib_ng.decompressobj

    def counted(*args):
        made.append(args)
        return real(*args)

    monkeypatch.setattr(zlib_ng, "decompressobj", counted)
    analysis = analyse_tarballs(make_tarball(OLD), make_tarball(NEW), keep_paths=["package.json"])

    assert len(made) == 2
    assert analysis.changeset.stats_complete
    assert json.loads(analysis.new.contents["package.json"])["version"] == "1.1.0"
    assert json.loads(analysis.old_contents["package.json"])["version"] == "1.0.0"


def test_changed_text_files_are_handed_over_once_per_side_and_nothing_else():
    handed: list[tuple[str, bytes]] = []

    analysis = analyse_tarballs(
        make_tarball(OLD),
        make_tarball(NEW),
        on_changed=lambda entry, data: handed.append((entry.path, data)),
    )

    assert sorted(handed) == sorted(
        [
            ("package.json", make_entry_bytes(OLD["package.json"])),
            ("package.json", make_entry_bytes(NEW["package.json"])),
            ("index.js", b"a\nb\nc\nd\n"),
            ("index.js", b"a\nB\nc\nd\ne\n"),
            ("gone.js", b"removed\nfile\n"),
            ("empty-old.txt", b""),
            ("empty-new.txt", b""),
            ("new.js", b"fresh\nfile\nhere\n"),
            ("old/name.js", b"moved content\n"),
            ("new/name.js", b"moved content\n"),
        ]
    )
    assert analysis.new.contents == {}  # nothing asked to be kept: nothing held


def make_entry_bytes(data: bytes | str) -> bytes:
    return data.encode() if isinstance(data, str) else data


def test_a_path_twice_in_a_tarball_is_settled_by_its_last_copy():
    old = make_tarball({"a.js": "one\n", "b.js": "x\n"})
    entries = [
        Entry("package/a.js", b"one\n"),
        Entry("package/b.js", b"x\n"),
        Entry("package/a.js", b"one\ntwo\nthree\n"),
    ]
    handed: list[tuple[str, bytes]] = []

    analysis = analyse_tarballs(
        old, make_tarball(entries), on_changed=lambda e, d: handed.append((e.path, d))
    )

    change = analysis.changeset.by_path()["a.js"]
    assert change.status is ChangeStatus.MODIFIED
    assert (change.lines_added, change.lines_removed) == (2, 0)
    assert sorted(handed) == [("a.js", b"one\n"), ("a.js", b"one\ntwo\nthree\n")]


def test_a_refused_staged_tarball_still_gives_the_part_that_was_read():
    analysis = analyse_tarballs(make_tarball(OLD), make_tarball(NEW)[:200])

    assert analysis.new.refusal is not None
    read = set(analysis.new.files)
    assert read < set(NEW)
    unread = {c.path for c in analysis.changeset.changes if c.path not in read}
    assert unread
    assert all(
        c.status is ChangeStatus.REMOVED for c in analysis.changeset.changes if c.path in unread
    )


@pytest.fixture
def difflib_matchers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every difflib matcher made while the test runs (difflib's functions all make one). Wall
    time is bench/bench_limits.py's."""
    made: list[int] = []
    real = difflib.SequenceMatcher

    def counted(*args: Any, **kwargs: Any) -> difflib.SequenceMatcher[Any]:
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(difflib, "SequenceMatcher", counted)
    return made


@pytest.mark.parametrize("size_mb", [4])
def test_a_big_pretty_json_with_repeated_lines_is_counted_by_libgit2(size_mb, difflib_matchers):
    # difflib needs about 100 s on such a file (product.md); libgit2 well under a second.
    rows = [{"id": i % 50, "name": "same", "tags": ["a", "b"]} for i in range(size_mb * 14_000)]
    old = json.dumps(rows, indent=2).encode()
    rows[len(rows) // 2]["name"] = "changed"
    new = json.dumps(rows, indent=2).encode()
    assert len(old) > size_mb * 1_000_000

    added, removed = line_stats(old, new)

    assert (added, removed) == (1, 1)
    assert difflib_matchers == []


def test_a_minified_bundle_diff_is_counted_by_libgit2(difflib_matchers):
    old = noise(3_000_000)
    new = old[:1_500_000] + b"X" + old[1_500_001:]

    assert line_stats(old, new) == (1, 1)
    assert difflib_matchers == []


def test_an_analysis_indexes_each_side_as_reading_it_alone_does():
    # both sides share what they measured (by content), kept files are read whole and the
    # others streamed: none of it may change an index entry
    long_lines = b"\n".join(b"x" * (n * 97 % 3000) for n in range(2000))
    big = noise(1_200_000, seed=3)  # over one chunk, binary
    big_text = b"line\n" * 300_000  # over one chunk, text
    common = {"same.js": b"a\nb\n", "copy.js": b"a\nb\n", "long.js": long_lines, "big.bin": big}
    old = make_tarball({**common, "text.txt": big_text, "gone.md": b"# old\n"})
    new = make_tarball({**common, "text.txt": big_text + b"more", "added.md": long_lines[:999]})
    analysis = analyse_tarballs(old, new)
    assert analysis.old is not None
    assert analysis.old.files == read_archive(old).files
    assert analysis.new.files == read_archive(new).files
    assert analysis.new.files["text.txt"].line_count == 300_001
    assert analysis.new.files["long.js"].longest_line == max(map(len, long_lines.split(b"\n")))
