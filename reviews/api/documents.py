"""The API's documents, built from the models.

Risk, findings and reviews come from other rooms (the risk rules, team review); each is read
through one adapter below (`risk_of`, `with_risk_at_least`, `findings_of`, `reviews_of`,
`submit_review`), so the documents' shapes do not depend on how those rooms store them.
"""

from __future__ import annotations

from typing import cast

from django.contrib.auth.models import User
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse

from reviews.api import schemas
from reviews.api.errors import ApiError
from reviews.audit.trail import Action, Actor
from reviews.inspect.rules.findings import Severity
from reviews.models import Analysis, AuditEvent, Review, StageBaseline, StagedVersion
from reviews.review import discussion
from reviews.review import risk as review_risk
from reviews.review.analysis import current_baseline

State = StagedVersion.State
# The audit entries whose registry answer is the decision's (made in the portal).
DECISION_ACTIONS = (Action.STAGE_APPROVED, Action.STAGE_REJECTED)


# -- Risk (reviews.review.risk) and team reviews (reviews.review.discussion) ---------------------


RISK_RANKS: dict[str, int] = {severity.value: severity.rank for severity in Severity}


def _current_choice(stage: StagedVersion) -> StageBaseline | None:
    chosen: StageBaseline | None = getattr(stage, "review_baseline", None)
    if chosen is None or chosen.staged_tarball_id != stage.tarball_id:
        return None
    return chosen


def risk_of(stage: StagedVersion) -> schemas.RiskLevel | None:
    """The stage's risk: the highest severity among its new and changed findings, "none" when
    nothing was found, None while it is not known (not analysed yet)."""
    chosen = _current_choice(stage)
    if chosen is None or chosen.risk_rank is None:
        return None
    return cast(schemas.RiskLevel, chosen.risk or "none")


def with_risk_at_least(
    stages: QuerySet[StagedVersion], level: schemas.RiskLevel
) -> QuerySet[StagedVersion]:
    """Stages whose known risk is `level` or higher ("none": every stage whose risk is known)."""
    return stages.filter(
        review_baseline__staged_tarball_id=F("tarball_id"),
        review_baseline__risk_rank__gte=RISK_RANKS.get(level, 0),
    )


def findings_of(stage: StagedVersion, analysis: Analysis | None) -> list[schemas.FindingOut]:
    """The release's and the files' risk findings against the baseline, as the page lists them.
    The archive's own entries (links, devices, paths outside the package) are in
    `analysis.archive_entries`."""
    chosen = _current_choice(stage)
    finished = analysis if analysis is not None and analysis.finished else None
    release = chosen.release_findings if chosen is not None else []
    return [
        schemas.FindingOut(
            rule=finding.rule,
            severity=finding.severity.value,
            status=finding.status.value,
            path=finding.path,
            line=finding.line,
            title=finding.title,
        )
        for finding in review_risk.stage_findings(finished, release)
    ]


def reviews_of(stage: StagedVersion) -> list[schemas.ReviewOut]:
    """Every review of the stage, oldest first (a later verdict of a person replaces theirs)."""
    return [
        schemas.ReviewOut(
            reviewer=review.author_name,
            verdict=cast(schemas.Verdict, review.verdict),
            body=review.body,
            submitted_at=review.created_at,
        )
        for review in Review.objects.filter(stage=stage).order_by("created_at", "id")
    ]


def submit_review(
    stage: StagedVersion, user: User, review: schemas.ReviewIn, actor: Actor
) -> schemas.ReviewOut:
    """Record a review with the same rules as the page; the caller checked the role."""
    try:
        saved = discussion.submit_review(stage, user, review.verdict, review.body, actor)
    except discussion.DiscussionError as e:
        # Well formed, but the page's rules refuse it here and now (a decided stage, a
        # "request changes" without a word): a conflict with the stage, said in plain words.
        raise ApiError(409, "review_refused", str(e)) from None
    return schemas.ReviewOut(
        reviewer=saved.author_name,
        verdict=cast(schemas.Verdict, saved.verdict),
        body=saved.body,
        submitted_at=saved.created_at,
    )


# -- States ---------------------------------------------------------------------------------------


def state_of(stage: StagedVersion) -> schemas.StageState:
    if stage.state == State.PENDING:
        return "pending"
    if stage.state == State.APPROVED:
        return "approved"
    return "rejected" if stage.decided_in_portal else "vanished"


STATE_FILTERS: dict[str, Q] = {
    "pending": Q(state=State.PENDING),
    "approved": Q(state=State.APPROVED),
    "rejected": Q(state=State.REJECTED, decided_in_portal=True),
    "vanished": Q(state=State.REJECTED, decided_in_portal=False),
}


# -- Documents ------------------------------------------------------------------------------------


