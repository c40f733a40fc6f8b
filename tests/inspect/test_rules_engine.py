"""The engine's bookkeeping, where a bug hides a threat from the reviewer: which finding is new
(a second copy of old code is not "existing"), which files fit the parse budget (a file left
out must be said, a file that fits must be parsed), and which skipped files are listed."""

from __future__ import annotations

import hashlib
import json

from reviews.inspect.archive import FileEntry
from reviews.inspect.rules import Finding, ScanLimits, Severity, Status
from reviews.inspect.rules.engine import MAX_NOT_SCANNED_LISTED, assign_statuses, wants_bytes
from tests.inspect.builders import make_tarball
from tests.inspect.rules_support import manifest, of, scan, scan_tarballs, with_manifest

CALL = "require('child_process').exec(x)\n"


def child_process(path: str, findings: list[Finding]) -> set[Status]:
    return {f.status for f in of(findings, "code.child-process") if f.path == path}


def not_scanned(findings: list[Finding]) -> list[str]:
    return [f.path for f in of(findings, "scan.not-scanned")]


# Statuses: each baseline match is used once.


def matched(key: str, rule: str = "code.eval") -> Finding:
    return Finding(rule=rule, severity=Severity.HIGH, title="eval", key=key)


def test_a_second_copy_of_old_code_is_changed_not_existing():
    statuses = assign_statuses([matched("eval(x)"), matched("eval(x)")], [matched("eval(x)")])

    assert [f.status for f in statuses] == [Status.EXISTING, Status.CHANGED]


def test_two_copies_in_the_baseline_make_two_existing_and_no_more():
    baseline = [matched("eval(x)"), matched("eval(x)")]
    staged = [matched("eval(x)"), matched("eval(x)"), matched("eval(x)")]

    statuses = assign_statuses(staged, baseline)

    assert [f.status for f in statuses] == [Status.EXISTING, Status.EXISTING, Status.CHANGED]


def test_a_finding_of_a_rule_the_baseline_did_not_match_is_new():
    statuses = assign_statuses([matched("eval(x)", "code.network")], [matched("eval(x)")])

    assert [f.status for f in statuses] == [Status.NEW]


def test_a_call_copied_a_second_time_into_a_changed_file_is_not_hidden():
    old = "const cp = require('child_process')\ncp.exec(a)\n"
    new = "const cp = require('child_process')\ncp.exec(a)\ncp.exec(a)\n"

    findings = scan({"run.js": old}, {"run.js": new})

    statuses = [f.status for f in findings if f.path == "run.js" and f.rule.startswith("code.")]
    assert Status.EXISTING in statuses
    assert any(status is not Status.EXISTING for status in statuses)


def test_a_file_whose_only_change_is_its_mode_is_not_said_to_be_skipped():
    findings = scan({"run.js": CALL}, {"run.js": CALL}, modes={"run.js": 0o755})

    assert [f.rule for f in findings] == ["content.executable-bit"]


# Which bytes the analysis keeps for the rules.


def entry(size: int, *, binary: bool = False, content: str = "a") -> FileEntry:
    digest = hashlib.sha256(content.encode()).hexdigest()
    lines = None if binary else 1
    return FileEntry("lib/a.js", size, 0o644, digest, digest[:40], binary, lines, lines)


def test_the_bytes_of_a_changed_file_are_kept_and_of_an_unchanged_one_not():
    limits = ScanLimits()

    assert wants_bytes(entry(10, content="new"), entry(10, content="old"), limits)
    assert wants_bytes(entry(10), None, limits)
    assert not wants_bytes(entry(10), entry(10), limits)


def test_binary_and_text_files_have_their_own_read_limit():
    limits = ScanLimits(max_read_bytes=100, max_binary_bytes=1_000)

    assert wants_bytes(entry(500, binary=True), None, limits)
    assert not wants_bytes(entry(1_001, binary=True), None, limits)
    assert not wants_bytes(entry(500), None, limits)
    assert wants_bytes(entry(100), None, limits)
    assert wants_bytes(entry(1_000, binary=True), None, limits)


# The parse budget: what fits is parsed, what does not is said.


def test_added_files_take_the_budget_before_changed_ones():
    added = CALL * 4
    old, new = CALL, CALL + "// touched\n"
    limits = ScanLimits(parse_budget=len(added))

    findings = scan({"a.js": old}, {"a.js": new, "b.js": added}, limits=limits)

    assert child_process("b.js", findings) == {Status.NEW}
    assert not_scanned(findings) == ["a.js"]


