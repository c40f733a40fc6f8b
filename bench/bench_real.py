"""The risk rules on real releases packed with `npm pack` (false positives, and time).

    npm pack express@4.18.2 express@4.21.2 --pack-destination /tmp/real
    .venv/bin/python -m bench.bench_real /tmp/real/express-4.18.2.tgz /tmp/real/express-4.21.2.tgz

For each (baseline, staged) pair given: the analysis' CPU seconds without and with the rules
(medians of `--repeat` alternated runs), the counts of findings by severity and status, and
every new or changed finding above info (the README lists them). Nothing here downloads
anything; it is never run in CI.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from pathlib import Path

from reviews.inspect.archive import count_lines_with_numpy, read_members
from reviews.inspect.changes import PackageAnalysis, analyse_tarballs
from reviews.inspect.manifest_diff import diff_manifests
from reviews.inspect.rules import PackageFacts, ScanLimits, Severity, scan_pair, wants_bytes

BASELINE_READS: list[float] = []
"""CPU seconds spent reading the baseline again, per run with the rules."""


def baseline_reader(
    package: PackageAnalysis, old: bytes
) -> Callable[[Collection[str]], Mapping[str, bytes]]:
    """What the worker does (`reviews.review.risk.scan_package`): the baseline bytes the
    analysis kept, if it keeps them (`old_contents`), else read back from the tarball."""
    kept: Mapping[str, bytes] = getattr(package, "old_contents", None) or {}

    def read(paths: Collection[str]) -> Mapping[str, bytes]:
        started = time.process_time()
        missing = [path for path in paths if path not in kept]
        found = {path: kept[path] for path in paths if path in kept}
        found = {**read_members(old, missing), **found} if missing else found
        BASELINE_READS.append(time.process_time() - started)
        return found

    return read


def run(old: bytes, new: bytes, *, rules: bool, limits: ScanLimits) -> tuple[float, object]:
    started = time.process_time()
    keep = (lambda e, b: wants_bytes(e, b, limits)) if rules else None
    package = analyse_tarballs(old, new, also_keep=keep)
    new_manifest = read_members(new, ["package.json"]).get("package.json")
    old_manifest = read_members(old, ["package.json"]).get("package.json")
    diff = diff_manifests(
        old_manifest,
        new_manifest,
        old_has_binding_gyp=package.old is not None and "binding.gyp" in package.old.files,
        new_has_binding_gyp="binding.gyp" in package.new.files,
    )
    scan = None
    if rules and package.old is not None:
        facts = PackageFacts.of(package, diff, new_manifest, old_manifest)
        scan = scan_pair(
            package.changeset.changes,
            package.new.contents,
            baseline_reader(package, old),
            facts,
            limits,
        )
    helper = scan.helper_cpu_seconds if scan is not None else 0.0  # its second core's CPU
    return time.process_time() - started + helper, scan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("tarballs", nargs="+", type=Path, help="baseline and staged, in pairs")
    parser.add_argument("--budget", type=float, default=60.0, help="time budget, seconds")
    parser.add_argument(
        "--parse-budget", type=float, default=None, help="MB of code parsed per pair"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; medians shown")
    parser.add_argument("--quiet", action="store_true", help="figures only, no finding list")
    args = parser.parse_args()
    limits = ScanLimits(time_budget=args.budget)
    if args.parse_budget is not None:
        limits = replace(limits, parse_budget=int(args.parse_budget * 1024 * 1024))
    pairs = list(zip(args.tarballs[::2], args.tarballs[1::2], strict=True))
    count_lines_with_numpy()  # as a worker does at start (portal/celery.py)
    for old_path, new_path in pairs:
        old, new = old_path.read_bytes(), new_path.read_bytes()
        times: tuple[list[float], list[float]] = ([], [])
        BASELINE_READS.clear()
        for _ in range(args.repeat):  # alternated, so that both see the same neighbours
            times[0].append(run(old, new, rules=False, limits=limits)[0])
            seconds, scan = run(old, new, rules=True, limits=limits)
            times[1].append(seconds)
        without, with_rules = statistics.median(times[0]), statistics.median(times[1])
        assert scan is not None
        findings = scan.findings  # type: ignore[attr-defined]
        print(f"== {old_path.name} -> {new_path.name}")
        print(
            f"   CPU without rules {without:.2f} s, with {with_rules:.2f} s "
            f"(+{100 * (with_rules - without) / without:.0f} %); "
            f"scanned {scan.files_scanned}, parsed {scan.files_parsed}, "  # type: ignore[attr-defined]
            f"not scanned {scan.files_skipped}; "  # type: ignore[attr-defined]
            f"reading the baseline again {statistics.median(BASELINE_READS or [0]):.2f} s"
        )
        counts = Counter((f.status.value, f.severity.value) for f in findings)
        print("   " + ", ".join(f"{s}/{v}: {n}" for (s, v), n in sorted(counts.items())))
        if args.quiet:
            continue
        for finding in findings:
            if finding.counts_for_risk and finding.severity.rank >= Severity.LOW.rank:
                print(
                    f"   {finding.severity.value:8} {finding.status.value:8} {finding.rule:30} "
                    f"{finding.where[:60]:60} {finding.title[:90]}"
                )


if __name__ == "__main__":
    main()
