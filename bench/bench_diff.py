"""How long whole-package analysis takes on a pair shaped like next 15.0.4 → 15.1.0.

    .venv/bin/python -m bench.bench_diff            # synthesize, then measure in a child
    .venv/bin/python -m bench.bench_diff --keep /tmp/pair   # also keep the two tarballs
    .venv/bin/python -m bench.bench_diff --real     # real npm releases, side by side

`--real` (bench/real_pairs.py) packs real releases with `npm pack` into a cache folder and
compares the analysis with a plain reference, `git diff --no-index` and `npm diff`, then
measures the file views on next; the synthetic pair is for machines with no registry.

The pair is synthetic but sized like the real one (product.md, "Speed facts"): about 7,000
files and 120 MB unpacked, about 1,700 changed, with multi-megabyte minified one-line bundles,
one-line source maps, a 4 MB pretty-printed JSON with many repeated lines, and binaries. The
measurement runs in a fresh child process so its peak memory (ru_maxrss) is its own, not the
synthesis's. Figures go to stdout; DIFF_ENGINE.md records them.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

MB = 1_000_000

_WORDS = (
    "const",
    "let",
    "var",
    "function",
    "return",
    "if",
    "else",
    "for",
    "while",
    "await",
    "async",
    "import",
    "export",
    "default",
    "from",
    "require",
    "module",
    "exports",
    "this",
    "new",
    "class",
    "extends",
    "super",
    "null",
    "undefined",
    "true",
    "false",
    "typeof",
    "props",
    "state",
    "children",
    "render",
    "useEffect",
    "useState",
    "router",
    "request",
    "response",
    "headers",
    "cache",
    "config",
    "options",
    "params",
    "result",
    "error",
    "value",
    "key",
    "index",
    "length",
    "map",
    "filter",
    "reduce",
    "push",
    "slice",
    "Object",
    "Array",
    "Promise",
    "JSON",
    "String",
    "Number",
    "Symbol",
    "Reflect",
    "process",
    "env",
    "NODE_ENV",
    "__webpack",
)


@dataclass
class Pair:
    old: dict[str, bytes] = field(default_factory=dict)
    new: dict[str, bytes] = field(default_factory=dict)


def synthesize(files: int = 7_000, seed: int = 15) -> Pair:
    """Two versions of a package, built from a pool of code-like lines (compresses ~4:1)."""
    rng = random.Random(seed)
    pool = [_code_line(rng) for _ in range(60_000)]
    pair = Pair()

    # Ordinary modules: sizes spread like a compiled framework's (most small, a few large).
    ordinary = files - 20
    for index in range(ordinary):
        lines = max(3, int(rng.lognormvariate(4.8, 1.0)))
        lines = min(lines, 8_000)
        path = f"dist/{_folder(rng)}/{index:05d}-{rng.choice(_WORDS)}.js"
        text = "\n".join(rng.choices(pool, k=lines)) + "\n"
        pair.old[path] = text.encode()

    # A release rebuilds the big compiled modules more than the small ones: pick changed files
    # by size, and rewrite a good share of each (next's 1,704 files changed 1.9 M lines).
    paths = sorted(pair.old, key=lambda p: len(pair.old[p]) * rng.uniform(0.2, 1.0), reverse=True)
    modified, rest = paths[:1_640], paths[1_640:]
    rng.shuffle(rest)
    removed, renamed = rest[:80], rest[80:110]
    for path in pair.old:
        pair.new[path] = pair.old[path]
    for path in modified:
        pair.new[path] = _edit(rng, pair.old[path], pool, rng.uniform(0.5, 2.0))
    for path in removed:
        del pair.new[path]
    for path in renamed:
        pair.new[path.replace("dist/", "dist/renamed/")] = pair.new.pop(path)
    for index in range(90):
        lines = max(3, int(rng.lognormvariate(5.0, 1.0)))
        pair.new[f"dist/new/{index:03d}.js"] = (
            "\n".join(rng.choices(pool, k=lines)) + "\n"
        ).encode()

    # The traps: minified bundles and source maps on one line, a big pretty JSON, binaries.
    for index, size in enumerate((4.2, 3.4, 2.9, 2.2, 1.8, 1.6, 1.2, 1.1)):
        bundle = _minified(rng, pool, int(size * MB))
        path = f"dist/compiled/bundle-{index}.min.js"
        pair.old[path] = bundle
        pair.new[path] = bundle[: len(bundle) // 2] + b"/*15.1*/" + bundle[len(bundle) // 2 :]
    for index, size in enumerate((10.7, 6.0, 3.5)):
        source_map = _minified(rng, pool, int(size * MB))
        path = f"dist/compiled/bundle-{index}.min.js.map"
        pair.old[path] = source_map
        pair.new[path] = source_map.replace(b"const", b"let", 50)
    rows = [
        {"id": i % 97, "name": rng.choice(_WORDS), "flags": [True, False]} for i in range(56_000)
    ]
    pair.old["dist/compiled/data.json"] = json.dumps(rows, indent=2).encode()
    for row in rng.sample(rows, 300):
        row["name"] = "changed"
    pair.new["dist/compiled/data.json"] = json.dumps(rows, indent=2).encode()
    for index in range(5):
        blob = b"\0asm\x01\0\0\0" + rng.randbytes(1_000_000)
        path = f"dist/wasm/{index}.wasm"
        pair.old[path] = blob
        pair.new[path] = blob if index > 1 else blob[:-100] + rng.randbytes(100)
    manifest = {"name": "next-like", "version": "15.0.4", "main": "dist/index.js"}
    pair.old["package.json"] = json.dumps(manifest, indent=2).encode()
    pair.new["package.json"] = json.dumps({**manifest, "version": "15.1.0"}, indent=2).encode()
    return pair


def tarball(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(files):
            info = tarfile.TarInfo(f"package/{path}")
            info.size, info.mode, info.mtime = len(files[path]), 0o644, 499162500
            archive.addfile(info, io.BytesIO(files[path]))
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(raw.getvalue()) + compressor.flush()


def measure(old_path: Path, new_path: Path) -> dict[str, float | int | str]:
    """Runs in the child: the analysis the worker does, then every changed file's display diff."""
    from reviews.inspect.archive import read_archive
    from reviews.inspect.changes import ChangeStatus, analyse_tarballs
    from reviews.inspect.diffing import diff_file

    old, new = old_path.read_bytes(), new_path.read_bytes()
    rss_before = _peak_rss_kib()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    analysis = analyse_tarballs(old, new)
    wall_analysis = time.perf_counter() - wall0
    cpu_analysis = time.process_time() - cpu0
    rss_analysis = _peak_rss_kib()

    wall2 = time.perf_counter()
    read_archive(new)
    index_only = time.perf_counter() - wall2

    changeset = analysis.changeset
    summary = changeset.summary
    old_archive = analysis.old
    assert old_archive is not None

    # Display diffs of every changed file, as if a reviewer opened each one (not needed for the
    # analysis; pages load them lazily, one at a time, and cache them).
    old_contents = read_archive(old, keep_contents=True).contents
    new_contents = read_archive(new, keep_contents=True).contents
    kinds: dict[str, int] = {}
    slowest = (0.0, "")
    wall1 = time.perf_counter()
    for change in changeset.changed():
        if change.status is ChangeStatus.RENAMED:
            continue
        old_bytes = old_contents.get(change.old.path) if change.old else None
        new_bytes = new_contents.get(change.new.path) if change.new else None
        one = time.perf_counter()
        diff = diff_file(old_bytes, new_bytes, change.path)
        slowest = max(slowest, (time.perf_counter() - one, change.path))
        kinds[diff.kind] = kinds.get(diff.kind, 0) + 1
    wall_display = time.perf_counter() - wall1
    return {
        "files_old": len(old_archive.files),
        "files_new": len(analysis.new.files),
        "unpacked_old_mb": round(old_archive.total_size / MB, 1),
        "unpacked_new_mb": round(analysis.new.total_size / MB, 1),
        "tarball_new_mb": round(len(new) / MB, 1),
        "changed": len(changeset.changed()) - summary.counts[ChangeStatus.RENAMED],
        "modified": summary.counts[ChangeStatus.MODIFIED],
        "added": summary.counts[ChangeStatus.ADDED],
        "removed": summary.counts[ChangeStatus.REMOVED],
        "renamed": summary.counts[ChangeStatus.RENAMED],
        "lines_added": summary.lines_added,
        "lines_removed": summary.lines_removed,
        "stats_complete": str(changeset.stats_complete),
        "analysis_wall_s": round(wall_analysis, 2),
        "analysis_cpu_s": round(cpu_analysis, 2),
        "index_only_new_s": round(index_only, 2),
        "rss_before_analysis_mb": round(rss_before / 1024),
        "analysis_peak_rss_mb": round(rss_analysis / 1024),
        "display_diffs_wall_s": round(wall_display, 2),
        "display_kinds": json.dumps(kinds, sort_keys=True),
        "display_slowest_s": round(slowest[0], 2),
        "display_slowest_file": slowest[1],
        "peak_rss_mb": round(_peak_rss_kib() / 1024),
    }


