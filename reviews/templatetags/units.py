"""`{{ size|bytes }}` and `{{ count|number }}`: the one unit convention (binary: KiB, MiB) and
number format (`12,345`) of every page and email. Django's `filesizeformat` (decimal "KB" in
some locales, a no-break space) is not used anywhere."""

from __future__ import annotations

from django import template

from reviews.inspect.units import format_number, format_size

register = template.Library()


@register.filter(name="bytes")
def bytes_(value: object) -> str:
    """`2048|bytes` is `2 KiB`; an empty value stays empty."""
    if value is None or value == "":
        return ""
    return format_size(int(str(value)))


@register.filter
def number(value: object) -> str:
    """`12345|number` is `12,345`; an empty value stays empty."""
    if value is None or value == "":
        return ""
    return format_number(int(str(value)))
