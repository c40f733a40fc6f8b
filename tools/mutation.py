"""Mutation testing of the security-critical modules: `make mutation` (not part of `make test`).

For each target of tests/mutation_scope.py: copy the checkout to var/mutation/<module>/, point
mutmut at that one module and its own tests there, run it, and read the verdicts back. Prints
each module's score, and fails when a module scores under 90 % or a surviving mutant is not
listed in tests/MUTATION.md with the reason it is acceptable.

    .venv/bin/python tools/mutation.py                  # every target
    .venv/bin/python tools/mutation.py teams-access     # some, by slug
    .venv/bin/python tools/mutation.py --recheck teams-access   # only the last run's survivors
    MUTATION_CHILDREN=1 make mutation                   # mutmut's parallel test runs (default 2)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.mutation_scope import TARGETS, Target  # noqa: E402

# Where the copies and results go (another folder lets two runs share a checkout).
WORK = Path(os.environ.get("MUTATION_WORK", ROOT / "var" / "mutation"))
ACCEPTED_LIST = ROOT / "tests" / "MUTATION.md"
TARGET_SCORE = 90.0
# What the tests need beside `reviews` and `tests` (mutmut copies those two itself).
ALSO_COPY = ("portal", "devregistry", "templates", "static", "manage.py")
# mutmut's exit codes per mutant (mutmut/stats.py): the tests failed, or the type checker did.
KILLED = {1, 3, 37}
SURVIVED = {0}
TIMED_OUT = {36, -24, 24, 152, 255}  # a mutant that loops forever is caught too
NO_TESTS = {5, 33}


@dataclass
class Score:
    target: Target
    killed: list[str] = field(default_factory=list)
    survived: list[str] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)
    untested: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        verdicts = (self.killed, self.survived, self.timed_out, self.untested, self.other)
        return sum(map(len, verdicts))

    @property
    def percent(self) -> float:
        caught = len(self.killed) + len(self.timed_out)
        return 100.0 * caught / self.total if self.total else 100.0


def copy_checkout(target: Target) -> Path:
    workdir = WORK / target.slug
    shutil.rmtree(workdir, ignore_errors=True)
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / name.decode()
        if source.is_file():
            destination = workdir / name.decode()
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
    with (workdir / "pyproject.toml").open("a") as pyproject:
        pyproject.write(mutmut_config(target))
    return workdir


def mutmut_config(target: Target) -> str:
    def toml_list(items: tuple[str, ...] | list[str]) -> str:
        return "[" + ", ".join(json.dumps(item) for item in items) + "]"

    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["reviews"]\n'
        f"only_mutate = {toml_list([target.module])}\n"
        f"also_copy = {toml_list(ALSO_COPY)}\n"
        f"pytest_add_cli_args_test_selection = {toml_list(target.tests)}\n"
        # A fixed order: a mutant's verdict must not depend on a random seed.
        'pytest_add_cli_args = ["-p", "no:randomly", "-q"]\n'
    )


def mutant_globs(target: Target) -> list[str]:
    functions = target.functions or ("*",)
    return [f"{target.dotted}.{function}__mutmut_*" for function in functions]


def last_result(target: Target) -> dict[str, Any]:
    saved: dict[str, Any] = json.loads((WORK / f"{target.slug}.json").read_text())
    return saved


def run_mutmut(
    target: Target, workdir: Path, children: int, names: list[str], log_name: str = "mutmut.log"
) -> None:
    log = workdir / log_name
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    with log.open("w") as out:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "mutmut",
                "run",
                "--max-children",
                str(children),
                *names,
            ],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )


def read_verdicts(target: Target, workdir: Path, names: list[str]) -> Score:
    meta = workdir / "mutants" / f"{target.module}.meta"
    if not meta.exists():
        raise SystemExit(f"{target.slug}: mutmut left no results; see {workdir / 'mutmut.log'}")
    exit_codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    score = Score(target)
    for name, code in sorted(exit_codes.items()):
        if not any(fnmatch(name, pattern) for pattern in names):
            continue
        if code in KILLED:
            score.killed.append(name)
        elif code in SURVIVED:
            score.survived.append(name)
        elif code in TIMED_OUT:
            score.timed_out.append(name)
        elif code in NO_TESTS:
            score.untested.append(name)
        else:
            score.other.append(name)
    return score


def accepted_mutants() -> set[str]:
    """Every mutant name tests/MUTATION.md accepts (each in backticks at the start of a line
    item, followed by its reason)."""
    text = ACCEPTED_LIST.read_text() if ACCEPTED_LIST.exists() else ""
    return set(re.findall(r"^- `([^`]+__mutmut_\d+)`", text, flags=re.MULTILINE))


def show(workdir: Path, name: str) -> str:
    shown = subprocess.run(
        [sys.executable, "-m", "mutmut", "show", name],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    return shown.stdout


def report(scores: list[Score], accepted: set[str]) -> list[str]:
    problems = []
    print(f"\n{'module':40} {'mutants':>8} {'killed':>7} {'survived':>9} {'score':>7} {'time':>7}")
    for score in scores:
        caught = len(score.killed) + len(score.timed_out)
        print(
            f"{score.target.module:40} {score.total:8} {caught:7} {len(score.survived):9} "
            f"{score.percent:6.1f}% {score.seconds:6.0f}s"
        )
        if score.percent < TARGET_SCORE:
            problems.append(f"{score.target.module}: {score.percent:.1f} % < {TARGET_SCORE} %")
        for name in score.survived + score.untested + score.other:
            if name not in accepted:
                problems.append(f"not in tests/MUTATION.md: {name}")
    return problems


def merge_earlier(score: Score, earlier: dict[str, Any]) -> None:
    """A recheck ran only the earlier survivors: the mutants killed then stay killed."""
    score.killed = sorted({*score.killed, *earlier["killed"]})
    score.timed_out = sorted({*score.timed_out, *earlier["timed_out"]})


def mutate(target: Target, children: int, recheck: bool) -> tuple[Score, Path]:
    earlier = last_result(target) if recheck else None
    names = mutant_globs(target)
    if earlier is not None:
        names = [*earlier["survived"], *earlier["untested"], *earlier["other"]]
    workdir = copy_checkout(target)
    # With nothing left to recheck, a glob that matches no mutant still has mutmut make them.
    run_mutmut(target, workdir, children, names or [f"{target.dotted}.x_none__mutmut_*"])
    if earlier is not None:
        # Mutants the earlier run never had (code changed since) are tried now too.
        seen = {
            name
            for verdicts in earlier.values()
            if isinstance(verdicts, list | dict)
            for name in verdicts
        }
        new = [name for name in all_mutants(target, workdir) if name not in seen]
        if new:
            run_mutmut(target, workdir, children, new, log_name="mutmut-new.log")
        names = [*names, *new]
    score = read_verdicts(target, workdir, names)
    if earlier is not None:
        merge_earlier(score, earlier)
    return score, workdir


def all_mutants(target: Target, workdir: Path) -> list[str]:
    meta = workdir / "mutants" / f"{target.module}.meta"
    exit_codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    wanted = mutant_globs(target)
    return sorted(name for name in exit_codes if any(fnmatch(name, p) for p in wanted))


def main(arguments: list[str]) -> int:
    recheck = "--recheck" in arguments
    slugs = [argument for argument in arguments if argument != "--recheck"]
    targets = [t for t in TARGETS if not slugs or t.slug in slugs]
    if not targets:
        print("targets:", ", ".join(t.slug for t in TARGETS))
        return 2
    children = int(os.environ.get("MUTATION_CHILDREN", "2"))
    scores = []
    started = time.monotonic()
    for target in targets:
        print(f"mutating {target.module} ...", flush=True)
        began = time.monotonic()
        score, workdir = mutate(target, children, recheck)
        score.seconds = time.monotonic() - began
        scores.append(score)
        (WORK / f"{target.slug}.json").write_text(
            json.dumps(
                {
                    "module": target.module,
                    "score": round(score.percent, 1),
                    "killed": score.killed,
                    "timed_out": score.timed_out,
                    "survived": {name: show(workdir, name) for name in score.survived},
                    "untested": score.untested,
                    "other": score.other,
                    "seconds": round(score.seconds),
                },
                indent=1,
            )
        )
    problems = report(scores, accepted_mutants())
    print(f"\ntotal {time.monotonic() - started:.0f} s; details in {WORK}/<module>.json")
    for problem in problems:
        print("FAIL", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
