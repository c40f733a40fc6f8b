"""The files to parse shared with a forked helper process: the findings are the ones a single
process gives, and a helper that fails loses nothing silently (a crash names every file it was
scanning; an exception or a refused fork means this process scans them itself)."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from reviews.inspect.rules import Finding, ScanLimits, engine, forked
from tests.inspect.builders import make_tarball
from tests.inspect.rules_support import scan_tarballs, with_manifest

OLD = {
    "lib/run.js": "const cp = require('child_process')\ncp.exec(a)\n",
    "lib/load.js": "module.exports = (s) => eval(s)\n",
    "lib/net.js": "require('https').get(url)\n",
    "lib/keep.js": "module.exports = 1\n",
}
NEW = {
    "lib/run.js": "const cp = require('child_process')\ncp.exec(a)\ncp.exec(b)\n",
    "lib/load.js": "module.exports = (s) => eval(s) // same call\n",
    "lib/net.js": "require('https').get(url)\nrequire('http').get(other)\n",
    "lib/added.js": "new Function(text)()\n",
    "lib/keep.js": "module.exports = 1\n",
}
ALWAYS = ScanLimits(helper_share_bytes=1)
NEVER = ScanLimits(helper_share_bytes=0)


def pair() -> tuple[bytes, bytes]:
    return make_tarball(with_manifest(OLD, "1.0.0")), make_tarball(with_manifest(NEW, "1.1.0"))


def as_data(findings: list[Finding]) -> list[dict[str, Any]]:
    return [finding.to_data() for finding in findings]


@pytest.fixture
def in_the_helper_only(monkeypatch: pytest.MonkeyPatch):
    """Make `engine.scan_file` do something else in the helper (not in this process)."""
    parent = os.getpid()
    real = engine.scan_file

    def install(fault: Any) -> None:
        def scan_file(*args: Any, **kwargs: Any) -> Any:
            if os.getpid() != parent:
                fault()
            return real(*args, **kwargs)

        monkeypatch.setattr(engine, "scan_file", scan_file)

    return install


def test_with_a_helper_the_findings_are_those_of_one_process():
    old, new = pair()

    shared = scan_tarballs(old, new, ALWAYS)
    alone = scan_tarballs(old, new, NEVER)

    assert shared.helper_cpu_seconds > 0  # the helper did take files
    assert 0 < shared.helper_files < shared.files_scanned
    assert (alone.helper_cpu_seconds, alone.helper_files) == (0, 0)
    assert as_data(shared.findings) == as_data(alone.findings)
    assert {f.path for f in shared.findings} >= {"lib/run.js", "lib/added.js", "lib/net.js"}
    counts = (shared.files_scanned, shared.files_parsed, shared.files_skipped)
    assert counts == (alone.files_scanned, alone.files_parsed, alone.files_skipped)


def test_below_the_share_worth_a_fork_one_process_scans_everything():
    old, new = pair()

    assert scan_tarballs(old, new, ScanLimits(helper_share_bytes=10**9)).helper_cpu_seconds == 0


def test_a_helper_that_crashes_names_every_file_it_was_scanning(in_the_helper_only):
    in_the_helper_only(lambda: os.kill(os.getpid(), signal.SIGKILL))
    old, new = pair()
    alone = scan_tarballs(old, new, NEVER)

    crashed = scan_tarballs(old, new, ALWAYS).findings

    stopped = {f.path for f in crashed if f.rule == "scan.not-scanned" and "SIGKILL" in f.title}
    assert stopped
    found_alone = {f.path for f in alone.findings if f.rule != "scan.not-scanned"}
    found_now = {f.path for f in crashed if f.rule != "scan.not-scanned"}
    # every file with findings is either still found here or said not to be scanned
    assert found_alone - found_now <= stopped
    assert found_now  # this process' own share was scanned
    assert all(f.title.endswith("it was stopped by SIGKILL") for f in crashed if f.path in stopped)


def test_a_helper_that_raises_leaves_its_files_to_this_process(in_the_helper_only):
    def fails() -> None:
        raise RuntimeError("a bug")

    in_the_helper_only(fails)
    old, new = pair()

    scan = scan_tarballs(old, new, ALWAYS)

    assert scan.helper_files == 0  # this process scanned them all
    assert as_data(scan.findings) == as_data(scan_tarballs(old, new, NEVER).findings)


def test_a_refused_fork_scans_on_one_core(monkeypatch: pytest.MonkeyPatch):
    def refused(_call: Any) -> Any:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(forked, "start", refused)
    old, new = pair()

    scan = scan_tarballs(old, new, ALWAYS)

    assert scan.helper_cpu_seconds == 0
    assert as_data(scan.findings) == as_data(scan_tarballs(old, new, NEVER).findings)


def test_when_this_process_fails_its_share_the_helper_is_not_left_running(
    monkeypatch: pytest.MonkeyPatch,
):
    parent = os.getpid()
    real_scan, real_start = engine.scan_file, forked.start
    started: list[forked.Forked[Any]] = []

    def scan_file(*args: Any, **kwargs: Any) -> Any:
        if os.getpid() == parent:
            raise RuntimeError("a bug in this process' share")
        time.sleep(60)  # the helper would run on
        return real_scan(*args, **kwargs)

    def start(call: Any) -> Any:
        started.append(real_start(call))
        return started[-1]

    monkeypatch.setattr(engine, "scan_file", scan_file)
    monkeypatch.setattr(forked, "start", start)
    old, new = pair()

    with pytest.raises(RuntimeError, match="a bug in this process' share"):
        scan_tarballs(old, new, ALWAYS)

    [helper] = started
    with pytest.raises(ProcessLookupError):
        os.kill(helper.pid, 0)


def test_each_file_is_scanned_once_by_the_helper_or_by_this_process(
    monkeypatch: pytest.MonkeyPatch,
):
    parent = os.getpid()
    real = engine.scan_file
    here: list[str] = []

    def scan_file(path: str, *args: Any, **kwargs: Any) -> Any:
        if os.getpid() == parent and kwargs.get("rules") is None:  # a staged side, here
            here.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(engine, "scan_file", scan_file)
    old, new = pair()

    scan = scan_tarballs(old, new, ALWAYS)

    assert scan.helper_cpu_seconds > 0
    assert len(here) == len(set(here))
    assert 0 < len(here) < scan.files_scanned  # the helper scanned the others, not this process


def test_a_helper_past_the_time_budget_is_waited_for_within_its_grace(in_the_helper_only):
    in_the_helper_only(lambda: time.sleep(1))
    old, new = pair()

    findings = scan_tarballs(old, new, ScanLimits(helper_share_bytes=1, time_budget=0.3)).findings

    assert not [f for f in findings if "helper process" in f.title]


def test_a_helper_past_the_time_budget_and_its_grace_is_stopped(
    in_the_helper_only, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(engine, "HELPER_GRACE_SECONDS", 0.5)
    in_the_helper_only(lambda: time.sleep(30))
    old, new = pair()
    started = time.monotonic()

    findings = scan_tarballs(old, new, ScanLimits(helper_share_bytes=1, time_budget=0.5)).findings

    assert time.monotonic() - started < 10
    stopped = [f for f in findings if "helper process" in f.title]
    assert stopped
    assert all("did not finish within" in f.title for f in stopped)
