"""What a reviewer is shown of a stage's findings: its risk and counts take new and changed
findings only (existing ones were already there), a stored finding of an unknown status reads
as new, and a secret is shown masked."""

from __future__ import annotations

import pytest

from reviews.inspect.rules import Finding, Severity, Status
from reviews.inspect.rules.findings import counts_by_severity, highest, mask_secret


def found(severity: Severity, status: Status = Status.NEW) -> Finding:
    return Finding(rule="code.eval", severity=severity, title="eval", status=status)


NO_COUNTS = {"critical": 0, "high": 0, "medium": 0, "low": 0, "info": 0}


def test_the_risk_is_the_highest_severity_whatever_the_order():
    for findings in (
        [found(Severity.LOW), found(Severity.CRITICAL), found(Severity.MEDIUM)],
        [found(Severity.CRITICAL), found(Severity.LOW), found(Severity.INFO)],
        [found(Severity.INFO), found(Severity.MEDIUM), found(Severity.HIGH)],
    ):
        expected = max(findings, key=lambda f: f.severity.rank).severity
        assert highest(findings) is expected
        assert highest(reversed(findings)) is expected


def test_the_risk_takes_changed_findings_and_not_existing_ones():
    existing = found(Severity.CRITICAL, Status.EXISTING)
    assert highest([existing, found(Severity.LOW, Status.CHANGED)]) is Severity.LOW
    assert highest([found(Severity.LOW, Status.CHANGED), existing]) is Severity.LOW
    assert highest([existing]) is None
    assert highest([]) is None


def test_a_single_info_finding_is_a_risk_of_info_not_none():
    assert highest([found(Severity.INFO)]) is Severity.INFO


def test_the_counts_take_new_and_changed_findings_in_every_severity():
    findings = [
        found(Severity.CRITICAL),
        found(Severity.HIGH, Status.CHANGED),
        found(Severity.HIGH),
        found(Severity.MEDIUM, Status.EXISTING),
        found(Severity.INFO),
    ]
    counts = counts_by_severity(findings)
    assert counts == {"critical": 1, "high": 2, "medium": 0, "low": 0, "info": 1}
    assert list(counts) == ["critical", "high", "medium", "low", "info"]
    assert counts_by_severity([]) == NO_COUNTS


def test_all_findings_are_counted_when_asked():
    findings = [found(Severity.MEDIUM, Status.EXISTING), found(Severity.MEDIUM)]
    assert counts_by_severity(findings, new_only=False)["medium"] == 2
    assert counts_by_severity(findings)["medium"] == 1


def test_a_stored_finding_of_an_unknown_status_or_severity_still_counts():
    stored = {"rule": "code.eval", "severity": "severe", "title": "eval", "status": "seen"}
    finding = Finding.from_data(stored)
    assert finding.status is Status.NEW
    assert finding.severity is Severity.INFO
    assert highest([finding]) is Severity.INFO


def test_a_stored_finding_reads_back_whole():
    finding = Finding(
        rule="content.secret",
        severity=Severity.HIGH,
        title="Looks like a token",
        path="lib/a.js",
        line=3,
        column=7,
        excerpt="const t = 'npm_…'",
        status=Status.CHANGED,
        key="const t",
    )
    assert Finding.from_data(finding.to_data()) == finding
    malformed = Finding.from_data({"line": "3", "column": 7.0})
    assert (malformed.line, malformed.column) == (None, None)


def test_a_package_finding_reads_back_without_a_path_or_excerpt():
    finding = Finding(rule="package.install-script", severity=Severity.HIGH, title="postinstall")

    read = Finding.from_data(finding.to_data())

    assert read == finding
    assert read.where == "package"


def test_an_empty_stored_finding_reads_as_new_with_empty_texts():
    read = Finding.from_data({})

    assert (read.rule, read.title, read.path, read.excerpt, read.key) == ("", "", "", "", "")
    assert (read.severity, read.status) == (Severity.INFO, Status.NEW)


@pytest.mark.parametrize(
    ("secret", "shown"),
    [
        ("npm_AbCdEfGh", "npm_… (12 characters)"),
        ("npm_A", "npm_… (5 characters)"),
        ("abcd", "…"),
        ("abc", "…"),
    ],
)
def test_a_secret_shows_its_first_four_characters_at_most(secret: str, shown: str):
    assert mask_secret(secret) == shown


def test_a_secret_shorter_than_what_is_kept_is_shown_as_nothing():
    assert mask_secret("abcdef", keep=6) == "…"
    assert mask_secret("abcdefg", keep=6) == "abcdef… (7 characters)"
