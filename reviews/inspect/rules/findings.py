"""What a risk finding is: a rule, a severity, a place, a short excerpt, and a status.

A `Finding` is plain data. Its `excerpt` and `title` hold raw text from the tarball (cut short,
secrets masked) and are escaped only where they are rendered. `key` says what "the same code"
means for its rule: a finding of the staged side whose (rule, key) also matched on the baseline
side is *existing*; one whose rule matched the baseline file but not this code is *changed*;
anything else is *new* (`reviews.inspect.rules.engine` decides).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

__all__ = [
    "RULES",
    "Finding",
    "RuleInfo",
    "Severity",
    "Status",
    "counts_by_severity",
    "excerpt_of",
    "highest",
    "mask_secret",
    "normalise",
    "rule",
]

MAX_EXCERPT = 160
MAX_TITLE = 200
MAX_KEY = 240


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """5 for critical down to 1 for info (0 is "nothing found")."""
        return _RANKS[self]

    @classmethod
    def ordered(cls) -> tuple[Severity, ...]:
        """Highest first."""
        return (cls.CRITICAL, cls.HIGH, cls.MEDIUM, cls.LOW, cls.INFO)


_RANKS = {
    Severity.CRITICAL: 5,
    Severity.HIGH: 4,
    Severity.MEDIUM: 3,
    Severity.LOW: 2,
    Severity.INFO: 1,
}


class Status(StrEnum):
    NEW = "new"
    """Not in the baseline (and every finding of a first release)."""
    CHANGED = "changed"
    """The rule matched the baseline's file too, but not this code."""
    EXISTING = "existing"
    """The same rule matched the same code in the baseline."""


@dataclass(frozen=True, slots=True)
class RuleInfo:
    id: str
    """Stable and dotted: `code.child-process`. Stored, filtered on, and shown."""
    severity: Severity
    """The usual severity; a rule may raise or lower it for one finding."""
    summary: str
    """What the rule looks for, in one sentence (the README's rule list and the page)."""


RULES: dict[str, RuleInfo] = {}


def rule(rule_id: str, severity: Severity, summary: str) -> RuleInfo:
    """Register a rule in the catalogue (each rule module does this at import)."""
    if rule_id in RULES:
        raise ValueError(f"rule {rule_id} is registered twice")
    info = RuleInfo(rule_id, severity, summary)
    RULES[rule_id] = info
    return info


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    severity: Severity
    title: str
    """One line; raw text (escape it)."""
    path: str = ""
    """The staged path (the baseline path for something removed); empty for the package."""
    line: int | None = None
    """1-based, lines split on `\\n` only, as in the diff."""
    column: int | None = None
    """1-based, in code points."""
    excerpt: str = ""
    """The code or text matched, whitespace collapsed, cut, secrets masked; raw (escape it)."""
    status: Status = Status.NEW
    key: str = ""
    """What "the same code" means for this rule (compared with the baseline's findings)."""

    @property
    def where(self) -> str:
        """`path:line` (or the path, or "package")."""
        if not self.path:
            return "package"
        return f"{self.path}:{self.line}" if self.line else self.path

    @property
    def counts_for_risk(self) -> bool:
        return self.status is not Status.EXISTING

    def with_status(self, status: Status) -> Finding:
        return replace(self, status=status)

    def to_data(self) -> dict[str, Any]:
        """JSON-ready, short keys left out when empty (stored per analysis)."""
        data: dict[str, Any] = {
            "rule": self.rule,
            "severity": self.severity.value,
            "title": self.title,
            "status": self.status.value,
        }
        for name in ("path", "line", "column", "excerpt", "key"):
            value = getattr(self, name)
            if value:
                data[name] = value
        return data

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Finding:
        """The inverse of `to_data`; unknown severities and statuses read as info and new."""
        try:
            severity = Severity(str(data.get("severity")))
        except ValueError:
            severity = Severity.INFO
        try:
            status = Status(str(data.get("status")))
        except ValueError:
            status = Status.NEW
        line, column = data.get("line"), data.get("column")
        return cls(
            rule=str(data.get("rule", "")),
            severity=severity,
            title=str(data.get("title", "")),
            path=str(data.get("path", "")),
            line=line if isinstance(line, int) else None,
            column=column if isinstance(column, int) else None,
            excerpt=str(data.get("excerpt", "")),
            status=status,
            key=str(data.get("key", "")),
        )


def make(
    info: RuleInfo,
    title: str,
    *,
    path: str = "",
    line: int | None = None,
    column: int | None = None,
    excerpt: str = "",
    key: str | None = None,
    severity: Severity | None = None,
) -> Finding:
    """A finding of `info`'s rule, with the excerpt cut and the key normalised."""
    shown = excerpt_of(excerpt)
    return Finding(
        rule=info.id,
        severity=severity or info.severity,
        title=_cut(" ".join(title.split()), MAX_TITLE),
        path=path,
        line=line,
        column=column,
        excerpt=shown,
        key=_cut(normalise(key if key is not None else excerpt), MAX_KEY),
    )


_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Whitespace removed: a reformatted line is the same code."""
    return _SPACE.sub("", text)


def excerpt_of(text: str) -> str:
    return _cut(" ".join(text.split()), MAX_EXCERPT)


def mask_secret(secret: str, keep: int = 4) -> str:
    """`npm_AbCd…` (how long): enough to recognise it, never enough to use it."""
    if len(secret) <= keep:
        return "…"
    return f"{secret[:keep]}… ({len(secret)} characters)"


def highest(findings: Iterable[Finding]) -> Severity | None:
    """The stage's risk: the highest severity among new and changed findings (None if none)."""
    best: Severity | None = None
    for finding in findings:
        if finding.counts_for_risk and (best is None or finding.severity.rank > best.rank):
            best = finding.severity
    return best


def counts_by_severity(findings: Iterable[Finding], *, new_only: bool = True) -> dict[str, int]:
    """{"critical": 1, "high": 3, ...} over new and changed findings (or all of them)."""
    counted = Counter(f.severity.value for f in findings if f.counts_for_risk or not new_only)
    return {severity.value: counted.get(severity.value, 0) for severity in Severity.ordered()}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
