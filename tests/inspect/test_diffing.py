"""The display diff of one file: hunks, rows, context, degradation, escaping, cache keys."""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass
from typing import Any

import pytest

from reviews.inspect import diffing
from reviews.inspect.diffing import (
    DEFAULT_OPTIONS,
    DiffKind,
    DiffOptions,
    InlineLimits,
    LineKind,
    RowKind,
    diff_cache_key,
    diff_file,
    expand_context,
    view_cache_key,
    view_file,
)
from reviews.inspect.render import (
    render_context,
    render_side_by_side,
    render_unified,
    render_view,
)
from tests.inspect.builders import noise


def numbered(count: int, changes: dict[int, str] | None = None) -> bytes:
    lines = [f"const line{n} = {n};" for n in range(1, count + 1)]
    for number, text in (changes or {}).items():
        lines[number - 1] = text
    return ("\n".join(lines) + "\n").encode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_hunks_carry_old_and_new_line_numbers():
    old = numbered(40)
    new = numbered(40, {5: "const five = 'changed';"}).replace(b"const line30 = 30;\n", b"")

    diff = diff_file(old, new, "lib/a.js")

    assert diff.kind is DiffKind.TEXT
    assert (diff.lines_added, diff.lines_removed) == (1, 2)
    first, second = diff.hunks
    assert first.header.startswith("@@ -2,7 +2,7 @@")
    changed = [
        (line.kind, line.old_no, line.new_no) for line in first.lines if line.kind != "context"
    ]
    assert changed == [(LineKind.REMOVED, 5, None), (LineKind.ADDED, None, 5)]
    assert [(line.old_no, line.new_no) for line in second.lines if line.kind == "context"][-1] == (
        33,
        32,
    )


def test_side_by_side_pairs_removed_and_added_runs():
    old = b"keep\nold1\nold2\nold3\nkeep2\n"
    new = b"keep\nnew1\nnew2\nkeep2\nextra\n"

    rows = diff_file(old, new, "x.txt").hunks[0].rows

    assert [(row.kind, row.old_no, row.new_no) for row in rows] == [
        (RowKind.EQUAL, 1, 1),
        (RowKind.CHANGED, 2, 2),
        (RowKind.CHANGED, 3, 3),
        (RowKind.REMOVED, 4, None),
        (RowKind.EQUAL, 5, 4),
        (RowKind.ADDED, None, 5),
    ]
    assert rows[3].new_html is None


def test_gaps_between_hunks_can_be_expanded_from_either_end():
    old = numbered(100)
    new = numbered(100, {10: "const ten = 'x';", 90: "const ninety = 'y';"})

    diff = diff_file(old, new, "a.js")

    gaps = [(g.before_hunk, g.old_start, g.new_start, g.count) for g in diff.gaps]
    assert gaps == [(0, 1, 1, 6), (1, 14, 14, 73), (2, 94, 94, 7)]
    between = diff.gaps[1]
    everything = expand_context(new, "a.js", between)
    assert [line.new_no for line in everything] == list(range(14, 87))
    assert all(line.kind is LineKind.CONTEXT for line in everything)
    some = expand_context(new, "a.js", between, first=2, last=3)
    assert [(line.old_no, line.new_no) for line in some] == [
        (14, 14),
        (15, 15),
        (84, 84),
        (85, 85),
        (86, 86),
    ]
    assert "line14" in some[0].html
    assert [line.new_no for line in expand_context(new, "a.js", between, first=500)] == list(
        range(14, 87)
    )


def test_gaps_follow_line_numbers_when_lines_were_inserted_or_deleted():
    old = numbered(30)
    new = numbered(30).replace(b"const line10 = 10;\n", b"const line10 = 10;\nA\nB\nC\n")

    diff = diff_file(old, new, "a.js", DiffOptions(context_lines=1))

    assert [(g.old_start, g.new_start, g.count) for g in diff.gaps] == [(1, 1, 9), (12, 15, 19)]
    tail = expand_context(new, "a.js", diff.gaps[1], last=1)
    assert [(line.old_no, line.new_no) for line in tail] == [(30, 33)]


def test_added_and_removed_files_show_whole():
    added = diff_file(None, b"one\ntwo\n", "new.md")
    removed = diff_file(b"one\ntwo\nthree", None, "old.md")

    assert added.is_added
    assert [(line.kind, line.new_no) for line in added.hunks[0].lines] == [
        (LineKind.ADDED, 1),
        (LineKind.ADDED, 2),
    ]
    assert added.lines_added == 2
    assert removed.is_removed
    assert removed.lines_removed == 3
    assert removed.old is not None
    assert removed.old.no_newline_at_end


