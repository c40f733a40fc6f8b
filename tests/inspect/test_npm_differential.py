"""The reader against npm itself: what we index is what npm installs, or we refuse the tarball.

Every case is extracted twice: by our reader, and by the installed npm's own pacote (through
tests/support/npm_extract.js, many tarballs per Node process). For each one, the files npm
wrote (path, SHA-256, executable bit) must equal our index exactly, unless our reader refused
the tarball. The generated corpus is fixed (hypothesis, derandomized) so the suite is
repeatable; `GREENROOM_DIFF_TAR_CASES=50000` runs a longer one, and `GREENROOM_DIFF_TAR_SEED`
picks another corpus (see README).
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed

from reviews.inspect.archive import ArchiveResult, FindingKind, read_archive
from tests.support.npm_oracle import Installed, npm_install_many
from tests.support.tar_cases import Case, audit_reproduction, cases, python_long_path

pytestmark = pytest.mark.npm

CASES = int(os.environ.get("GREENROOM_DIFF_TAR_CASES", "2000"))
SEED = os.environ.get("GREENROOM_DIFF_TAR_SEED")
MIN_COMPARED = 0.35  # below these shares of cases read whole (and with files), the corpus
MIN_WITH_FILES = 0.25  # would test refusals more than agreement


def generate(count: int, seed: int | None) -> list[Case]:
    """`count` cases from the strategy: the fixed corpus, or another one for a given seed."""
    collected: list[Case] = []

    @settings(
        max_examples=count,
        database=None,
        derandomize=seed is None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(cases())
    def collect(case: Case) -> None:
        collected.append(case)

    if seed is not None:
        collect = hypothesis_seed(seed)(collect)
    collect()
    return collected


def index_of(result: ArchiveResult) -> dict[str, tuple[str, bool]]:
    return {path: (entry.sha256, entry.is_executable) for path, entry in result.files.items()}


def disagreement(ours: ArchiveResult, theirs: Installed) -> str | None:
    """Why our reading of one tarball is not what npm installs, or None if it is (or refused)."""
    if ours.refusal is not None:
        return None
    if not theirs.ok:
        return f"npm fails ({theirs.error}) where the reader lists {sorted(ours.files)}"
    mine = index_of(ours)
    if mine == theirs.files:
        return None
    lines = [
        f"  {path!r}: reader {mine.get(path)} npm {theirs.files.get(path)}"
        for path in sorted(set(mine) | set(theirs.files))
        if mine.get(path) != theirs.files.get(path)
    ]
    return "the files differ:\n" + "\n".join(lines)


def compare_with_npm(
    named: Mapping[str, bytes], workdir: Path, steps: Mapping[str, str] | None = None
) -> dict[str, ArchiveResult]:
    """Read every tarball ourselves and through npm; fail listing the cases that differ.

    The tarballs of failing cases are left in `workdir/failed/` to replay; the smallest few
    are described in the failure (with how they were made, from `steps`).
    """
    installed = npm_install_many(named, workdir / "npm")
    results = {name: read_archive(tarball) for name, tarball in named.items()}
    failures = {}
    for name, result in results.items():
        why = disagreement(result, installed[name])
        if why is not None:
            failures[name] = why
    if failures:
        kept = workdir / "failed"
        kept.mkdir()
        for name in failures:
            (kept / f"{name}.tgz").write_bytes(named[name])
        shown = sorted(failures, key=lambda name: len(named[name]))[:5]
        report = "\n\n".join(
            f"{name}: {failures[name]}\n{(steps or {}).get(name, '')}" for name in shown
        )
        pytest.fail(f"{len(failures)} tarballs read differently from npm (in {kept}):\n{report}")
    return results


@pytest.mark.timeout(max(300, CASES // 10))  # the long run takes a while
def test_generated_tarballs_read_as_npm_installs_them(tmp_path: Path):
    corpus = generate(CASES, int(SEED) if SEED else None)
    assert len(corpus) >= CASES * 0.95  # hypothesis may skip a few duplicates, no more
    named = {f"case-{number:06d}": case.tarball for number, case in enumerate(corpus)}

    steps = {f"case-{number:06d}": case.describe() for number, case in enumerate(corpus)}

    results = compare_with_npm(named, tmp_path, steps)

    # the corpus must keep testing agreement, not just refusals: in the fixed one, 826 of
    # 2,000 cases are read whole, 597 of them with files
    compared = [result for result in results.values() if result.refusal is None]
    assert len(compared) >= MIN_COMPARED * len(results), f"only {len(compared)} not refused"
    with_files = sum(1 for result in compared if result.files)
    assert with_files >= MIN_WITH_FILES * len(results), f"only {with_files} with files"


# --- Known cases, each against npm too --------------------------------------------------------


def test_the_audits_hidden_index_js_is_shown_as_npm_installs_it(tmp_path: Path):
    tarball, hidden = audit_reproduction()

    result = compare_with_npm({"audit": tarball}, tmp_path)["audit"]

    assert result.refusal is None
    assert set(result.files) == {"index.js"}
    assert result.files["index.js"].sha256 == hashlib.sha256(hidden).hexdigest()
    assert [finding.kind for finding in result.findings] == [FindingKind.DUPLICATE_PATH]


@pytest.mark.parametrize("tar_format", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_long_paths_written_by_tarfile_read_correctly(tmp_path: Path, tar_format: int):
    tarball, path, data = python_long_path(tar_format)

    result = compare_with_npm({"long": tarball}, tmp_path)["long"]

    assert result.complete
    assert set(result.files) == {path}
    assert result.files[path].sha256 == hashlib.sha256(data).hexdigest()
