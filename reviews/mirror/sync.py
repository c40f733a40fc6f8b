"""The sync: mirror the registry's staged versions into `StagedVersion` rows.

`sync_stages()` is one pass: page through `GET /-/stage`, record new stages, refresh known ones
and, when the listing reached its end, resolve the pending ones that vanished from it (approved
if the packument now has the version, rejected or withdrawn otherwise). `download_stage()`
claims, downloads, verifies and stores one stage's tarball. Both are plain functions; the
Celery tasks and the management command only call them.

Every pass and every download is idempotent and safe to run at the same time as another:
rows are created under the unique stage id, state changes are conditional UPDATEs, and a
download is claimed with a lease (`reviews.mirror.leases`: a token, and a time a heartbeat keeps
fresh while the download runs), so a killed worker's claim expires within a few minutes and the
next pass hands the stage out again. Nothing is ever deleted.

One bad moment of the registry decides nothing for good. A tarball that does not match is
downloaded once more, and only a second wrong download makes the mismatch. A tarball left
unavailable by a transient error is checked again by later passes, on RECHECK_DELAYS (about a
day), and a person may ask for a check of an unavailable or mismatching one at any time.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from reviews.audit import trail as audit
from reviews.audit.trail import Action
from reviews.mirror import leases, throttle
from reviews.mirror.registry import (
    NotFound,
    Packument,
    RateLimited,
    RegistryClient,
    RegistryError,
    Stage,
    StagePage,
    sync_client,
)
from reviews.mirror.tarballs import Verdict, check_tarball, store_tarball
from reviews.models import NotificationEvent, StagedVersion, SyncStatus, Tarball

logger = logging.getLogger(__name__)

T = TypeVar("T")

PAGE_SIZE = 100  # the most the registry hands out per page
MAX_PAGES = 1000  # a registry that never ends a listing is not followed forever
READ_ATTEMPTS = 3
READ_BACKOFF = 0.5  # seconds before the first retry of a read; doubled each time
READ_BACKOFF_CAP = 10.0  # and never longer, whatever retry-after asks for
DOWNLOAD_MAX_SECONDS = 450.0  # one download of the largest tarball we accept, at a crawl
MAX_DOWNLOAD_ATTEMPTS = 5  # in the first round, while the tarball has no verdict yet
# A round that ends unavailable for a transient reason is followed by another once each of
# these has passed in turn (about a day in all); after the last, only a person starts one.
RECHECK_DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    *(timedelta(hours=3),) * 7,
)
# Verdicts a person may ask to check again, and the sync pass re-checks when due.
RECHECKABLE = (StagedVersion.Integrity.UNAVAILABLE, StagedVersion.Integrity.MISMATCH)
QUERY_CHUNK = 500  # ids per IN (...) query, well under SQLite's variable limit

# The download outcomes, besides the three integrity verdicts.
SKIPPED = "skipped"  # already verified, claimed by another worker, or no longer pending
DEFERRED = "deferred"  # a transient error: the claim is released for a later attempt


@dataclass
class SyncSummary:
    listed: int = 0
    new: int = 0
    updated: int = 0
    resolved: int = 0
    failed: int = 0
    # Whether the listing reached its end, the one case where vanished stages are resolved.
    complete: bool = False
    error: str = ""
    to_download: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        line = (
            f"{self.listed} staged version{'' if self.listed == 1 else 's'} listed: "
            f"{self.new} new, {self.updated} updated, "
            f"{self.resolved} resolved, {self.failed} failed"
        )
        if not self.complete:
            line += f"; listing incomplete, nothing resolved ({self.error})"
        return line


def backoff_delay(
    attempt: int,
    error: BaseException | None = None,
    *,
    base: float = READ_BACKOFF,
    cap: float = READ_BACKOFF_CAP,
) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, ...): doubling from `base`, at
    least what a 429's retry-after asked for, and never more than `cap`."""
    delay = base * 2.0 ** (attempt - 1)
    if isinstance(error, RateLimited) and error.retry_after is not None:
        delay = max(delay, error.retry_after)
    return min(delay, cap)


