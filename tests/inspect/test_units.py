"""One unit convention (binary KiB / MiB / GiB) and one number format (`12,345`)."""

from __future__ import annotations

import pytest

from reviews.inspect.units import format_number, format_size


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (1023, "1,023 bytes"),
        (1024, "1 KiB"),
        (1536, "1.5 KiB"),
        (6758, "6.6 KiB"),
        (1 << 20, "1 MiB"),
        (int(3.4 * (1 << 20)), "3.4 MiB"),
        (5 << 30, "5 GiB"),
        (2048 << 30, "2,048 GiB"),
    ],
)
def test_sizes_are_binary_with_one_decimal_at_most(size, shown):
    assert format_size(size) == shown


@pytest.mark.parametrize(("count", "shown"), [(7, "7"), (1234, "1,234"), (1234567, "1,234,567")])
def test_counts_group_thousands_with_a_comma(count, shown):
    assert format_number(count) == shown
