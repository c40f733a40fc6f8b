"""How long word marks take on a file's worst cases (issue 17), median of several runs.

    .venv/bin/python -m bench.bench_words

Two files, each diffed once (the diff is cached in the portal; word marks are not): 2,500 code
lines of about 300 characters with one word changed in each (2,000 pairs marked, the pair
bound), and 900 lines of 1,000 characters changed near their start (the character budget stops
after about 200 pairs).
"""

from __future__ import annotations

import random
import statistics
import time

from reviews.inspect.diffing import FileDiff, diff_file
from reviews.inspect.words import mark_diff

RUNS = 7


def _code_line(n: int, rng: random.Random | None = None) -> str:
    words = [f"tok{(n * 7 + i) % 97}" for i in range(30)]
    if rng is not None:
        words[rng.randrange(30)] = "CHANGED"
    return "const x = [" + ", ".join(words) + "];"


def _cases() -> dict[str, FileDiff]:
    rng = random.Random(1)
    old = "".join(_code_line(n) + "\n" for n in range(2500))
    new = "".join(_code_line(n, rng) + "\n" for n in range(2500))
    long_old = "x = '" + "ab " * 330 + "'\n"
    long_new = long_old.replace("ab", "ac", 1)
    return {
        "2,500 code lines, one word changed in each": diff_file(old.encode(), new.encode(), "a.js"),
        "900 lines of 1,000 characters": diff_file(
            (long_old * 900).encode(), (long_new * 900).encode(), "b.js"
        ),
    }


def main() -> None:
    for name, diff in _cases().items():
        times = []
        for _ in range(RUNS):
            start = time.perf_counter()
            mark_diff(diff)
            times.append(time.perf_counter() - start)
        print(f"{name}: median {statistics.median(times) * 1000:.0f} ms over {RUNS} runs")


if __name__ == "__main__":
    main()
