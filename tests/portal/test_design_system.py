"""The shared look stays shared: the documented classes exist, colours come from variables that
dark mode swaps, and the layout has no width cap (the review pages use the whole window)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DESIGN = (ROOT / "static" / "css" / "design.css").read_text()
PAGES = (ROOT / "static" / "css" / "greenroom.css").read_text()


@pytest.mark.parametrize(
    "selector",
    [
        ".btn-primary",
        ".btn-danger",
        ".btn-secondary",
        ".badge",
        ".badge-pending",
        ".badge-approved",
        ".badge-rejected",
        ".badge-risk-critical",
        ".badge-verified",
        ".badge-mismatch",
        ".alert-success",
        ".alert-warning",
        ".alert-error",
        ".table",
        ".filters",
    ],
)
def test_each_documented_class_is_defined_and_documented(selector):
    header = DESIGN.split("*/", 1)[0]
    assert selector in header, f"{selector} is not documented at the top of design.css"
    assert re.search(re.escape(selector) + r"[\s,{.:]", DESIGN.split("*/", 1)[1])


def test_dark_mode_redefines_every_colour_variable():
    light = re.search(r":root \{(.*?)\n\}", DESIGN, re.S)
    dark = re.search(r"prefers-color-scheme: dark\) \{\s*:root \{(.*?)\}", DESIGN, re.S)
    assert light
    assert dark
    colour = re.compile(r"(--[\w-]+): #")
    assert set(colour.findall(light.group(1))) == set(colour.findall(dark.group(1)))


def test_page_rules_use_the_variables_not_literal_colours():
    rules = [line for line in PAGES.splitlines() if not line.startswith(".highlight ")]
    literal = [line for line in rules if re.search(r"#[0-9a-fA-F]{3,8}\b", line)]
    assert literal == []


def test_the_layout_spans_the_window():
    main = re.search(r"\nmain \{([^}]*)\}", DESIGN)
    assert main
    assert "max-width: none" in main.group(1)
    assert not re.search(r"\nmain \{[^}]*max-width: \d", DESIGN + PAGES)


def test_every_page_loads_the_design_system_first():
    base = (ROOT / "templates" / "base.html").read_text()
    assert base.index("css/design.css") < base.index("css/greenroom.css")