def _peak_rss_kib() -> int:
    """This process's peak resident memory. VmHWM, not ru_maxrss: on Linux the latter keeps
    the peak of the parent that forked us (the synthesis), across exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _code_line(rng: random.Random) -> str:
    indent = "  " * rng.randint(0, 4)
    words = " ".join(rng.choices(_WORDS, k=rng.randint(2, 9)))
    return f"{indent}{words}({rng.randint(0, 9999)}, '{rng.choice(_WORDS)}');"


def _folder(rng: random.Random) -> str:
    return "/".join(rng.choices(("server", "client", "build", "lib", "shared", "esm"), k=2))


def _edit(rng: random.Random, data: bytes, pool: list[str], share: float) -> bytes:
    lines = data.decode().split("\n")
    for _ in range(max(1, int(len(lines) * share))):
        position = rng.randrange(len(lines))
        action = rng.random()
        if action < 0.6:
            lines[position] = rng.choice(pool)
        elif action < 0.8:
            lines.insert(position, rng.choice(pool))
        elif len(lines) > 2:
            del lines[position]
    return "\n".join(lines).encode()


def _minified(rng: random.Random, pool: list[str], size: int) -> bytes:
    out: list[str] = []
    total = 0
    while total < size:
        piece = rng.choice(pool).strip()
        out.append(piece)
        total += len(piece)
    return "".join(out).encode()[:size]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=7_000)
    parser.add_argument("--keep", type=Path, help="directory to keep the two tarballs in")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--real", action="store_true", help="real pairs packed with npm pack")
    parser.add_argument(
        "--pairs-dir", type=Path, help="where packed pairs are kept ($GREENROOM_BENCH_PAIRS)"
    )
    parser.add_argument("--runs", type=int, default=5, help="rounds of each method (--real)")
    parser.add_argument(
        "--npm-timeout", type=float, default=120.0, help="seconds before npm diff is stopped"
    )
    parser.add_argument("--no-npm", action="store_true", help="skip npm diff")
    parser.add_argument("--no-views", action="store_true", help="skip the file-view figures")
    parser.add_argument(
        "--views-only", action="store_true", help="only the file-view and stage-page figures"
    )
    parser.add_argument("--only", nargs="*", help="package names to measure (--real)")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*args.child)))
        return
    if args.real:
        from bench.real_pairs import pairs_dir, run

        timeout = None if args.no_npm else args.npm_timeout
        only = [] if args.views_only else args.only
        run(pairs_dir(args.pairs_dir), args.runs, timeout, only, not args.no_views, args.views_only)
        return

    started = time.perf_counter()
    pair = synthesize(args.files)
    old, new = tarball(pair.old), tarball(pair.new)
    print(f"synthesized in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        old_path, new_path = folder / "next-like-15.0.4.tgz", folder / "next-like-15.1.0.tgz"
        old_path.write_bytes(old)
        new_path.write_bytes(new)
        child = subprocess.run(
            [sys.executable, "-m", "bench.bench_diff", "--child", str(old_path), str(new_path)],
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