def read_with_retries(read: Callable[[], T], *, attempts: int = READ_ATTEMPTS) -> T:
    """Call an idempotent registry read, again after transient errors, at most `attempts` times."""
    for attempt in range(1, attempts):
        try:
            return read()
        except RegistryError as e:
            if not e.transient:
                raise
            delay = backoff_delay(attempt, e)
            logger.info("registry read failed (%s); retrying in %.1f s", e, delay)
            throttle.sleep(delay)
    return read()


# -- One pass -------------------------------------------------------------------------------------


def sync_stages(
    client: RegistryClient | None = None, *, now: datetime | None = None
) -> SyncSummary:
    """One sync pass. A listing that fails part-way keeps what it recorded and resolves nothing.

    `now` decides which tarball checks are due (tests move it; it defaults to the clock)."""
    if client is None:
        with sync_client() as own_client:
            return sync_stages(own_client, now=now)
    started = timezone.now()
    summary = SyncSummary()
    try:
        listed = _walk_listing(client, summary)
    except RegistryError as e:
        listed = None
        summary.error = str(e)
    if listed is None:
        logger.warning("stage listing incomplete, nothing resolved this pass: %s", summary.error)
    else:
        summary.complete = True
        _resolve_vanished(client, listed, started, summary)
    summary.to_download = stages_needing_download(now)
    record_pass(started, summary)
    logger.info("sync pass: %s", summary)
    return summary


def record_pass(started: datetime, summary: SyncSummary) -> None:
    """What /healthz and /metrics say about the sync: when the last complete pass began."""
    fields: dict[str, object] = {"last_started_at": started, "last_listed": summary.listed}
    if summary.complete:
        fields.update(last_completed_at=started, last_error="")
    else:
        fields["last_error"] = summary.error[:2000]
    _row, created = SyncStatus.objects.get_or_create(pk=1, defaults=fields)
    if not created:
        # A slower pass that began earlier must not move the completion time back.
        newer = Q(last_completed_at__isnull=True) | Q(last_completed_at__lt=started)
        if summary.complete:
            SyncStatus.objects.filter(newer, pk=1).update(**fields)
        else:
            SyncStatus.objects.filter(pk=1).update(**fields)


def _walk_listing(client: RegistryClient, summary: SyncSummary) -> set[uuid.UUID] | None:
    """Record every page of the listing; the ids listed if it reached its end, else None.

    The end is a short page, as the npm CLI sees it, and only if the registry's own `total` is
    reached too: a registry whose pages come short or whose total lies is not taken at its word.
    """
    seen: set[uuid.UUID] = set()
    # A full page means another follows: it is read (by one thread of its own, the only user
    # of the client meanwhile) while this one is recorded, so the registry's time and the
    # database's overlap.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="listing") as reader:
        upcoming = reader.submit(_read_page, client, 0)
        for number in range(MAX_PAGES):
            page = upcoming.result()
            fresh = [stage for stage in page.items if stage.id not in seen]
            if fresh and len(page.items) == PAGE_SIZE and number + 1 < MAX_PAGES:
                upcoming = reader.submit(_read_page, client, number + 1)
            seen.update(stage.id for stage in fresh)
            summary.listed = len(seen)
            record_listed_stages(fresh, summary)
            if len(page.items) < PAGE_SIZE:
                if len(seen) < page.total:
                    summary.error = f"the listing ended at {len(seen)} of {page.total} stages"
                    return None
                return seen
            if not fresh:
                summary.error = f"page {number} repeats stages already listed"
                return None
    summary.error = f"the listing did not end within {MAX_PAGES} pages"
    return None


def _read_page(client: RegistryClient, number: int) -> StagePage:
    return read_with_retries(partial(client.list_stages, number, PAGE_SIZE))


