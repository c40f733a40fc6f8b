"""What the risk rules add to the analysis of a pair shaped like next 15.0.4 → 15.1.0.

    .venv/bin/python -m bench.bench_rules            # synthesize, then measure in a child
    .venv/bin/python -m bench.bench_rules --tokens 0.002   # share of lines with a trigger

The pair is `bench.bench_diff`'s (7,000 files, about 120 MB unpacked, 1,700 changed, minified
bundles, source maps, a big JSON, binaries), but written in valid JavaScript, and with a share
of lines holding what the rules look for (`require('https')`, `process.env.GITHUB_TOKEN`,
`new Function`, `fetch(...)`, child_process, ...), so that many files pass the pre-filter and
are parsed, as in a real framework release. The child measures, in CPU seconds (the machine is
shared), the analysis as the worker runs it without the rules (read both tarballs, statuses,
line counts, package.json diff) and with them (the same, keeping added files' bytes, then every
rule, with the baseline side of the changed files that have findings), and prints both, the
added share, and what the rules did.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import bench_diff

INTERESTING = (
    "const https = require('https');",
    "if (process.env.NODE_ENV !== 'production') debug(value);",
    "const token = process.env.GITHUB_TOKEN;",
    "const cp = require('child_process');",
    "result = await fetch(url, options);",
    "const compiled = new Function('a', 'return a');",
    "const home = path.join(os.homedir(), '.cache');",
    "fs.writeFileSync(target, data);",
)


def valid_line(rng: random.Random, share: float) -> str:
    """One JavaScript statement; `share` of them hold a token the rules look for."""
    indent = "  " * rng.randint(0, 4)
    if rng.random() < share:
        return indent + rng.choice(INTERESTING)
    word = rng.choice(bench_diff._WORDS).strip("_") or "value"
    name = f"{word}{rng.randint(0, 9999)}"
    kind = rng.random()
    if kind < 0.4:
        return (
            f"{indent}const {name} = helper{rng.randint(0, 99)}({rng.randint(0, 9999)}, '{word}');"
        )
    if kind < 0.7:
        return f"{indent}{name}.push(options.{word} || {rng.randint(0, 99)});"
    if kind < 0.9:
        return f"{indent}if ({name} > {rng.randint(0, 99)}) return render({name});"
    return f"{indent}exports.{name} = function ({word}) {{ return {word} + 1; }};"


def measure(old_path: Path, new_path: Path, repeat: int) -> dict[str, object]:
    """Runs in the child: the worker's analysis with and without the rules."""
    from bench.bench_real import baseline_reader
    from reviews.inspect.archive import read_members
    from reviews.inspect.changes import analyse_tarballs
    from reviews.inspect.manifest_diff import diff_manifests
    from reviews.inspect.rules import PackageFacts, ScanLimits, scan_pair, wants_bytes

    old, new = old_path.read_bytes(), new_path.read_bytes()
    limits = ScanLimits(time_budget=600.0)

    def run(rules: bool) -> tuple[float, object]:
        # CPU seconds: the machine is shared, and wall time measures the neighbours too.
        started = time.process_time()
        keep = (lambda e, b: wants_bytes(e, b, limits)) if rules else None
        package = analyse_tarballs(old, new, also_keep=keep)
        new_manifest = read_members(new, ["package.json"]).get("package.json")
        old_manifest = read_members(old, ["package.json"]).get("package.json")
        diff = diff_manifests(old_manifest, new_manifest)
        scan = None
        if rules:
            assert package.old is not None
            facts = PackageFacts.of(package, diff, new_manifest, old_manifest)
            scan = scan_pair(
                package.changeset.changes,
                package.new.contents,
                baseline_reader(package, old),
                facts,
                limits,
            )
        helper = scan.helper_cpu_seconds if scan is not None else 0.0  # the second core's
        return time.process_time() - started + helper, scan

    without = [run(False)[0] for _ in range(repeat)]
    timed = [run(True) for _ in range(repeat)]
    with_rules = [seconds for seconds, _scan in timed]
    scan = timed[-1][1]
    assert scan is not None
    findings = scan.findings  # type: ignore[attr-defined]
    by_status: dict[str, int] = {}
    for finding in findings:
        by_status[finding.status.value] = by_status.get(finding.status.value, 0) + 1
    best_without, best_with = min(without), min(with_rules)
    return {
        "analysis_without_rules_s": round(best_without, 2),
        "analysis_with_rules_s": round(best_with, 2),
        "added_share_pct": round(100 * (best_with - best_without) / best_without, 1),
        "median_without_s": round(statistics.median(without), 2),
        "median_with_s": round(statistics.median(with_rules), 2),
        "rules_alone_wall_s": round(scan.seconds, 2),  # type: ignore[attr-defined]
        "files_scanned": scan.files_scanned,  # type: ignore[attr-defined]
        "files_parsed": scan.files_parsed,  # type: ignore[attr-defined]
        "files_not_scanned": scan.files_skipped,  # type: ignore[attr-defined]
        "findings": len(findings),
        "findings_by_status": json.dumps(by_status, sort_keys=True),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=7_000)
    parser.add_argument("--tokens", type=float, default=0.002, help="share of lines with a token")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        old_path, new_path = args.child
        print(json.dumps(measure(old_path, new_path, args.repeat)))
        return

    started = time.perf_counter()
    bench_diff._code_line = lambda rng: valid_line(rng, args.tokens)
    pair = bench_diff.synthesize(args.files)
    old, new = bench_diff.tarball(pair.old), bench_diff.tarball(pair.new)
    print(f"synthesized in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    with tempfile.TemporaryDirectory() as scratch:
        old_path, new_path = Path(scratch) / "old.tgz", Path(scratch) / "new.tgz"
        old_path.write_bytes(old)
        new_path.write_bytes(new)
        child = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.bench_rules",
                "--repeat",
                str(args.repeat),
                "--child",
                str(old_path),
                str(new_path),
            ],
            check=True,
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
    figures = json.loads(child.stdout)
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
