"""Line counts and the longest line, streamed in chunks or counted whole, agree with git's rule."""

from __future__ import annotations

import random

from reviews.inspect.archive import _LineCounter, count_lines, longest_line


def test_counting_a_whole_file_at_once_equals_streaming_it():
    rng = random.Random(3)
    for _ in range(5000):
        data = bytes(rng.choice(b"ab\n") for _ in range(rng.randrange(0, 40)))
        cut = rng.randrange(0, len(data) + 1)
        streamed, whole = _LineCounter(), _LineCounter()
        streamed.feed(data[:cut])
        streamed.feed(data[cut:])
        whole.count_whole(data)
        assert (whole.count, whole.longest) == (streamed.count, streamed.longest)
        assert whole.count == count_lines(data)
        assert whole.longest == max((len(line) for line in data.split(b"\n")), default=0)


def test_longest_line_by_windows_equals_splitting():
    rng = random.Random(17)
    for _ in range(300):
        # long enough for the windows (the short ones are split), lines of mixed lengths
        lines = [
            b"x" * rng.choice((0, 1, 5, 40, 41, 300, 5000)) for _ in range(rng.randrange(0, 400))
        ]
        data = b"\n".join(lines) + rng.choice((b"", b"\n", b"tail"))
        data = b"y" * rng.choice((0, 20_000)) + data
        assert longest_line(data) == max(len(line) for line in data.split(b"\n")), len(data)
    for data in (b"", b"\n", b"\n" * 20_000, b"a" * 20_000, b"a" * 20_000 + b"\n"):
        assert longest_line(data) == max(len(line) for line in data.split(b"\n"))
