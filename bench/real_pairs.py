"""Real npm releases side by side: Greenroom's analysis against a plain reference, `git diff
--no-index` after extraction, and `npm diff`; then the file views. `python -m bench.bench_diff
--real` runs it (see `main` there for the flags).

The pairs are packed with `npm pack` (the registry is npm's own configuration) into a cache
folder outside the repository, `$GREENROOM_BENCH_PAIRS` or `--pairs-dir` (default
/work/cache/pairs); files already there are reused, whoever packed them. Methods run in turn,
round after round, so load on a shared machine falls on all of them alike; figures are medians.

- greenroom: `analyse_tarballs` in a warm process, tarballs in memory (CPU and wall).
- reference: the same work done plainly: Python's `tarfile`, the git blob id (SHA-1) of every
  file, libgit2 line counts of the changed text files.
- greenroom cold: a fresh `python` analysing the two files (imports included), with its peak
  memory.
- git: `tar -xzf` both into a temporary folder, then `git diff --no-index --numstat`.
- npm diff: `npm diff --diff=old.tgz --diff=new.tgz`, once per pair, stopped after a timeout.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PAIRS_DIR = Path("/work/cache/pairs")
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Pair:
    name: str
    old: str
    new: str

    def file(self, version: str) -> str:
        # what `npm pack` names it: `@scope/name` becomes `scope-name`
        return f"{self.name.lstrip('@').replace('/', '-')}-{version}.tgz"

    @property
    def label(self) -> str:
        return f"{self.name} {self.old} → {self.new}"


PAIRS = (
    Pair("express", "4.18.2", "4.21.2"),
    Pair("lodash", "4.17.20", "4.17.21"),
    Pair("@babel/core", "7.25.2", "7.26.0"),
    Pair("@types/node", "22.7.4", "22.10.1"),
    Pair("react-dom", "18.2.0", "18.3.1"),
    Pair("esbuild-wasm", "0.23.1", "0.24.0"),
    Pair("typescript", "5.5.4", "5.6.3"),
    Pair("aws-sdk", "2.1691.0", "2.1692.0"),
    Pair("next", "15.0.4", "15.1.0"),
)


@dataclass
class Figures:
    greenroom_cpu: list[float] = field(default_factory=list)
    greenroom_wall: list[float] = field(default_factory=list)
    with_rules_wall: list[float] = field(default_factory=list)
    with_rules_cpu: list[float] = field(default_factory=list)
    reference_cpu: list[float] = field(default_factory=list)
    cold: list[float] = field(default_factory=list)
    cold_peak_mib: list[float] = field(default_factory=list)
    git: list[float] = field(default_factory=list)
    npm: str = "not run"


def pairs_dir(flag: Path | None) -> Path:
    return flag or Path(os.environ.get("GREENROOM_BENCH_PAIRS", DEFAULT_PAIRS_DIR))


def ensure_packed(pair: Pair, folder: Path) -> tuple[Path, Path] | None:
    """The pair's two tarballs, packed now if missing (None if npm could not pack them)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for version in (pair.old, pair.new):
        path = folder / pair.file(version)
        if not path.exists():
            packed = subprocess.run(
                ["npm", "pack", f"{pair.name}@{version}", "--pack-destination", str(folder)],
                capture_output=True,
                text=True,
                timeout=600,
            )
            if packed.returncode != 0 or not path.exists():
                print(f"  could not pack {pair.name}@{version}: {packed.stderr[-200:]}")
                return None
        paths.append(path)
    return paths[0], paths[1]


def greenroom(old: bytes, new: bytes) -> tuple[float, float]:
    from reviews.inspect.archive import count_lines_with_numpy
    from reviews.inspect.changes import analyse_tarballs

    count_lines_with_numpy()  # as a worker does at start (portal/celery.py)
    cpu, wall = time.process_time(), time.perf_counter()
    analyse_tarballs(old, new)
    return time.process_time() - cpu, time.perf_counter() - wall


