"""Risk findings: rules over a (baseline, staged) pair of package tarballs, pure Python.

`engine.scan_pair()` runs every file and package rule and gives each finding its status against
the baseline; `release.release_findings()` judges the release itself from registry facts the
caller passes in. `findings.RULES` lists every rule with its usual severity.
"""

from reviews.inspect.rules.engine import PairScan, ScanLimits, scan_file, scan_pair, wants_bytes
from reviews.inspect.rules.findings import (
    RULES,
    Finding,
    RuleInfo,
    Severity,
    Status,
    counts_by_severity,
    highest,
)
from reviews.inspect.rules.manifest import PackageFacts
from reviews.inspect.rules.release import Publisher, ReleaseFacts, release_findings

__all__ = [
    "RULES",
    "Finding",
    "PackageFacts",
    "PairScan",
    "Publisher",
    "ReleaseFacts",
    "RuleInfo",
    "ScanLimits",
    "Severity",
    "Status",
    "counts_by_severity",
    "highest",
    "release_findings",
    "scan_file",
    "scan_pair",
    "wants_bytes",
]
