"""Risk findings on the Django side: run the rules inside the analysis, store them, judge the
release from the registry's facts, and record each stage's risk (and its audit entry).

The rules themselves are pure (`reviews.inspect.rules`); this module gives them what only the
portal has: the stored tarballs, the settings, the packument and the stage record. The stage's
**risk** is the highest severity among the new and changed findings of its default analysis and
its release findings; `StageBaseline.risk_rank` keeps it sortable for the dashboard.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, BinaryIO

from django.conf import settings
from django.db import transaction

from reviews.audit import trail as audit
from reviews.audit.trail import Action
from reviews.inspect.archive import FileEntry, Limits, read_members
from reviews.inspect.baseline import STAGE_PLACEHOLDER
from reviews.inspect.changes import PackageAnalysis
from reviews.inspect.manifest_diff import ManifestDiff
from reviews.inspect.rules import (
    Finding,
    PackageFacts,
    PairScan,
    Publisher,
    ReleaseFacts,
    ScanLimits,
    Severity,
    counts_by_severity,
    highest,
    release_findings,
    scan_pair,
    wants_bytes,
)
from reviews.inspect.rules.manifest import refusal_finding
from reviews.mirror.registry import Packument
from reviews.models import Analysis, AuditEvent, StageBaseline, StagedVersion

__all__ = [
    "findings_of",
    "keep_for_rules",
    "record_stage_risk",
    "release_facts",
    "risk_fields",
    "scan_limits",
    "scan_package",
    "stage_findings",
]

MANIFEST = "package.json"


def scan_limits() -> ScanLimits:
    return ScanLimits(
        max_read_bytes=settings.GREENROOM_RULES_MAX_READ_BYTES,
        max_parse_bytes=settings.GREENROOM_RULES_MAX_PARSE_BYTES,
        parse_budget=settings.GREENROOM_RULES_PARSE_BUDGET,
        max_binary_bytes=settings.GREENROOM_RULES_MAX_READ_BYTES,
        time_budget=settings.GREENROOM_RULES_TIME_BUDGET,
        helper_share_bytes=settings.GREENROOM_RULES_HELPER_SHARE_BYTES,
    )


def keep_for_rules(limits: ScanLimits) -> Callable[[FileEntry, FileEntry | None], bool]:
    """What `analyse_tarballs` keeps of the staged side for the rules (added, changed)."""
    return lambda entry, before: wants_bytes(entry, before, limits)


def scan_package(
    package: PackageAnalysis,
    manifest: ManifestDiff,
    new_manifest: bytes | None,
    old_manifest: bytes | None,
    baseline: BinaryIO | None,
    archive_limits: Limits,
    limits: ScanLimits,
) -> PairScan | None:
    """Every rule on an analysed pair; None when a tarball was refused (nothing to scan)."""
    refused = package.new.refusal or (package.old.refusal if package.old else None)
    if refused is not None:
        return None
    facts = PackageFacts.of(package, manifest, new_manifest, old_manifest)

    def read_baseline(paths: Collection[str]) -> Mapping[str, bytes]:
        # the analysis kept the baseline side of what the rules asked for: read the tarball
        # again only for what it could not keep
        found = {path: package.old_contents[path] for path in paths if path in package.old_contents}
        missing = [path for path in paths if path not in found]
        if baseline is None or not missing:
            return found
        baseline.seek(0)
        return {**found, **read_members(baseline, missing, archive_limits)}

    return scan_pair(package.changeset.changes, package.new.contents, read_baseline, facts, limits)


def risk_fields(package: PackageAnalysis, scan: PairScan | None) -> dict[str, Any]:
    """The `Analysis` fields that hold the findings and the pair's risk."""
    if scan is None:
        if package.new.refusal is not None:
            found = [refusal_finding("staged", package.new.refusal.message)]
        elif package.old is not None and package.old.refusal is not None:
            found = [refusal_finding("baseline", package.old.refusal.message)]
        else:
            found = []
    else:
        found = scan.findings
    risk = highest(found)
    return {
        "risk_findings": [finding.to_data() for finding in found],
        "risk": risk.value if risk else "",
    }


def findings_of(data: Iterable[Mapping[str, Any]] | None) -> list[Finding]:
    return [Finding.from_data(item) for item in data or () if isinstance(item, Mapping)]


# -- The release and the stage --------------------------------------------------------------


def release_facts(stage: StagedVersion, packument: Packument | None) -> ReleaseFacts:
    publishers: list[Publisher] = []
    for version, doc in (packument.versions if packument else {}).items():
        if version in (STAGE_PLACEHOLDER, stage.version) or not isinstance(doc, dict):
            continue
        user = doc.get("_npmUser")
        user = user if isinstance(user, dict) else {}
        dist = doc.get("dist")
        dist = dist if isinstance(dist, dict) else {}
        name = user.get("name")
        automated = bool(user.get("trustedPublisher")) or bool(dist.get("attestations"))
        publishers.append(Publisher(version, name if isinstance(name, str) else "", automated))
    return ReleaseFacts(
        version=stage.version,
        tag=stage.tag,
        actor=stage.actor,
        actor_type=stage.actor_type,
        dist_tags=dict(packument.dist_tags) if packument else {},
        publishers=publishers,
    )


def stage_findings(
    analysis: Analysis | None, release: Iterable[Mapping[str, Any]]
) -> list[Finding]:
    """The release's findings first, then the analysis' (each list sorted as stored)."""
    found = findings_of(release)
    if analysis is not None:
        found += findings_of(analysis.risk_findings)
    return found


def record_stage_risk(stage: StagedVersion, packument: Packument | None) -> str | None:
    """Judge the release, store the stage's risk beside its baseline choice, and record the
    finished analysis in the audit trail (once per analysis). The risk, or None while the
    analysis is not finished."""
    chosen = (
        StageBaseline.objects.select_related("analysis")
        .filter(stage=stage, staged_tarball_id=stage.tarball_id)
        .first()
    )
    if chosen is None:
        return None
    release = [finding.to_data() for finding in release_findings(release_facts(stage, packument))]
    analysis = chosen.analysis
    finished = analysis is not None and analysis.finished
    found = stage_findings(analysis if finished else None, release)
    risk = highest(found)
    rank = (risk.rank if risk else 0) if finished or chosen.problem else None
    with transaction.atomic():
        StageBaseline.objects.filter(pk=chosen.pk).update(
            release_findings=release,
            risk=risk.value if risk else "",
            risk_rank=rank,
        )
        if finished and analysis is not None:
            _audit_analysis(stage, chosen, analysis, found, risk)
    return risk.value if risk else ""


def _audit_analysis(
    stage: StagedVersion,
    chosen: StageBaseline,
    analysis: Analysis,
    found: list[Finding],
    risk: Severity | None,
) -> None:
    target = f"analysis {analysis.pk}"
    if AuditEvent.objects.filter(stage=stage, action=Action.STAGE_ANALYSED, target=target).exists():
        return
    audit.record(
        Action.STAGE_ANALYSED,
        stage=stage,
        target=target,
        payload={
            "baseline": chosen.version or None,
            "status": analysis.status,
            "risk": risk.value if risk else "none",
            "findings": counts_by_severity(found),
            "existing": sum(1 for f in found if not f.counts_for_risk),
            "rules_ran": analysis.risk_findings is not None,
        },
    )