def test_identical_contents_have_nothing_to_show():
    diff = diff_file(b"same\n", b"same\n", "a.js")

    assert diff.kind is DiffKind.IDENTICAL
    assert diff.hunks == ()


def test_empty_files_are_said_to_be_empty():
    diff = diff_file(None, b"", "empty.js")

    assert diff.kind is DiffKind.TEXT
    assert diff.hunks == ()
    assert "The file is empty." in diff.notices


def test_binary_files_show_sizes_and_digests_only():
    old = b"\0asm\x01\0\0\0" + noise(5000)
    new = b"\0asm\x01\0\0\0" + noise(6000, seed=2)

    diff = diff_file(old, new, "pkg.wasm")

    assert diff.kind is DiffKind.BINARY
    assert diff.hunks == ()
    assert diff.notices[0].startswith("Binary, sizes and digests differ")
    assert sha(old) in diff.notices[0]
    assert sha(new) in diff.notices[0]
    assert (diff.old and diff.old.size, diff.new and diff.new.size) == (len(old), len(new))
    html = render_unified(diff, "pkg.wasm")
    assert sha(new) in html
    assert "gr-sides" in html


def test_a_text_file_turning_binary_is_a_binary_diff():
    diff = diff_file(b"text\n", b"\0binary", "data.bin")

    assert diff.kind is DiffKind.BINARY
    assert diff.old is not None
    assert diff.old.line_count == 1


@dataclass
class DiffWork:
    """How often diff_file ran libgit2 for line counts and for hunks (the costly steps). Wall
    time is bench/bench_limits.py's."""

    line_stats: int = 0
    hunks: int = 0


@pytest.fixture
def diff_work(monkeypatch: pytest.MonkeyPatch) -> DiffWork:
    work = DiffWork()
    line_stats, hunks = diffing._line_stats, diffing._hunks

    def counted_line_stats(*args: Any, **kwargs: Any) -> tuple[int, int]:
        work.line_stats += 1
        return line_stats(*args, **kwargs)

    def counted_hunks(*args: Any, **kwargs: Any) -> Any:
        work.hunks += 1
        return hunks(*args, **kwargs)

    monkeypatch.setattr(diffing, "_line_stats", counted_line_stats)
    monkeypatch.setattr(diffing, "_hunks", counted_hunks)
    return work


def test_a_large_wasm_like_file_is_not_diffed_as_text(diff_work: DiffWork):
    big = b"\0" + noise(12_000_000)  # product.md: 585 s in npm diff

    diff = diff_file(big, big[:-1] + b"x", "big.wasm")

    assert diff.kind is DiffKind.BINARY
    assert (diff_work.line_stats, diff_work.hunks) == (0, 0)


def test_too_large_sides_give_a_notice_with_line_counts():
    old = numbered(25_000)
    new = numbered(25_000, {100: "changed"})

    diff = diff_file(old, new, "big.js")

    assert diff.kind is DiffKind.TOO_LARGE
    assert diff.hunks == ()
    assert (diff.lines_added, diff.lines_removed) == (1, 1)
    assert "25,000 lines (limit 20,000)" in diff.notices[0]
    assert "1 line added, 1 removed" in diff.notices[0]


def test_over_a_mebibyte_is_too_large_too():
    old = (noise(1_200_000)[:1_199_000].replace(b"a", b"\n")) + b"\n"
    diff = diff_file(old, old + b"more\n", "big.txt")

    assert diff.kind is DiffKind.TOO_LARGE
    assert "limit 1 MiB" in diff.notices[0]


def test_minified_lines_give_a_notice_not_rows():
    old = noise(300_000)
    new = noise(300_000, seed=9)

    diff = diff_file(old, new, "dist/app.min.js")

    assert diff.kind is DiffKind.MINIFIED
    assert diff.hunks == ()
    assert (diff.lines_added, diff.lines_removed) == (1, 1)
    assert "a line of 300,000 characters (limit 5,000)" in diff.notices[0]


def test_a_huge_one_line_source_map_is_cheap_to_diff_and_never_rendered(diff_work: DiffWork):
    old = noise(10_700_000)
    new = old[:-10] + b"0123456789"

    diff = diff_file(old, new, "dist/index.js.map")

    assert (diff_work.line_stats, diff_work.hunks) == (1, 0)  # counted, never laid out
    assert diff.kind is DiffKind.TOO_LARGE
    assert len(render_side_by_side(diff, "dist/index.js.map")) < 5_000


