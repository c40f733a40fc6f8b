"""Tables with holes (`render.unified_table` … `fill`) give the bytes the renderer gave before
them (`legacy_render`, kept as the oracle), with the hooks called in the same order; a table
survives the cache; and what comes from a tarball stays escaped in every layout."""

from __future__ import annotations

import pickle
import random
from collections.abc import Callable
from types import ModuleType

import pytest

from reviews.inspect import render, words
from reviews.inspect.diffing import DiffKind, FileDiff, diff_file, expand_context, view_file
from tests.inspect import legacy_render

HOSTILE = [
    '</script><script>alert("x")</script>',
    "a & b && c &amp; d",
    "quote \" and ' and `backtick`",
    "access = isAdmin \u202e } \u2066 if (ok) { \u2069",
    "zero\u200bwidth, a bell \x07 and an escape \x1b[31m inside",
    "<b onmouseover=alert(1)>bold</b>",
    "line with a carriage return\rin the middle",
    "tab\tand\tform\x0cfeed",
    "emoji 👩‍💻 and ünïcödé",
]
NAMES = ['<script>alert("name")</script>.js', "src/a&b.ts", "lib/\u202egnp.js", "plain/index.js"]


def generated(seed: int) -> tuple[bytes, bytes]:
    """Two versions of a file: code lines, hostile lines, long lines, edits all over."""
    rng = random.Random(seed)
    pool = [*HOSTILE, *(f"const v{n} = call({n}, 'text');" for n in range(40))]
    pool.append("x = '" + "long " * 800 + "';")  # 4,000 characters: shown, not minified
    lines = [rng.choice(pool) for _ in range(rng.randint(30, 300))]
    changed = list(lines)
    for _ in range(rng.randint(1, 25)):
        at = rng.randrange(len(changed))
        action = rng.random()
        if action < 0.5:
            changed[at] = changed[at] + rng.choice(["", " // edited", "&", "<i>"])
        elif action < 0.75:
            changed.insert(at, rng.choice(pool))
        else:
            del changed[at]
    newline = "\r\n" if seed % 3 == 0 else "\n"
    old, new = newline.join(lines), newline.join(changed)
    if seed % 4 == 0:
        new += newline  # one side without a final newline
    return old.encode(), new.encode()


Draw = Callable[[ModuleType, "RecordingHooks | None"], str]
"""Renders one layout with a renderer module (the new one or the legacy one)."""


class RecordingHooks:
    """Comment links in numbers and rows under some lines, every call recorded in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def number(self, side: str, number: int) -> str:
        self.calls.append(("number", side, number))
        return f'<a href="?comment={side}-{number}">{number}</a>'

    def after(self, old_no: int | None, new_no: int | None, colspan: int) -> str:
        self.calls.append(("after", old_no, new_no, colspan))
        if (new_no or old_no or 0) % 5 == 0:
            return f'<tr class="gr-comment-row"><td colspan="{colspan}">&lt;thread&gt;</td></tr>'
        return ""


def layouts(diff: FileDiff, path: str, marks: dict[int, str]) -> list[tuple[str, Draw]]:
    return [
        (
            "unified",
            lambda module, hooks: module.render_unified(diff, path, hooks=hooks, marks=marks),
        ),
        (
            "split",
            lambda module, hooks: module.render_side_by_side(
                diff, path, old_path="old/" + path, hooks=hooks, marks=marks
            ),
        ),
    ]


@pytest.mark.parametrize("seed", range(24))
def test_tables_give_the_bytes_the_renderer_gave_before(seed):
    old, new = generated(seed)
    path = NAMES[seed % len(NAMES)]
    diff = diff_file(old, new, path)
    assert diff.kind is DiffKind.TEXT
    if seed % 2:
        diff = words.mark_diff(diff)
    marks = {n: f'high (new): "eval" & <script> on line {n}' for n in range(1, 400, 7)}

    for name, draw in layouts(diff, path, marks):
        for with_hooks in (False, True):
            before, after = RecordingHooks(), RecordingHooks()
            expected = draw(legacy_render, before if with_hooks else None)
            got = draw(render, after if with_hooks else None)
            assert got == expected, (name, with_hooks)
            assert after.calls == before.calls
    view = view_file(new, path)
    for side in (render.OLD, render.NEW):
        before, after = RecordingHooks(), RecordingHooks()
        expected = legacy_render.render_view(view, path, side=side, hooks=before, marks=marks)
        assert render.render_view(view, path, side=side, hooks=after, marks=marks) == expected
        assert after.calls == before.calls
    for gap in diff.gaps:
        lines = expand_context(new, path, gap)
        for side_by_side in (False, True):
            assert render.render_context(
                lines, side_by_side=side_by_side
            ) == legacy_render.render_context(lines, side_by_side=side_by_side)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (None, b"added\n"),
        (b"removed\n", None),
        (b"same\n", b"same\n"),
        (b"", b""),
        (b"\x00binary", b"\x00binary!"),
        (b"short\n", b"x" * 6_000 + b"\n"),  # minified: a notice and the sides, no rows
    ],
)
def test_files_without_rows_give_the_same_bytes_too(old, new):
    diff = diff_file(old, new, "f.js")
    for name, draw in layouts(diff, "f.js", {}):
        assert draw(render, RecordingHooks()) == draw(legacy_render, RecordingHooks()), name
        assert draw(render, None) == draw(legacy_render, None), name


@pytest.mark.parametrize("seed", range(4))
def test_numbers_filled_ahead_give_the_same_page_and_leave_the_rows_after_lines(seed):
    old, new = generated(seed)
    diff = words.mark_diff(diff_file(old, new, "a.js"))
    for table in (render.unified_table(diff, "a.js"), render.side_by_side_table(diff, "a.js")):
        whole, ahead = RecordingHooks(), RecordingHooks()

        numbered = render.fill_numbers(table, RecordingHooks().number)

        assert render.fill(numbered, ahead) == render.fill(table, whole)
        assert ahead.calls == [call for call in whole.calls if call[0] == "after"]


def test_a_table_survives_a_pickle_round_trip_and_fills_alike():
    old, new = generated(7)
    table = render.unified_table(words.mark_diff(diff_file(old, new, "a.js")), "a.js")

    loaded = pickle.loads(pickle.dumps(table))  # noqa: S301 (our own bytes)

    assert loaded == table
    assert render.fill(loaded, RecordingHooks()) == render.fill(table, RecordingHooks())


@pytest.mark.parametrize("seed", range(6))
def test_what_comes_from_the_tarball_stays_escaped_in_every_layout(seed):
    old, new = generated(seed)
    path = NAMES[seed % len(NAMES)]
    diff = words.mark_diff(diff_file(old, new, path))
    marks = dict.fromkeys(range(1, 400), "<script>x</script>")
    tables = [
        render.unified_table(diff, path, marks=marks),
        render.side_by_side_table(diff, path, old_path="<b>old</b>", marks={2: '"&'}),
        render.view_table(view_file(new, path), path),
    ]
    for table in tables:
        html = render.fill(table, RecordingHooks())
        assert "<script" not in html
        for raw in ("<b ", "<b>", "<i>", "\u202e", "\u2066", "\u200b", "\x07", "\x1b"):
            assert raw not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in render.fill(tables[0])