def record_listed_stages(stages: Iterable[Stage], summary: SyncSummary) -> None:
    """Create the stages not known yet, refresh the pending ones that are: one transaction for
    the page, and a number of statements that does not grow with it (new stages, their audit
    entries and their notification events are inserted in bulk), except one refresh per stage
    the registry changed."""
    stages = list(stages)
    with transaction.atomic():
        known = _known_stages([stage.id for stage in stages])
        new = [stage for stage in stages if stage.id not in known]
        summary.new += len(record_new_stages(new))
        unchanged = []
        for stage in stages:
            staged_version = known.get(stage.id)
            if staged_version is None:
                continue
            if refresh_stage(staged_version, stage):
                summary.updated += 1
            else:
                unchanged.append(staged_version.id)
        now = timezone.now()
        for unchanged_ids in _chunks(unchanged):
            StagedVersion.objects.filter(id__in=unchanged_ids).update(last_seen_at=now)


def _known_stages(stage_ids: list[uuid.UUID]) -> dict[uuid.UUID, StagedVersion]:
    known: dict[uuid.UUID, StagedVersion] = {}
    for chunk in _chunks(stage_ids):
        rows = StagedVersion.objects.filter(stage_id__in=chunk).only(*REFRESHED_FIELDS)
        known.update((sv.stage_id, sv) for sv in rows)
    return known


def _resolve_vanished(
    client: RegistryClient, listed: set[uuid.UUID], started: datetime, summary: SyncSummary
) -> None:
    # A row another pass saw after this one began is in a newer listing than ours.
    # A stage with an unanswered decision is the decision room's to settle (reviews.tasks
    # runs that first): it is read there with the decision it waits on in mind.
    pending = StagedVersion.objects.filter(
        state=StagedVersion.State.PENDING,
        last_seen_at__lt=started,
        unanswered_decision__isnull=True,
    ).order_by("id")
    vanished = [sv for sv in pending if sv.stage_id not in listed]
    packuments: dict[str, Packument | None] = {}
    for staged_version in vanished:
        try:
            summary.resolved += reconcile_stage(client, staged_version, packuments=packuments)
        except RegistryError as e:
            summary.failed += 1
            logger.warning("could not resolve vanished stage %s: %s", staged_version, e)


def reconcile_stage(
    client: RegistryClient,
    staged_version: StagedVersion,
    *,
    packuments: dict[str, Packument | None] | None = None,
    attempts: int = READ_ATTEMPTS,
) -> bool:
    """Ask the registry where one pending stage stands, and record it: refreshed if it is still
    staged (a listing can miss a stage that moved between pages), else resolved, approved if the
    packument now has the version and rejected or withdrawn if not. Whether it was resolved.

    Raises `RegistryError` when the registry cannot say; nothing is recorded then. `packuments`
    caches packuments across calls.
    """
    try:
        remote = read_with_retries(
            partial(client.get_stage, staged_version.stage_id), attempts=attempts
        )
    except NotFound:
        pass
    else:
        refresh_stage(staged_version, remote)
        return False
    packuments = {} if packuments is None else packuments
    name = staged_version.package_name
    if name not in packuments:
        try:
            packuments[name] = read_with_retries(
                partial(client.get_packument, name), attempts=attempts
            )
        except NotFound:
            packuments[name] = None  # the package is gone (or was only ever a placeholder)
    packument = packuments[name]
    dist = packument.dist(staged_version.version) if packument else None
    if dist is None:
        return resolve_stage(staged_version, StagedVersion.State.REJECTED)
    shasum = dist.get("shasum")
    return resolve_stage(
        staged_version,
        StagedVersion.State.APPROVED,
        published_shasum=shasum if isinstance(shasum, str) else "",
    )


def stages_needing_download(now: datetime | None = None) -> list[int]:
    """Pending stages with no integrity verdict or a check due, and no live download claim."""
    return list(
        _claimable(StagedVersion.objects.all(), now or timezone.now())
        .order_by("id")
        .values_list("id", flat=True)
    )