def test_non_utf8_text_is_decoded_with_replacement_and_says_so():
    old = "caf\u00e9\n".encode("latin-1")
    new = "café\n".encode()

    diff = diff_file(old, new, "readme.txt")

    assert diff.kind is DiffKind.TEXT
    assert diff.old is not None
    assert diff.old.not_utf8
    assert diff.new is not None
    assert not diff.new.not_utf8
    assert any("baseline file is not valid UTF-8" in notice for notice in diff.notices)
    removed = diff.hunks[0].lines[0]
    assert "\ufffd" in removed.html


def test_line_numbers_match_git_on_form_feeds_and_unicode_separators():
    old = "a\fb\u2028c\nsecond\n".encode()
    new = "a\fb\u2028c\nSECOND\n".encode()

    diff = diff_file(old, new, "min.js")

    changed = [line for line in diff.hunks[0].lines if line.kind != "context"]
    assert [(line.old_no, line.new_no) for line in changed] == [(2, None), (None, 2)]


def test_crlf_files_keep_their_line_numbers_and_carriage_returns_do_not_show():
    old = b"one\r\ntwo\r\nthree\r\n"
    new = b"one\r\n2\r\nthree\r\n"

    diff = diff_file(old, new, "win.txt")

    assert diff.new is not None
    assert diff.new.crlf
    assert [(line.new_no, line.html) for line in diff.hunks[0].lines if line.new_no] == [
        (1, "one"),
        (2, "2"),
        (3, "three"),
    ]


def test_highlighting_uses_the_lexer_for_the_file_name_and_stops_past_the_limit():
    code = b"function greet(name) { return 'hi ' + name; }\n"

    coloured = diff_file(None, code, "lib/greet.js")
    plain = diff_file(None, code, "lib/greet.js", DiffOptions(highlight=False))
    capped = diff_file(
        None, code, "lib/greet.js", DiffOptions(limits=InlineLimits(max_highlight_bytes=10))
    )

    assert coloured.lexer == "javascript"
    assert '<span class="kd">function</span>' in coloured.hunks[0].lines[0].html
    assert "<span" not in plain.hunks[0].lines[0].html
    assert "<span" not in capped.hunks[0].lines[0].html
    assert capped.new is not None
    assert not capped.new.highlighted
    assert coloured.new is not None
    assert coloured.new.highlighted
    assert (
        not diff_file(None, code, "README.unknown-ext").hunks[0].lines[0].html.startswith("<span")
    )


def test_comments_spanning_lines_are_highlighted_on_each_line():
    code = b"/* first\n   second */\nlet x = 1;\n"

    lines = diff_file(None, code, "c.js").hunks[0].lines

    assert lines[0].html == '<span class="cm">/* first</span>'
    assert lines[1].html == '<span class="cm">   second */</span>'


def test_bidi_and_zero_width_characters_are_marked_and_reported():
    old = b'const access = "user";\n'
    new = 'const access = "user\u202e \u2066// admin\u2069 \u2066";\nlet a\u200bb = 1;\n'.encode()

    diff = diff_file(old, new, "auth.js")

    assert diff.new is not None
    found = [(c.line, c.column, c.codepoint) for c in diff.new.suspicious]
    assert found == [
        (1, 21, 0x202E),
        (1, 23, 0x2066),
        (1, 32, 0x2069),
        (1, 34, 0x2066),
        (2, 6, 0x200B),
    ]
    assert any("trojan source" in notice for notice in diff.notices)
    html = render_unified(diff, "auth.js")
    assert "\u202e" not in html
    assert "\u200b" not in html
    assert 'title="U+202E RIGHT-TO-LEFT OVERRIDE"' in html
    assert 'title="U+200B ZERO WIDTH SPACE"' in html


def test_script_in_a_file_name_and_in_the_content_is_escaped_in_every_rendering():
    name = '<script>alert("name")</script>.js'
    old = b"safe\n"
    new = b'</script><script>alert("body")</script>\n<b onmouseover=alert(1)>x</b>\n'

    diff = diff_file(old, new, name)
    outputs = [
        render_unified(diff, name),
        render_side_by_side(diff, name, old_path="<b>old</b>.js"),
        render_view(view_file(new, name), name),
        render_context(
            expand_context(new + b"tail\n" * 10, name, diff.gaps[-1]) if diff.gaps else ()
        ),
    ]

    for html in outputs:
        assert "<script" not in html
        assert "<b " not in html
        assert "<b>" not in html
    assert "&lt;script&gt;alert(&quot;name&quot;)&lt;/script&gt;.js" in outputs[0]
    assert "&lt;b&gt;old&lt;/b&gt;.js" in outputs[1]
    assert "alert" in outputs[0]


