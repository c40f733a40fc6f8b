"""Trojan-source characters: found with line and column, rendered as visible markers."""

from __future__ import annotations

import pytest

from reviews.inspect.highlight import highlight_lines, plain_lines, split_lines
from reviews.inspect.textcheck import CharCategory, category_of, escape_and_mark, find_suspicious


@pytest.mark.parametrize(
    "codepoint",
    [
        0x202A,
        0x202B,
        0x202C,
        0x202D,
        0x202E,
        0x2066,
        0x2067,
        0x2068,
        0x2069,
        0x200E,
        0x200F,
        0x061C,
    ],
)
def test_every_bidi_control_is_found(codepoint):
    found = find_suspicious(f"x = 1;{chr(codepoint)}\n")

    assert [(c.line, c.column, c.codepoint, c.category) for c in found] == [
        (1, 7, codepoint, CharCategory.BIDI)
    ]
    assert found[0].category.is_trojan


@pytest.mark.parametrize(
    "codepoint", [0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x00AD, 0x3164, 0xFE01, 0xE0041, 0xE0100]
)
def test_zero_width_fillers_selectors_and_tags_are_invisible(codepoint):
    found = find_suspicious(f"ab{chr(codepoint)}c")

    assert [(c.column, c.category) for c in found] == [(3, CharCategory.INVISIBLE)]


def test_line_and_column_count_newlines_only_and_code_points():
    text = "first\fline\nsecond 😀 \u202e\nthird\u2028x\u200b"

    found = find_suspicious(text)

    assert [(c.line, c.column, c.codepoint) for c in found] == [
        (1, 6, 0x0C),  # form feed: a control, not a line break
        (2, 10, 0x202E),
        (3, 6, 0x2028),
        (3, 8, 0x200B),
    ]
    assert found[0].category is CharCategory.CONTROL


def test_a_leading_bom_is_harmless_and_elsewhere_is_invisible():
    found = find_suspicious("\ufeffa\ufeff")

    assert [c.category for c in found] == [CharCategory.BOM, CharCategory.INVISIBLE]
    assert not found[0].category.is_trojan


def test_emoji_presentation_selectors_are_not_reported():
    assert find_suspicious("I \u2764\ufe0f npm \u263a\ufe0e") == []


def test_crlf_is_fine_but_a_lone_carriage_return_is_a_control():
    found = find_suspicious("a\r\nb\rc")

    assert [(c.line, c.column, c.codepoint) for c in found] == [(2, 2, 0x0D)]


def test_the_number_of_findings_is_bounded():
    assert len(find_suspicious("\u200b" * 10_000, limit=50)) == 50


def test_labels_name_the_character():
    (found,) = find_suspicious("\u202e")

    assert found.label == "U+202E RIGHT-TO-LEFT OVERRIDE"
    assert find_suspicious("\x1b")[0].label == "U+001B ESCAPE"
    assert category_of("a") is None


def test_markers_replace_the_character_and_escape_the_rest():
    html = escape_and_mark('<a href="x">\u202e</a>\x1b[31m')

    assert html == (
        "&lt;a href=&quot;x&quot;&gt;"
        '<span class="gr-char gr-char-bidi" title="U+202E RIGHT-TO-LEFT OVERRIDE">[U+202E]</span>'
        "&lt;/a&gt;"
        '<span class="gr-char gr-char-control" title="U+001B ESCAPE">[U+001B]</span>[31m'
    )


def test_highlighted_and_plain_lines_agree_with_git_line_numbers():
    text = "a\fb\n\u2028\nlast"

    assert split_lines(text) == ["a\fb", "\u2028", "last"]
    assert len(highlight_lines(text, "x.js")) == 3
    assert len(plain_lines(text)) == 3
    assert split_lines("") == []
    assert split_lines("\n") == [""]


def test_pygments_does_not_strip_leading_blank_lines():
    lines = highlight_lines("\n\nlet a = 1;\n", "x.js")

    assert lines[:2] == ["", ""]
    assert "let" in lines[2]