def with_rules(old: bytes, new: bytes) -> tuple[float, float]:
    """Wall and CPU seconds of the analysis as a worker runs it with the risk rules
    (`reviews.review.analysis.compute` without storing blobs): the bytes the rules want kept,
    the manifests diffed, every rule on the pair. The CPU counts the rules' forked helper too
    (it parses part of the code on the second core)."""
    from reviews.inspect.changes import analyse_tarballs
    from reviews.inspect.manifest_diff import diff_manifests
    from reviews.inspect.rules import PackageFacts, ScanLimits, scan_pair, wants_bytes

    limits = ScanLimits()
    cpu, wall = time.process_time(), time.perf_counter()
    package = analyse_tarballs(
        old, new, also_keep=lambda e, b: wants_bytes(e, b, limits), keep_paths=["package.json"]
    )
    assert package.old is not None
    new_manifest = package.new.contents.get("package.json")
    old_manifest = package.old_contents.get("package.json")
    manifest = diff_manifests(
        old_manifest,
        new_manifest,
        old_has_binding_gyp="binding.gyp" in package.old.files,
        new_has_binding_gyp="binding.gyp" in package.new.files,
    )
    facts = PackageFacts.of(package, manifest, new_manifest, old_manifest)
    kept = package.old_contents  # what the worker reads too: the tarball again only past it
    scan = scan_pair(
        package.changeset.changes,
        package.new.contents,
        lambda paths: {path: kept[path] for path in paths if path in kept},
        facts,
        limits,
    )
    used = time.process_time() - cpu + scan.helper_cpu_seconds
    return time.perf_counter() - wall, used


def reference(old: bytes, new: bytes) -> float:
    """Python's tar reader, the git blob id of every file, libgit2 on the changed text files."""
    from reviews.inspect.changes import line_stats

    def index(data: bytes) -> dict[str, tuple[str, bytes]]:
        files = {}
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                extracted = archive.extractfile(member)
                assert extracted is not None
                body = extracted.read()
                oid = hashlib.sha1(b"blob %d\0" % len(body), usedforsecurity=False)
                oid.update(body)
                files[member.name.split("/", 1)[-1]] = (oid.hexdigest(), body)
        return files

    started = time.process_time()
    before, after = index(old), index(new)
    for path, (oid, body) in after.items():
        was = before.get(path)
        if was and was[0] != oid and b"\0" not in body[:8000] and b"\0" not in was[1][:8000]:
            line_stats(was[1], body)
    return time.process_time() - started


def cold(old_path: Path, new_path: Path) -> tuple[float, float]:
    """A fresh interpreter analysing the two files: wall seconds and peak MiB."""
    # the child's own peak (VmHWM): ru_maxrss would keep this parent's, which forked it
    code = (
        "import sys; from pathlib import Path; "
        "from reviews.inspect.changes import analyse_tarballs; "
        "analyse_tarballs(Path(sys.argv[1]).read_bytes(), Path(sys.argv[2]).read_bytes()); "
        "print(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])"
    )
    return _timed_child([sys.executable, "-c", code, str(old_path), str(new_path)], cwd=ROOT)


def git_extract_and_diff(old_path: Path, new_path: Path) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        for side, path in (("a", old_path), ("b", new_path)):
            folder = Path(scratch) / side
            folder.mkdir()
            subprocess.run(
                ["tar", "-xzf", str(path), "-C", str(folder), "--strip-components=1"], check=True
            )
        subprocess.run(
            ["git", "diff", "--no-index", "--numstat", "a", "b"],
            cwd=scratch,
            stdout=subprocess.DEVNULL,
            check=False,  # 1: there are differences
        )
        return time.perf_counter() - started