def summary_fields(stage: StagedVersion, request: HttpRequest) -> dict[str, object]:
    return {
        "stage_id": stage.stage_id,
        "package": stage.package_name,
        "version": stage.version,
        "tag": stage.tag,
        "state": state_of(stage),
        "staged_at": stage.staged_at,
        "integrity": stage.integrity,
        "risk": risk_of(stage),
        "url": request.build_absolute_uri(reverse("api:stage", args=[stage.stage_id])),
        "page_url": request.build_absolute_uri(reverse("reviews:stage", args=[stage.stage_id])),
    }


def stage_summary(stage: StagedVersion, request: HttpRequest) -> schemas.StageSummary:
    return schemas.StageSummary.model_validate(summary_fields(stage, request))


def stage_document(stage: StagedVersion, request: HttpRequest) -> schemas.StageDocument:
    chosen = current_baseline(stage)
    analysis = chosen.analysis if chosen else None
    return schemas.StageDocument.model_validate(
        {
            **summary_fields(stage, request),
            "actor": {"name": stage.actor, "type": stage.actor_type or None},
            "shasum": stage.shasum,
            "access": stage.access or None,
            "first_seen_at": stage.first_seen_at,
            "integrity_reason": stage.integrity_reason,
            "tarball": tarball_of(stage),
            "baseline": baseline_of(chosen),
            "analysis": analysis_of(analysis),
            "counts": counts_of(analysis),
            "findings": findings_of(stage, analysis),
            "reviews": reviews_of(stage),
            "decision": decision_of(stage),
        }
    )


def tarball_of(stage: StagedVersion) -> schemas.TarballOut | None:
    tarball = stage.tarball
    if tarball is None:
        return None
    return schemas.TarballOut(
        sha1=tarball.sha1, sha256=tarball.sha256, integrity=tarball.integrity, size=tarball.size
    )


def baseline_of(chosen: StageBaseline | None) -> schemas.BaselineOut | None:
    if chosen is None:
        return None
    return schemas.BaselineOut(
        version=chosen.version or None,
        rule=chosen.rule,
        tag=chosen.tag or None,
        problem=chosen.problem or None,
    )


def analysis_of(analysis: Analysis | None) -> schemas.AnalysisOut | None:
    if analysis is None:
        return None
    return schemas.AnalysisOut.model_validate(
        {
            "status": analysis.status,
            "refusal": analysis.refusal_message or None,
            "archive_entries": analysis.findings,
        }
    )


def counts_of(analysis: Analysis | None) -> schemas.CountsOut | None:
    if analysis is None or analysis.status != Analysis.Status.DONE:
        return None
    return schemas.CountsOut(
        files=analysis.file_count,
        added=analysis.files_added,
        removed=analysis.files_removed,
        modified=analysis.files_modified,
        renamed=analysis.files_renamed,
        unchanged=analysis.files_unchanged,
        binary_changed=analysis.binary_changed,
        lines_added=analysis.lines_added,
        lines_removed=analysis.lines_removed,
        old_size=analysis.old_size,
        new_size=analysis.new_size,
        complete=analysis.stats_complete,
    )


def decision_of(stage: StagedVersion) -> schemas.DecisionOut:
    decided_by = stage.decided_by.get_username() if stage.decided_by else None
    return schemas.DecisionOut(
        stage_id=stage.stage_id,
        state=state_of(stage),
        decided_in_portal=stage.decided_in_portal,
        decided_by=decided_by,
        npm_user=stage.decided_npm_user or None,
        decided_at=stage.decided_at or stage.resolved_at,
        reason=stage.decision_reason,
        registry=registry_answer(stage),
        digest=digest_of(stage),
    )


def registry_answer(stage: StagedVersion) -> schemas.RegistryAnswer | None:
    """What the registry answered the approve or reject sent from the portal."""
    if not stage.decided_in_portal:
        return None
    event = (
        AuditEvent.objects.filter(stage=stage, action__in=[str(a) for a in DECISION_ACTIONS])
        .order_by("-id")
        .first()
    )
    if event is None:
        return None
    return schemas.RegistryAnswer(status=event.registry_status, message=event.registry_message)


def digest_of(stage: StagedVersion) -> schemas.DigestOut | None:
    """The published version against the reviewed tarball, as the stage page says it."""
    if stage.state != State.APPROVED:
        return None
    return schemas.DigestOut(
        status=digest_status(stage),
        published_shasum=stage.published_shasum or None,
        published_integrity=stage.published_integrity or None,
        shasum_matches=stage.published_shasum_matches,
        integrity_matches=stage.published_integrity_matches,
        checked_at=stage.published_checked_at,
    )


def digest_status(stage: StagedVersion) -> schemas.DigestState:
    if False in (stage.published_shasum_matches, stage.published_integrity_matches):
        return "mismatch"
    if stage.published_shasum_matches:
        return "match"
    return "unavailable" if stage.published_checked_at else "pending"
