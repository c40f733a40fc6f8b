"""How long the inspect room takes on the hostile and huge inputs its tests feed it.

    .venv/bin/python -m bench.bench_limits            # every case, 5 runs each
    .venv/bin/python -m bench.bench_limits --runs 9 --case wasm

The tests (tests/inspect/test_diffing.py, test_changes.py, test_archive_hostile.py) check what
these inputs give and bound the work by counts, sizes or memory; wall time is measured here,
where a noisy machine makes a slow run a number to look at, not a failed test. Each case has the
limit it used to assert in a test; the median of the runs is printed beside it, and the exit
status is 1 when a median is over its limit. Figures are wall seconds: run it on a quiet
machine, or several times, and read medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass

from reviews.inspect.archive import read_archive
from reviews.inspect.changes import line_stats
from reviews.inspect.diffing import diff_file
from reviews.inspect.render import render_side_by_side
from tests.inspect.builders import gzip_bytes, many_entries, noise, tar_header


@dataclass(frozen=True)
class Case:
    name: str
    limit: float  # seconds: what a test used to assert
    prepare: Callable[[], Callable[[], object]]  # builds the input (untimed), returns the work


def numbered(count: int, changes: dict[int, str] | None = None) -> bytes:
    lines = [f"const line{n} = {n};" for n in range(1, count + 1)]
    for number, text in (changes or {}).items():
        lines[number - 1] = text
    return ("\n".join(lines) + "\n").encode()


def pretty_json(rows: int, change_at: int) -> tuple[bytes, bytes]:
    data = [{"id": i % 50, "name": "same", "tags": ["a", "b"]} for i in range(rows)]
    old = json.dumps(data, indent=2).encode()
    data[change_at]["name"] = "changed"
    return old, json.dumps(data, indent=2).encode()


def wasm() -> Callable[[], object]:
    big = b"\0" + noise(12_000_000)
    return lambda: diff_file(big, big[:-1] + b"x", "big.wasm")


def source_map() -> Callable[[], object]:
    old = noise(10_700_000)
    new = old[:-10] + b"0123456789"
    path = "dist/index.js.map"
    return lambda: render_side_by_side(diff_file(old, new, path), path)


def json_diff() -> Callable[[], object]:
    old, new = pretty_json(56_000, 1000)
    return lambda: diff_file(old, new, "data.json")


def inline_diff() -> Callable[[], object]:
    old = numbered(19_000)
    new = numbered(19_000, {n: f"changed {n}" for n in range(1, 19_000, 100)})
    return lambda: render_side_by_side(diff_file(old, new, "big.js"), "big.js")


def json_line_stats() -> Callable[[], object]:
    old, new = pretty_json(4 * 14_000, 28_000)
    return lambda: line_stats(old, new)


def minified_line_stats() -> Callable[[], object]:
    old = noise(3_000_000)
    new = old[:1_500_000] + b"X" + old[1_500_001:]
    return lambda: line_stats(old, new)


def entries() -> Callable[[], object]:
    tarball = many_entries(100_000)
    return lambda: read_archive(tarball)


def with_ok_file(pax: bytes) -> bytes:
    body = tar_header("PaxHeader/x", len(pax), tarfile.XHDTYPE) + pax + bytes(-len(pax) % 512)
    return gzip_bytes(body + tar_header("package/ok.js", 3) + b"ok\n" + bytes(509) + bytes(1024))


def huge_pax() -> Callable[[], object]:
    record = b"path=" + noise(2 * 1024 * 1024)
    length = len(record) + 2 + len(str(len(record) + 2 + 8))
    tarball = with_ok_file(b"%d %s\n" % (length, record))
    return lambda: read_archive(tarball)


def regex_pax() -> Callable[[], object]:
    # CVE-2024-6232: Python's tarfile backtracks quadratically on such a pax header.
    tarball = with_ok_file(b"0" * (1024 * 1024 - 1) + b"\n")
    return lambda: read_archive(tarball)


CASES = (
    Case("wasm", 2, wasm),
    Case("source-map", 3, source_map),
    Case("json-diff", 5, json_diff),
    Case("inline-diff", 10, inline_diff),
    Case("json-line-stats", 3, json_line_stats),
    Case("minified-line-stats", 2, minified_line_stats),
    Case("100k-entries", 10, entries),
    Case("huge-pax", 2, huge_pax),
    Case("regex-pax", 2, regex_pax),
)


def median_seconds(case: Case, runs: int) -> float:
    work = case.prepare()
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--case", action="append", choices=[case.name for case in CASES])
    args = parser.parse_args()
    over = 0
    print(f"{'case':22} {'median s':>9} {'limit s':>8}")
    for case in CASES:
        if args.case and case.name not in args.case:
            continue
        seconds = median_seconds(case, args.runs)
        over += seconds > case.limit
        flag = "  OVER" if seconds > case.limit else ""
        print(f"{case.name:22} {seconds:9.3f} {case.limit:8.1f}{flag}", flush=True)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
