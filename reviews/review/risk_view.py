"""The risk findings as the stage page shows them: the risk, then new and changed findings by
severity (new first), each linking to its line in the file's diff, and the existing ones
collapsed under a count. Everything from a tarball is escaped here, with hidden characters as
visible markers; nothing here queries the database."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.utils.safestring import SafeString, mark_safe

from reviews.inspect.rules import Finding, Severity, Status, highest
from reviews.inspect.textcheck import escape_and_mark

__all__ = ["FindingRow", "RiskView", "file_marks", "risk_view", "tree_marks"]

_UNLINKED = ("archive.", "release.", "package.")


@dataclass(frozen=True)
class FindingRow:
    finding: Finding
    url: str
    where: SafeString
    title: SafeString
    excerpt: SafeString

    @property
    def rule(self) -> str:
        return self.finding.rule

    @property
    def status(self) -> str:
        return self.finding.status.value

    @property
    def severity(self) -> str:
        return self.finding.severity.value


@dataclass
class Group:
    severity: str
    rows: list[FindingRow]


@dataclass
class RiskView:
    ran: bool
    """False when the analysis was made before the rules existed (or the rules did not run)."""
    risk: str = ""
    groups: list[Group] = field(default_factory=list)
    existing: list[FindingRow] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.risk or "none found"

    @property
    def new_count(self) -> int:
        return sum(len(group.rows) for group in self.groups)


def risk_view(
    findings: Iterable[Finding], *, ran: bool, link: Callable[[str, int | None], str]
) -> RiskView:
    """`link(path, line)` gives the URL of a path's diff at a line."""
    found = list(findings)
    risk = highest(found)
    view = RiskView(ran=ran, risk=risk.value if risk else "")
    by_severity: dict[Severity, list[FindingRow]] = defaultdict(list)
    for finding in sorted(found, key=_order):
        row = _row(finding, link)
        if finding.status is Status.EXISTING:
            view.existing.append(row)
        else:
            by_severity[finding.severity].append(row)
    view.groups = [
        Group(severity.value, by_severity[severity])
        for severity in Severity.ordered()
        if by_severity[severity]
    ]
    view.counts = {group.severity: len(group.rows) for group in view.groups}
    return view


def _order(finding: Finding) -> tuple[int, int, str, int]:
    status = {Status.NEW: 0, Status.CHANGED: 1, Status.EXISTING: 2}[finding.status]
    return (-finding.severity.rank, status, finding.path, finding.line or 0)


def _row(finding: Finding, link: Callable[[str, int | None], str]) -> FindingRow:
    linked = finding.path and not finding.rule.startswith(_UNLINKED) and finding.path != ".git"
    return FindingRow(
        finding=finding,
        url=link(finding.path, finding.line) if linked else "",
        where=_marked(finding.where),
        title=_marked(finding.title),
        excerpt=_marked(finding.excerpt),
    )


def _marked(text: str) -> SafeString:
    return mark_safe(escape_and_mark(text))  # noqa: S308 (escaped here)


def file_marks(findings: Iterable[Finding], path: str) -> dict[int, str]:
    """{line: "severity: title; ..."} for one file's findings, for the diff's line markers."""
    marks: dict[int, list[str]] = defaultdict(list)
    for finding in findings:
        if finding.path == path and finding.line:
            marks[finding.line].append(
                f"{finding.severity.value} ({finding.status.value}): {finding.title}"
            )
    return {line: "; ".join(titles) for line, titles in marks.items()}


def tree_marks(findings: Iterable[Finding]) -> dict[str, tuple[int, str]]:
    """{path: (number of findings, highest severity among new and changed, or "existing")}."""
    counts: dict[str, int] = defaultdict(int)
    worst: dict[str, Severity] = {}
    for finding in findings:
        if not finding.path:
            continue
        counts[finding.path] += 1
        if finding.counts_for_risk:
            best = worst.get(finding.path)
            if best is None or finding.severity.rank > best.rank:
                worst[finding.path] = finding.severity
    return {
        path: (count, worst[path].value if path in worst else "existing")
        for path, count in counts.items()
    }
