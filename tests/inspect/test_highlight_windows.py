"""Highlighting only the lines a diff shows gives, line for line, what highlighting the whole
file gives: comments and strings spanning lines (with code-looking lines inside them) too."""

from __future__ import annotations

import random

import pytest

from reviews.inspect import highlight
from reviews.inspect.diffing import DiffOptions, InlineLimits, diff_file, expand_context
from reviews.inspect.highlight import highlight_lines, highlight_some_lines, lexing_cost


def code_block(n: int) -> str:
    return (
        f"function step{n}(value) {{\n"
        f"  const label = 'step {n}';\n"
        f"  if (value > {n}) {{ return value / {n + 1}; }}\n"
        "  return value;\n"
        "}\n"
    )


def long_comment(lines: int) -> str:
    # a block comment whose lines look like code in column 0: no line-based guess is safe
    body = "".join(f"const fake{i} = require('x');\n" for i in range(lines))
    return "/*\n" + body + "*/\n"


def long_template(lines: int) -> str:
    body = "".join(f"return {i} // not code\n" for i in range(lines))
    return "const page = `\n" + body + "`;\n"


def source(seed: int) -> str:
    rng = random.Random(seed)
    parts = []
    for n in range(120):
        choice = rng.random()
        if choice < 0.08:
            parts.append(long_comment(rng.randrange(30, 400)))
        elif choice < 0.14:
            parts.append(long_template(rng.randrange(30, 400)))
        else:
            parts.append(code_block(n))
    return "".join(parts)


@pytest.mark.parametrize("seed", range(4))
def test_windows_equal_the_whole_file_on_every_line_they_show(seed):
    text = source(seed)
    whole = highlight_lines(text, "app.js")
    rng = random.Random(seed)

    for _ in range(25):
        centre = rng.randrange(1, len(whole) + 1)
        wanted = range(max(1, centre - 3), min(len(whole), centre + 3) + 1)
        shown = highlight_some_lines(text, "app.js", wanted)
        assert shown == {n: whole[n - 1] for n in wanted}


def test_inside_a_long_comment_the_lines_are_comment_coloured():
    text = code_block(1) + long_comment(600) + code_block(2)
    whole = highlight_lines(text, "app.js")

    shown = highlight_some_lines(text, "app.js", [300, 301])

    assert shown == {300: whole[299], 301: whole[300]}
    assert 'class="cm"' in shown[300]  # a comment, although it reads like code


def test_windows_lex_far_less_than_the_whole_file(monkeypatch):
    text = "".join(code_block(n) for n in range(2000))  # 10,000 lines
    lexed: list[int] = []
    real = highlight._highlight

    def counting(chunk, lexer, **kwargs):
        lexed.append(len(chunk))
        return real(chunk, lexer, **kwargs)

    monkeypatch.setattr(highlight, "_highlight", counting)
    highlight_some_lines(text, "app.js", range(5000, 5007))

    assert sum(lexed) < len(text) / 10


def test_a_diff_shows_the_same_lines_as_with_whole_sides_highlighted(monkeypatch):
    old = source(7)
    lines = old.split("\n")
    for n in (5, 400, 900, len(lines) - 3):
        lines[n] = lines[n] + " // edited"
    new = "\n".join(lines)

    options = DiffOptions(limits=InlineLimits(max_lexed_bytes=10 * 2**20))
    assert lexing_cost(new, range(1, 6)) < len(new) / 2
    windowed = diff_file(old.encode(), new.encode(), "app.js", options)
    monkeypatch.setattr(
        "reviews.inspect.diffing.highlight_some_lines",
        lambda text, path, wanted: dict(enumerate(highlight_lines(text, path), 1)),
    )
    whole = diff_file(old.encode(), new.encode(), "app.js", options)

    assert windowed.hunks == whole.hunks
    assert windowed.new is not None
    assert windowed.new.highlighted
    gap = windowed.gaps[1]
    assert expand_context(new.encode(), "app.js", gap, options) == expand_context(
        new.encode(), "app.js", whole.gaps[1], options
    )


def test_a_diff_needing_more_lexing_than_its_budget_is_shown_plain():
    old = "".join(code_block(n) for n in range(400))
    new = old.replace("return value;", "return value + 1;")  # a change in every block
    tight = DiffOptions(limits=InlineLimits(max_lexed_bytes=4096))

    plain = diff_file(old.encode(), new.encode(), "app.js", tight)
    coloured = diff_file(old.encode(), new.encode(), "app.js")

    assert plain.new is not None
    assert not plain.new.highlighted
    assert "<span" not in plain.hunks[0].lines[0].html
    assert coloured.new is not None
    assert coloured.new.highlighted
    assert [line.html for line in plain.hunks[0].lines] != [
        line.html for line in coloured.hunks[0].lines
    ]