def downloads_to_queue(now: datetime | None = None) -> list[int]:
    """The stages whose download should be handed to the workers now, marked as queued: those
    needing one whose download was not queued within a lease (`leases.take_queue_marks`)."""
    now = now or timezone.now()
    return leases.take_queue_marks(
        _claimable(StagedVersion.objects.all(), now), "download_queued_at", now
    )


def mark_download_queued(staged_version_id: int, now: datetime | None = None) -> None:
    """A download was queued outside a pass (a retry, a person's request): passes leave it be."""
    StagedVersion.objects.filter(id=staged_version_id).update(
        download_queued_at=now or timezone.now()
    )


def _claimable(queryset: QuerySet[StagedVersion], now: datetime) -> QuerySet[StagedVersion]:
    due = Q(integrity=StagedVersion.Integrity.PENDING) | Q(
        integrity__in=RECHECKABLE, next_check_at__lte=now
    )
    return queryset.filter(
        due,
        Q(download_claimed_at__isnull=True) | Q(download_claimed_at__lt=now - leases.lease()),
        state=StagedVersion.State.PENDING,
    )


# -- One download ---------------------------------------------------------------------------------


def download_stage(
    staged_version_id: int, client: RegistryClient | None = None, *, now: datetime | None = None
) -> str:
    """Claim, download, verify and store one stage's tarball; a mismatch is downloaded once
    more (`fetch_and_check`).

    Returns the verdict recorded, or SKIPPED when there was nothing to do. In the first round
    (no verdict yet) a transient error releases the claim and is raised for the caller to
    retry, until MAX_DOWNLOAD_ATTEMPTS attempts are spent; then, like any error in a later
    check, it is recorded (`record_failed_check`), with the next check planned if it was
    transient.
    """
    if client is None:
        with sync_client() as own_client:
            return download_stage(staged_version_id, own_client, now=now)
    now = now or timezone.now()
    claim = claim_download(staged_version_id, now)
    if claim is None:
        return SKIPPED
    staged_version = StagedVersion.objects.get(id=staged_version_id)
    try:
        with leases.Heartbeat(partial(bump_download_claim, staged_version_id, claim)):
            verdict, stored = fetch_and_check(client, staged_version)
    except RegistryError as e:
        first_round = staged_version.integrity == StagedVersion.Integrity.PENDING
        if e.transient and first_round and staged_version.download_attempts < MAX_DOWNLOAD_ATTEMPTS:
            release_download(staged_version_id, claim)
            logger.info("tarball of %s deferred: %s", staged_version, e)
            raise
        return record_failed_check(staged_version, claim, e, now)
    record_integrity(staged_version_id, claim, verdict.integrity, verdict.reason, stored)
    return verdict.integrity


def fetch_and_check(
    client: RegistryClient, staged_version: StagedVersion
) -> tuple[Verdict, Tarball]:
    """Download the stage's tarball, check it and store it; the verdict and the stored bytes.

    A tarball that does not match is downloaded once more before it counts: one malformed
    answer must not brand a stage. The first download is audited; the second decides.
    """
    verdict, stored = _download_and_check(client, staged_version)
    if verdict.integrity != StagedVersion.Integrity.MISMATCH:
        return verdict, stored
    logger.warning(
        "tarball of %s does not match, downloading it again: %s", staged_version, verdict.reason
    )
    audit.record(
        Action.TARBALL_MISMATCH_UNCONFIRMED,
        stage=staged_version,
        payload={"reason": verdict.reason, "sha1": stored.sha1, "sha256": stored.sha256},
    )
    second, stored_again = _download_and_check(client, staged_version)
    if second.integrity != StagedVersion.Integrity.MISMATCH:
        return second, stored_again
    if stored_again.sha256 == stored.sha256:
        reason = f"{second.reason} (downloaded twice, the same bytes both times)"
    else:
        reason = f"{second.reason} (a first download gave other bytes, sha256 {stored.sha256})"
    logger.warning("tarball of %s does not match its stage: %s", staged_version, reason)
    return Verdict(StagedVersion.Integrity.MISMATCH, reason), stored_again


