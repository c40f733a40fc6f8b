"""`{{ text|visible }}`: bidi, invisible and control characters as `[U+…]` markers, for text
people typed that a page shows in full (audit details), so none of it can reorder what is
around it. Autoescaping still applies after."""

from __future__ import annotations

from django import template

from reviews.inspect.textcheck import category_of

register = template.Library()


@register.filter
def visible(value: object) -> str:
    text = str(value)
    if text.isascii() and text.isprintable():
        return text
    return "".join(f"[U+{ord(c):04X}]" if category_of(c) else c for c in text)
