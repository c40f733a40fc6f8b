"""Line counts and the longest line, streamed in chunks or counted whole, agree with git's rule."""

from __future__ import annotations

import random

import numpy
import pytest

from reviews.inspect import archive
from reviews.inspect.archive import (
    _LineCounter,
    _measure_whole,
    count_lines,
    is_binary,
    longest_line,
)

_AB_NEWLINE = bytes(b"ab\n\n"[byte % 4] for byte in range(256))
_MOSTLY_A = bytes(10 if byte == 0 else 97 for byte in range(256))


@pytest.fixture(autouse=True, params=["pure Python", "numpy"])
def counting(request, monkeypatch):
    """Every case runs through both counts: a worker's (numpy) and a one-off process's."""
    monkeypatch.setattr(archive, "_numpy", numpy if request.param == "numpy" else None)
    return request.param


def test_counting_a_whole_file_at_once_equals_streaming_it():
    rng = random.Random(3)
    for _ in range(5000):
        data = bytes(rng.choice(b"ab\n") for _ in range(rng.randrange(0, 40)))
        cut = rng.randrange(0, len(data) + 1)
        streamed = _LineCounter()
        streamed.feed(data[:cut])
        streamed.feed(data[cut:])
        measure = _measure_whole(data)
        assert measure == (False, streamed.count, streamed.longest)
        assert measure[1] == count_lines(data)
        assert measure[2] == max((len(line) for line in data.split(b"\n")), default=0)


def test_longest_line_of_a_larger_text_equals_splitting():
    rng = random.Random(17)
    for _ in range(300):
        # long enough for windows or numpy (the short ones are split), lines of mixed lengths
        lines = [
            b"x" * rng.choice((0, 1, 5, 40, 41, 300, 5000)) for _ in range(rng.randrange(0, 400))
        ]
        data = b"\n".join(lines) + rng.choice((b"", b"\n", b"tail"))
        data = b"y" * rng.choice((0, 20_000)) + data
        assert longest_line(data) == max(len(line) for line in data.split(b"\n")), len(data)
    for data in (b"", b"\n", b"\n" * 20_000, b"a" * 20_000, b"a" * 20_000 + b"\n"):
        assert longest_line(data) == max(len(line) for line in data.split(b"\n"))


def test_a_text_counted_in_blocks_keeps_the_lines_that_cross_them(monkeypatch):
    """numpy sees at most `_BLOCK` bytes at once (and a stream comes in chunks): a line across
    two is still one line."""
    monkeypatch.setattr(archive, "_BLOCK", 4096)
    rng = random.Random(23)
    for _ in range(200):
        size = rng.choice((4096, 8191, 8192, 8193, 30_000))
        data = rng.randbytes(size).translate(rng.choice((_AB_NEWLINE, _MOSTLY_A)))
        lines = data.split(b"\n")
        whole = (False, count_lines(data), max(map(len, lines)))
        assert _measure_whole(data) == whole
        assert longest_line(data) == whole[2]
    crossing = b"\n" + b"a" * 9000 + b"\n" + b"b" * 100
    assert _measure_whole(crossing) == (False, 3, 9000)


def test_measuring_a_whole_file_equals_the_streamed_counter():
    rng = random.Random(19)
    for _ in range(300):
        size = rng.choice((0, 1, 10, 100, 20_000, 70_000))
        data = rng.randbytes(size).translate(_AB_NEWLINE)
        if rng.random() < 0.1:
            data = data[: rng.randrange(0, 9000)] + b"\0" + data
        streamed = _LineCounter()
        for start in range(0, len(data), 4096):
            streamed.feed(data[start : start + 4096])
        expected = (
            (True, None, None) if is_binary(data) else (False, streamed.count, streamed.longest)
        )
        assert _measure_whole(data) == expected


def test_a_worker_counts_with_numpy(monkeypatch):
    monkeypatch.setattr(archive, "_numpy", None)
    archive.count_lines_with_numpy()
    assert archive._numpy is numpy