def npm_diff(old_path: Path, new_path: Path, timeout: float) -> str:
    started = time.perf_counter()
    try:
        subprocess.run(
            ["npm", "diff", f"--diff={old_path}", f"--diff={new_path}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"over {timeout:.0f} s"
    return f"{time.perf_counter() - started:.1f} s"


def _timed_child(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds of a child, and the peak MiB it prints last (its VmHWM, in KiB).

    The child reads compiled bytecode, as any installed copy does: a machine that sets
    PYTHONDONTWRITEBYTECODE (these do) would otherwise compile the analysis' modules from
    source in every cold run (30 ms); they are written once, outside the repository."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "greenroom-bench-pycache")
    started = time.perf_counter()
    child = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True, env=env)
    wall = time.perf_counter() - started
    return wall, int(child.stdout.split()[-1]) / 1024


def measure_pair(pair: Pair, folder: Path, runs: int, npm_timeout: float | None) -> Figures:
    packed = ensure_packed(pair, folder)
    figures = Figures()
    if packed is None:
        figures.npm = "not packed"
        return figures
    old_path, new_path = packed
    old, new = old_path.read_bytes(), new_path.read_bytes()
    # warm: imports, lexer tables; and how many calls make one sample of a small pair
    repeats = _repeats_for(greenroom(old, new)[0])
    cold(old_path, new_path)  # the bytecode written, the files in the page cache
    rule_repeats = _repeats_for(with_rules(old, new)[0])
    steps: list[Callable[[], None]] = [
        lambda: _add(
            figures.greenroom_cpu,
            figures.greenroom_wall,
            _averaged(repeats, lambda: greenroom(old, new)),
        ),
        lambda: figures.reference_cpu.append(_averaged(repeats, lambda: (reference(old, new),))[0]),
        lambda: _add(
            figures.with_rules_wall,
            figures.with_rules_cpu,
            _averaged(rule_repeats, lambda: with_rules(old, new)),
        ),
        lambda: _add(figures.cold, figures.cold_peak_mib, cold(old_path, new_path)),
        lambda: figures.git.append(git_extract_and_diff(old_path, new_path)),
    ]
    for _ in range(runs):
        for step in steps:
            step()
    if npm_timeout and shutil.which("npm"):
        figures.npm = npm_diff(old_path, new_path, npm_timeout)
    return figures


SAMPLE_SECONDS = 0.25
"""A warm sample of a small pair is the mean of as many calls as last this long: a single 5 ms
call is at the mercy of a scheduler tick (express's ratio swung between 1.0 and 1.3)."""


def _repeats_for(seconds: float) -> int:
    return max(1, round(SAMPLE_SECONDS / max(seconds, 0.001)))


def _averaged(repeats: int, call: Callable[[], tuple[float, ...]]) -> tuple[float, ...]:
    totals = [sum(values) for values in zip(*(call() for _ in range(repeats)), strict=True)]
    return tuple(total / repeats for total in totals)


def _add(first: list[float], second: list[float], values: tuple[float, ...]) -> None:
    first.append(values[0])
    second.append(values[1])


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(results: list[tuple[Pair, Figures]]) -> str:
    rows = [
        "| pair | Greenroom warm CPU (wall) | reference CPU | ratio | with risk rules: wall "
        "(over the analysis' wall; vs reference), CPU | "
        "Greenroom cold | git extract + diff | ratio | `npm diff` | Greenroom peak |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for pair, f in results:
        if not f.greenroom_cpu:
            rows.append(f"| {pair.label} | {f.npm} | | | | | | | | |")
            continue
        g, r = _median(f.greenroom_cpu), _median(f.reference_cpu)
        c, git, gw = _median(f.cold), _median(f.git), _median(f.greenroom_wall)
        rules, rules_cpu = _median(f.with_rules_wall), _median(f.with_rules_cpu)
        rows.append(
            f"| {pair.label} | {_s(g)} ({_s(gw)}) | {_s(r)} | {g / r:.2f} | "
            f"{_s(rules)} (+{100 * (rules - gw) / gw:.0f} %; {rules / r:.2f}), {_s(rules_cpu)} | "
            f"{_s(c)} | "
            f"{_s(git)} | {c / git:.2f} | {f.npm} | "
            f"{max(f.cold_peak_mib):.0f} MiB |"
        )
    return "\n".join(rows)


def _s(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def run(
    folder: Path,
    runs: int,
    npm_timeout: float | None,
    only: list[str] | None,
    views: bool,
    views_only: bool = False,
) -> None:
    results = []
    for pair in () if views_only else PAIRS:
        if only and pair.name not in only:
            continue
        print(f"… {pair.label}", file=sys.stderr)
        results.append((pair, measure_pair(pair, folder, runs, npm_timeout)))
    if results:
        print(table(results))
    if views:
        from bench.view_figures import print_view_figures

        next_pair = next(p for p in PAIRS if p.name == "next")
        packed = ensure_packed(next_pair, folder)
        if packed is not None:
            print_view_figures(*packed, runs=runs)
