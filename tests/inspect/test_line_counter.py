"""Line counts and the longest line, streamed in chunks or counted whole, agree with git's rule."""

from __future__ import annotations

import random

from reviews.inspect.archive import _LineCounter, count_lines


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