def _download_and_check(
    client: RegistryClient, staged_version: StagedVersion
) -> tuple[Verdict, Tarball]:
    with (
        throttle.download_slot(),
        client.download_stage_tarball(
            staged_version.stage_id,
            settings.GREENROOM_TARBALL_MAX_BYTES,
            max_seconds=DOWNLOAD_MAX_SECONDS,
        ) as tarball,
    ):
        verdict = check_tarball(
            tarball,
            name=staged_version.package_name,
            version=staged_version.version,
            shasum=staged_version.shasum,
        )
        return verdict, store_tarball(tarball)


def download_stages(
    staged_version_ids: Iterable[int], client: RegistryClient, *, now: datetime | None = None
) -> Counter[str]:
    """Download several stages' tarballs here and now; how many ended which way."""
    outcomes: Counter[str] = Counter()
    for staged_version_id in staged_version_ids:
        try:
            outcomes[download_stage(staged_version_id, client, now=now)] += 1
        except RegistryError:
            outcomes[DEFERRED] += 1
    return outcomes


# -- State changes, one function each -------------------------------------------------------------


def record_new_stage(stage: Stage) -> StagedVersion | None:
    """The new row for a stage first seen now; None if another pass created it first."""
    created = record_new_stages([stage])
    return created[0] if created else None


def record_new_stages(stages: Sequence[Stage]) -> list[StagedVersion]:
    """The rows of stages first seen now, with their audit entries and notification events, in
    one transaction and a few bulk inserts; stages another pass created first are left out.

    The audit chain's lock is taken before looking again for the stages: every pass that
    creates stages takes it (PostgreSQL; SQLite writes one transaction at a time), so no two
    create the same one.
    """
    if not stages:
        return []
    with transaction.atomic():
        audit.lock_chain()
        taken = _known_stages([stage.id for stage in stages])
        fresh = list({stage.id: stage for stage in stages if stage.id not in taken}.values())
        now = timezone.now()
        created = StagedVersion.objects.bulk_create(
            [
                StagedVersion(
                    stage_id=stage.id, first_seen_at=now, last_seen_at=now, **_fields_of(stage)
                )
                for stage in fresh
            ]
        )
        audit.record_many(
            [
                audit.Entry(
                    Action.STAGE_SEEN,
                    stage=staged_version,
                    npm_user=stage.actor,
                    payload={"tag": stage.tag, "actor_type": stage.actor_type},
                )
                for staged_version, stage in zip(created, fresh, strict=True)
            ],
            chain_locked=True,
        )
        NotificationEvent.objects.record_many(NotificationEvent.Kind.NEW_STAGE, created, now=now)
    for staged_version in created:
        logger.info("new stage %s (%s)", staged_version, staged_version.stage_id)
    return created


def refresh_stage(staged_version: StagedVersion, stage: Stage) -> bool:
    """Bring a pending row up to date with the registry; whether anything changed.

    A stage whose shasum changed under us is a different tarball: its verdict starts over.
    """
    if staged_version.state != StagedVersion.State.PENDING:
        return False  # decided here while this pass listed; the decision stands
    changes: dict[str, object] = {
        name: value
        for name, value in _fields_of(stage).items()
        if getattr(staged_version, name) != value
    }
    if not changes:
        return False
    if "shasum" in changes:
        logger.warning(
            "stage %s changed its shasum from %s to %s",
            staged_version,
            staged_version.shasum,
            stage.shasum,
        )
        changes.update(
            integrity=StagedVersion.Integrity.PENDING,
            integrity_reason="",
            tarball=None,
            download_claimed_at=None,
            download_claim="",
            download_attempts=0,
            next_check_at=None,
            failed_checks=0,
        )
    with transaction.atomic():
        updated = StagedVersion.objects.filter(
            id=staged_version.id, state=StagedVersion.State.PENDING
        ).update(**changes, last_seen_at=timezone.now())
        if updated:
            audit.record(
                Action.STAGE_UPDATED,
                stage=staged_version,
                payload={
                    name: {
                        "old": _audit_value(getattr(staged_version, name)),
                        "new": _audit_value(value),
                    }
                    for name, value in changes.items()
                    if name in _fields_of(stage)
                },
            )
    return bool(updated)


