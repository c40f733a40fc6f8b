"""What the API sends and accepts, as typed schemas: the OpenAPI document is generated from them.

The stage document already has `risk`, `findings` and `reviews`; they are filled by the adapters
in reviews.api.documents, so the shapes here stay when the risk rules and team reviews land.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from ninja import Field, Schema

from reviews.review.discussion import MAX_TEXT as MAX_REVIEW_TEXT

# pending: waiting at the registry. approved: published (here or elsewhere). rejected: rejected
# in Greenroom. vanished: gone from the registry's holding area unpublished, with no decision
# here (rejected with the npm CLI, or withdrawn).
StageState = Literal["pending", "approved", "rejected", "vanished"]
Severity = Literal["info", "low", "medium", "high", "critical"]
# A stage's risk: the highest severity among its new and changed findings, "none" when the rules
# found nothing; null while it is not known (not analysed yet).
RiskLevel = Literal["none", "info", "low", "medium", "high", "critical"]
Verdict = Literal["approve", "request_changes", "comment"]
DigestState = Literal["pending", "match", "mismatch", "unavailable"]


class ErrorDetail(Schema):
    code: str = Field(examples=["not_found"])
    message: str = Field(examples=["No such staged version"])
    details: list[dict[str, Any]] | None = Field(
        None, description="For invalid requests: which parameter, and what is wrong with it."
    )


class ErrorOut(Schema):
    """Every error, whatever its status."""

    error: ErrorDetail


class StageSummary(Schema):
    stage_id: UUID = Field(description="The registry's stage id.")
    package: str
    version: str
    tag: str
    state: StageState
    staged_at: datetime
    integrity: Literal["pending", "verified", "mismatch", "unavailable"] = Field(
        description="Whether the downloaded tarball matches the stage's shasum and package.json."
    )
    risk: RiskLevel | None
    url: str = Field(description="This stage's document in the API.")
    page_url: str = Field(description="This stage's review page in the portal.")


class Page(Schema):
    page: int
    per_page: int
    total: int
    next: str | None = Field(description="The next page's URL; null on the last page.")


class StagePage(Page):
    items: list[StageSummary]


class Actor(Schema):
    name: str
    type: str | None = Field(description="user, automation, …; null when the registry did not say")


class TarballOut(Schema):
    """The staged tarball as downloaded and checked."""

    sha1: str
    sha256: str
    integrity: str = Field(description="sha512 SRI string, as npm writes it")
    size: int


class BaselineOut(Schema):
    version: str | None = Field(description="null for a first release: every file is added")
    rule: str = Field(description="tag, below, highest or none: how the baseline was chosen")
    tag: str | None
    problem: str | None = Field(description="Why there is no analysis against it, if so.")


class CountsOut(Schema):
    files: int
    added: int
    removed: int
    modified: int
    renamed: int
    unchanged: int
    binary_changed: int
    lines_added: int
    lines_removed: int
    old_size: int
    new_size: int
    complete: bool = Field(description="false when some line counts were beyond the limits")


class ArchiveEntryOut(Schema):
    """An archive entry that is not a plain file (a link, a device, a path outside the package):
    listed, never followed."""

    side: Literal["staged", "baseline"]
    kind: str
    path: str
    detail: str


class AnalysisOut(Schema):
    status: Literal["pending", "running", "done", "refused", "failed"]
    refusal: str | None = Field(description="Why the tarballs were not analysed (over a limit).")
    archive_entries: list[ArchiveEntryOut]


class FindingOut(Schema):
    rule: str
    severity: Severity
    status: Literal["new", "changed", "existing"] = Field(
        description="Against the baseline: new in this release, changed, or already there."
    )
    path: str
    line: int | None
    title: str


class ReviewOut(Schema):
    reviewer: str
    verdict: Verdict
    body: str
    submitted_at: datetime


class RegistryAnswer(Schema):
    status: int | None = Field(description="The registry's HTTP status for the decision.")
    message: str


class DigestOut(Schema):
    """After an approval: is what was published what was reviewed?"""

    status: DigestState
    published_shasum: str | None
    published_integrity: str | None
    shasum_matches: bool | None
    integrity_matches: bool | None
    checked_at: datetime | None


class DecisionOut(Schema):
    stage_id: UUID
    state: StageState
    decided_in_portal: bool
    decided_by: str | None = Field(description="The Greenroom user who decided, if it was here.")
    npm_user: str | None = Field(description="As whom the registry was asked.")
    decided_at: datetime | None
    reason: str
    registry: RegistryAnswer | None
    digest: DigestOut | None = Field(description="Only for approved stages.")


class StageDocument(StageSummary):
    actor: Actor
    shasum: str
    access: str | None
    first_seen_at: datetime
    integrity_reason: str = Field(description="Why the integrity verdict is what it is.")
    tarball: TarballOut | None = Field(description="null until the tarball is downloaded")
    baseline: BaselineOut | None
    analysis: AnalysisOut | None
    counts: CountsOut | None
    findings: list[FindingOut]
    reviews: list[ReviewOut]
    decision: DecisionOut


class ReviewIn(Schema):
    verdict: Verdict
    body: str = Field("", max_length=MAX_REVIEW_TEXT)


class AuditEntryOut(Schema):
    id: int
    created_at: datetime
    action: str
    username: str
    npm_user: str
    stage_uuid: str
    package_name: str
    version: str
    shasum: str
    target: str
    ip: str | None
    user_agent: str
    registry_status: int | None
    registry_message: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(Page):
    items: list[AuditEntryOut]
