"""Every template writes sizes with the `bytes` filter and counts with `number`: one convention
(binary KiB / MiB) on every page and email, never Django's decimal `filesizeformat`."""

from __future__ import annotations

from pathlib import Path

from django.template import engines

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def render(source: str, **context: object) -> str:
    return engines["django"].from_string(source).render(context)


def test_the_filters_need_no_load_and_use_binary_units():
    page = render(
        "{{ a|bytes }} · {{ b|bytes }} · {{ c|number }} · {{ d|bytes }}",
        a=6758,
        b=2048,
        c=12345,
        d=None,
    )
    assert page == "6.6 KiB · 2 KiB · 12,345 · "


def test_no_template_uses_decimal_or_locale_units():
    offenders = [
        str(path.relative_to(TEMPLATES))
        for path in TEMPLATES.rglob("*")
        if path.is_file() and ("filesizeformat" in path.read_text() or " KB" in path.read_text())
    ]
    assert offenders == []