def resolve_stage(
    staged_version: StagedVersion, state: StagedVersion.State, *, published_shasum: str = ""
) -> bool:
    """Record a stage decided elsewhere; False if it was no longer pending here."""
    approved = state == StagedVersion.State.APPROVED
    published_shasum = published_shasum.lower()[:40]
    with transaction.atomic():
        resolved = StagedVersion.objects.filter(
            id=staged_version.id, state=StagedVersion.State.PENDING
        ).update(
            state=state,
            resolved_at=timezone.now(),
            resolved_elsewhere=True,
            published_shasum=published_shasum if approved else "",
            published_shasum_matches=(published_shasum == staged_version.shasum)
            if approved
            else None,
        )
        if resolved:
            audit.record(
                Action.APPROVED_ELSEWHERE if approved else Action.REJECTED_ELSEWHERE,
                stage=staged_version,
                payload=(
                    {
                        "published_shasum": published_shasum,
                        "matches_staged": published_shasum == staged_version.shasum,
                    }
                    if approved
                    else {}
                ),
            )
            NotificationEvent.objects.record(NotificationEvent.Kind.DECIDED, staged_version)
    if resolved:
        logger.info("stage %s was %s elsewhere", staged_version, state)
    return bool(resolved)


def claim_download(staged_version_id: int, now: datetime | None = None) -> str | None:
    """Take the download of a stage's tarball; the claim's token, or None if not ours."""
    now = now or timezone.now()
    token = leases.new_token()
    claimed = _claimable(StagedVersion.objects.filter(id=staged_version_id), now).update(
        download_claim=token, download_claimed_at=now, download_attempts=F("download_attempts") + 1
    )
    return token if claimed else None


def bump_download_claim(staged_version_id: int, claim: str, now: datetime) -> int:
    """The heartbeat of a download: its claim is fresh as of `now`, if it is still ours."""
    return StagedVersion.objects.filter(id=staged_version_id, download_claim=claim).update(
        download_claimed_at=now
    )


def release_download(staged_version_id: int, claim: str) -> None:
    StagedVersion.objects.filter(id=staged_version_id, download_claim=claim).update(
        download_claimed_at=None, download_claim=""
    )


def record_integrity(
    staged_version_id: int,
    claim: str,
    integrity: StagedVersion.Integrity,
    reason: str,
    tarball: Tarball | None = None,
    *,
    next_check_at: datetime | None = None,
    failed_checks: int = 0,
) -> bool:
    """Record a tarball verdict, if the claim is still ours (a refresh may have reset it), and
    when the sync pass should check again (never, unless `next_check_at`)."""
    with transaction.atomic():
        recorded = StagedVersion.objects.filter(id=staged_version_id, download_claim=claim).update(
            integrity=integrity,
            integrity_reason=reason,
            tarball=tarball,
            download_claimed_at=None,
            download_claim="",
            next_check_at=next_check_at,
            failed_checks=failed_checks,
        )
        if recorded:
            payload: dict[str, object] = {
                "reason": reason,
                "sha1": tarball.sha1 if tarball else None,
                "sha256": tarball.sha256 if tarball else None,
            }
            if integrity == StagedVersion.Integrity.UNAVAILABLE:
                payload["next_check_at"] = _audit_value(next_check_at)
            audit.record(
                INTEGRITY_ACTIONS[integrity],
                stage=StagedVersion.objects.get(id=staged_version_id),
                payload=payload,
            )
    return bool(recorded)


