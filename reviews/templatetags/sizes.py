"""`{{ n|binary_size }}`: a byte count in the one unit convention of the pages (KiB, MiB, GiB:
powers of 1024, named so), the same as the review's counts and tree."""

from __future__ import annotations

from django import template

from reviews.inspect.archive import format_size

register = template.Library()


@register.filter
def binary_size(value: object) -> str:
    if value is None or value == "":
        return ""
    try:
        return format_size(int(str(value)))
    except ValueError:
        return ""
