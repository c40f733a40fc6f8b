"""The one way Greenroom writes sizes and counts for people, on pages, in emails and findings.

Sizes are binary (1 KiB = 1,024 bytes), with one decimal where it says something: `3.4 MiB`,
`512 KiB`, `1,000 bytes`. Counts group thousands with a comma: `12,345`. Templates use the
`bytes` and `number` filters of `reviews.templatetags.units`, which call these.
"""

from __future__ import annotations

_UNITS = (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))


def format_number(n: int) -> str:
    """`12,345`: thousands grouped with a comma, whatever the locale."""
    return f"{n:,}"


def format_size(n: int) -> str:
    """A byte count for people: `3.4 MiB`, `512 KiB`, `1 byte`, `87 bytes`."""
    for unit, scale in _UNITS:
        if n >= scale:
            return f"{n / scale:,.1f} {unit}".replace(".0 ", " ")
    return f"{format_number(n)} byte{'' if n == 1 else 's'}"