def record_failed_check(
    staged_version: StagedVersion, claim: str, error: RegistryError, now: datetime
) -> str:
    """A check that got no tarball. A mismatch on record stands (only bytes can overturn it);
    otherwise the tarball is unavailable, and after a transient error the sync pass checks
    again after the next of RECHECK_DELAYS. The verdict that stands."""
    if staged_version.integrity == StagedVersion.Integrity.MISMATCH:
        keep_mismatch(staged_version, claim, f"the check could not be made: {error}")
        return StagedVersion.Integrity.MISMATCH
    if not error.transient:
        reason = f"registry answered {error}"
        record_integrity(staged_version.id, claim, StagedVersion.Integrity.UNAVAILABLE, reason)
        return StagedVersion.Integrity.UNAVAILABLE
    failed = staged_version.failed_checks + 1
    if staged_version.integrity == StagedVersion.Integrity.PENDING:
        reason = f"gave up after {staged_version.download_attempts} attempts: {error}"
    else:
        reason = f"still failing after {failed} checks: {error}"
    next_check_at = now + RECHECK_DELAYS[failed - 1] if failed <= len(RECHECK_DELAYS) else None
    record_integrity(
        staged_version.id,
        claim,
        StagedVersion.Integrity.UNAVAILABLE,
        reason,
        next_check_at=next_check_at,
        failed_checks=failed,
    )
    return StagedVersion.Integrity.UNAVAILABLE


def keep_mismatch(staged_version: StagedVersion, claim: str, reason: str) -> bool:
    """A re-check of a mismatch that got no bytes: the claim and the request end, the verdict
    stays, and the trail says the check was tried."""
    with transaction.atomic():
        released = StagedVersion.objects.filter(id=staged_version.id, download_claim=claim).update(
            download_claimed_at=None, download_claim="", next_check_at=None
        )
        if released:
            audit.record(
                Action.TARBALL_UNAVAILABLE,
                stage=staged_version,
                payload={"reason": reason, "verdict_kept": StagedVersion.Integrity.MISMATCH},
            )
    return bool(released)


def request_recheck(
    staged_version_id: int, actor: audit.Actor, now: datetime | None = None
) -> bool:
    """A person asks for the tarball of a pending stage that is unavailable or a mismatch to be
    downloaded and checked again: the check is due now (the caller queues it; the next sync
    pass would find it anyway) and, if it fails again, the automatic checks start over.
    False if there is nothing to check again, or a check is already due."""
    now = now or timezone.now()
    with transaction.atomic():
        requested = StagedVersion.objects.filter(
            Q(next_check_at__isnull=True) | Q(next_check_at__gt=now),
            id=staged_version_id,
            state=StagedVersion.State.PENDING,
            integrity__in=RECHECKABLE,
        ).update(next_check_at=now, failed_checks=0, download_queued_at=now)  # the caller queues it
        if requested:
            staged_version = StagedVersion.objects.get(id=staged_version_id)
            audit.record(
                Action.TARBALL_RECHECK_REQUESTED,
                actor,
                stage=staged_version,
                payload={
                    "integrity": staged_version.integrity,
                    "reason": staged_version.integrity_reason,
                },
            )
    return bool(requested)


INTEGRITY_ACTIONS = {
    StagedVersion.Integrity.VERIFIED: Action.TARBALL_VERIFIED,
    StagedVersion.Integrity.MISMATCH: Action.TARBALL_MISMATCH,
    StagedVersion.Integrity.UNAVAILABLE: Action.TARBALL_UNAVAILABLE,
}


def _audit_value(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


# What refresh_stage reads of a known row (and its audit entry): only these are loaded.
REFRESHED_FIELDS = (
    "id",
    "stage_id",
    "state",
    "package_name",
    "version",
    "tag",
    "actor",
    "actor_type",
    "access",
    "shasum",
    "staged_at",
)


def _fields_of(stage: Stage) -> dict[str, str | datetime]:
    return {
        "package_name": stage.package_name,
        "version": stage.version,
        "tag": stage.tag,
        "actor": stage.actor,
        "actor_type": stage.actor_type,
        "access": stage.access,
        "shasum": stage.shasum,
        "staged_at": stage.created_at,
    }


def _chunks(items: list[T], size: int = QUERY_CHUNK) -> Iterable[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