def test_a_hunk_section_from_the_file_is_escaped():
    old = b"fn<script>alert(1)</script>\n" + b"  a\n" * 10 + b"  b\n"
    new = b"fn<script>alert(1)</script>\n" + b"  a\n" * 10 + b"  c\n"

    diff = diff_file(old, new, "page.html")

    assert "<script>" in diff.hunks[0].section
    assert "<script>" not in render_unified(diff, "page.html")


def test_a_hunk_section_with_a_bidi_override_shows_it_as_a_marker():
    old = "function \u202eadmin() {\n".encode() + b"  a\n" * 10 + b"  b\n"
    new = "function \u202eadmin() {\n".encode() + b"  a\n" * 10 + b"  c\n"

    diff = diff_file(old, new, "auth.js")

    assert "\u202e" in diff.hunks[0].section
    for html in (render_unified(diff, "auth.js"), render_side_by_side(diff, "auth.js")):
        assert "\u202e" not in html
        assert 'title="U+202E RIGHT-TO-LEFT OVERRIDE"' in html


def test_view_file_highlights_and_cuts_minified_lines():
    view = view_file(b"var a = 1;\n" + noise(12_000) + b"\n", "b.js")

    assert view.kind is DiffKind.MINIFIED
    assert view.truncated
    assert len(view.lines) == 2
    assert len(view.lines[1]) == 5_000
    plain = view_file(b"let a = 1;\n", "c.js")
    assert plain.kind is DiffKind.TEXT
    assert plain.lines[0].startswith('<span class="kd">let</span>')
    assert view_file(b"\0\1\2", "x.bin").kind is DiffKind.BINARY


def test_cache_keys_depend_on_contents_lexer_and_options_only():
    a, b = sha(b"a"), sha(b"b")

    key = diff_cache_key(a, b, "lib/x.js", DEFAULT_OPTIONS)

    assert key.startswith(f"greenroom:diff:v1:{a}:{b}:")
    assert len(key) < 200
    assert key.isascii()
    assert " " not in key
    assert key == diff_cache_key(a, b, "other/renamed.js", DEFAULT_OPTIONS)  # same lexer
    assert key != diff_cache_key(a, b, "lib/x.py", DEFAULT_OPTIONS)
    assert key != diff_cache_key(a, b, "lib/x.js", DiffOptions(context_lines=10))
    assert key != diff_cache_key(b, a, "lib/x.js", DEFAULT_OPTIONS)
    assert diff_cache_key(None, b, "x.js", DEFAULT_OPTIONS).startswith("greenroom:diff:v1:-:")
    assert view_cache_key(a, "x.js", DEFAULT_OPTIONS).startswith(f"greenroom:view:v1:{a}:")
    assert diff_file(b"a", b"b", "lib/x.js").cache_key == key


def test_results_survive_a_cache_round_trip():
    diff = diff_file(numbered(50), numbered(50, {25: "x"}), "a.js")

    assert pickle.loads(pickle.dumps(diff)) == diff  # noqa: S301 - our own bytes


def test_a_pretty_json_of_four_megabytes_degrades_to_counts(diff_work: DiffWork):
    rows = [{"id": i % 50, "name": "same", "tags": ["a", "b"]} for i in range(56_000)]
    old = json.dumps(rows, indent=2).encode()
    rows[1000]["name"] = "changed"
    new = json.dumps(rows, indent=2).encode()

    diff = diff_file(old, new, "data.json")

    assert (diff_work.line_stats, diff_work.hunks) == (1, 0)
    assert diff.kind is DiffKind.TOO_LARGE
    assert (diff.lines_added, diff.lines_removed) == (1, 1)


def test_an_inline_diff_at_the_limits_lays_out_only_the_changes_and_their_context(
    diff_work: DiffWork,
):
    old = numbered(19_000)
    new = numbered(19_000, {n: f"changed {n}" for n in range(1, 19_000, 100)})

    diff = diff_file(old, new, "big.js")
    render_side_by_side(diff, "big.js")

    assert diff.kind is DiffKind.TEXT
    assert diff_work.hunks == 1  # one libgit2 patch for the whole file, not one per change
    assert (diff.lines_added, diff.lines_removed) == (190, 190)
    # Each of the 190 changes brings at most its context on either side, never the whole file.
    rows = sum(len(hunk.rows) for hunk in diff.hunks)
    assert rows <= 190 * (2 * DEFAULT_OPTIONS.context_lines + 1)