def test_a_file_that_fits_the_budget_exactly_is_parsed():
    findings = scan({}, {"a.js": CALL}, limits=ScanLimits(parse_budget=len(CALL)))

    assert child_process("a.js", findings) == {Status.NEW}
    assert not_scanned(findings) == []


def test_one_byte_over_the_budget_is_said():
    findings = scan({}, {"a.js": CALL}, limits=ScanLimits(parse_budget=len(CALL) - 1))

    assert child_process("a.js", findings) == set()
    assert not_scanned(findings) == ["a.js"]


def test_the_budget_adds_up_over_files():
    files = dict.fromkeys(("a.js", "b.js", "c.js"), CALL)

    findings = scan({}, files, limits=ScanLimits(parse_budget=2 * len(CALL)))

    assert not_scanned(findings) == ["c.js"]
    assert child_process("a.js", findings) == child_process("b.js", findings) == {Status.NEW}


def test_a_changed_file_costs_both_its_sides():
    old, new = CALL + "// one\n", CALL + "// two\n"

    findings = scan({"a.js": old}, {"a.js": new}, limits=ScanLimits(parse_budget=len(new) + 1))

    assert not_scanned(findings) == ["a.js"]
    both = ScanLimits(parse_budget=len(new) + len(old))
    assert not_scanned(scan({"a.js": old}, {"a.js": new}, limits=both)) == []


def test_files_the_parser_would_not_read_take_nothing_from_the_budget():
    files = {
        "a.js": "const a = 1\n",  # nothing the pre-filter looks for
        "b.txt": CALL,  # not code
        "c.d.ts": CALL,  # a declaration
        "d.js": "const t = 'npm_" + "Ab3" * 12 + "'\n",  # a secret needs no parse
        "e.js": CALL,
        "f.js": CALL + "// longer\n",
    }

    findings = scan({}, files, limits=ScanLimits(parse_budget=len(CALL) + 1))

    assert child_process("e.js", findings) == {Status.NEW}
    assert not_scanned(findings) == ["f.js"]


def test_a_file_at_the_parse_limit_counts_against_the_budget():
    code = CALL + "/" * 40 + "\n"
    limits = ScanLimits(max_parse_bytes=len(code), parse_budget=len(code) - 1)

    findings = scan({}, {"a.js": code}, limits=limits)

    assert not_scanned(findings) == ["a.js"]
    assert "budget" in of(findings, "scan.not-scanned")[0].title


def test_a_node_script_without_an_extension_counts_against_the_budget():
    script = "#!/usr/bin/env node\n" + CALL

    findings = scan({}, {"bin/run": script}, limits=ScanLimits(parse_budget=len(script) - 1))

    assert not_scanned(findings) == ["bin/run"]


# Skipped files are listed, the first ones by name, the rest counted.


def scan_with_time_for_one(files: int) -> list[Finding]:
    """`files` files (and package.json), a clock that allows only the first one."""
    ticks = iter(range(10_000))
    new = {f"f{i:03}.js": CALL for i in range(files)}
    new_tar = make_tarball(with_manifest(new, "1.1.0"))
    old_tar = make_tarball({"package.json": manifest(version="1.0.0")})
    limits = ScanLimits(time_budget=1.5)
    return scan_tarballs(old_tar, new_tar, limits, clock=lambda: next(ticks)).findings


def test_as_many_skipped_files_as_are_listed_are_all_named():
    # f000 is scanned; f001..f049 and package.json are the 50 skipped.
    skipped = of(scan_with_time_for_one(MAX_NOT_SCANNED_LISTED), "scan.not-scanned")

    assert len(skipped) == MAX_NOT_SCANNED_LISTED
    assert all(f.path for f in skipped)


def test_past_the_listed_ones_the_rest_are_counted_in_one_finding():
    skipped = of(scan_with_time_for_one(MAX_NOT_SCANNED_LISTED + 12), "scan.not-scanned")

    named = [f for f in skipped if f.path]
    [summary] = [f for f in skipped if not f.path]
    assert len(named) == MAX_NOT_SCANNED_LISTED
    assert summary.title == "Not scanned: 12 more files (time budget or size limits)"
    assert summary.severity is Severity.LOW
    assert summary.status is Status.NEW
    assert json.dumps(summary.to_data())
