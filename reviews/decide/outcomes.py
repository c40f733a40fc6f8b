"""Decisions the registry did not answer: look at the registry until their outcome is known.

An approve or reject that timed out (or lost its connection, or got a gateway's 502 or 504) may
have been applied all the same. `decisions.decide()` records an `UnansweredDecision` and keeps
the stage's decision claim, so no second decision is sent; then the request itself (for a few
seconds), a "Check now" and every sync pass (`reviews.tasks` runs `settle_unanswered()` before
the listing) `look()` at the stage (`GET /-/stage/{id}` with the sync token) and the packument
(is the version published?), and `settle()` what they saw.

How it ended is known when the stage is gone: published means approved, not published means
rejected (or withdrawn). A stage still staged GREENROOM_DECISION_SETTLE_SECONDS after the request
was sent was not changed by it: the claim is released and the person may decide again. Until
then nothing is concluded, whatever the registry is slow to do; an approve whose stage is gone
but whose version is not in the packument yet waits for that time too (packuments are cached).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from reviews.audit import trail as audit
from reviews.audit.trail import SYSTEM, Action, Actor
from reviews.mirror import sync
from reviews.mirror.registry import NotFound, RegistryClient, RegistryError, sync_client
from reviews.models import (
    NotificationEvent,
    StagedVersion,
    UnansweredDecision,
    WebAuthChallenge,
)

logger = logging.getLogger(__name__)

State = StagedVersion.State
APPROVE = WebAuthChallenge.Decision.APPROVE


class Seen(StrEnum):
    """What one look at the registry saw."""

    STAGED = "still staged"
    PUBLISHED = "published"  # gone from the stages, and the version is in the packument
    GONE = "gone"  # gone, and not published: rejected or withdrawn
    UNREADABLE = "unreadable"


class Result(StrEnum):
    APPLIED = "applied"  # the registry did what was asked
    NOT_APPLIED = "not applied"  # it did not (still staged, or decided the other way elsewhere)
    UNKNOWN = "unknown"  # not known yet: keep looking


@dataclass(frozen=True)
class Look:
    seen: Seen
    published_shasum: str = ""
    error: str = ""


@dataclass(frozen=True)
class Settlement:
    stage_pk: int
    result: Result
    state: State  # the stage's state once recorded
    seen: Seen
    error: str = ""

    @property
    def approved_here(self) -> bool:
        """Approved by the request that got no answer: its published digest is to be checked."""
        return self.result == Result.APPLIED and self.state == State.APPROVED


def look(client: RegistryClient, stage: StagedVersion) -> Look:
    """One look: is the stage still staged, and if not, is its version published?"""
    try:
        client.get_stage(stage.stage_id)
    except NotFound:
        pass
    except RegistryError as e:
        return Look(Seen.UNREADABLE, error=str(e))
    else:
        return Look(Seen.STAGED)
    try:
        packument = client.get_packument(stage.package_name)
    except NotFound:
        return Look(Seen.GONE)
    except RegistryError as e:
        return Look(Seen.UNREADABLE, error=str(e))
    dist = packument.dist(stage.version)
    if dist is None:
        return Look(Seen.GONE)
    shasum = dist.get("shasum")
    return Look(Seen.PUBLISHED, published_shasum=shasum if isinstance(shasum, str) else "")


def decided_in_portal(
    state: State, user: User | None, npm_user: str, reason: str, decided_at: datetime
) -> dict[str, object]:
    """The fields of a stage decided in the portal by `user`, its decision claim released: one
    list for a decision answered at once and for one confirmed after no answer."""
    return {
        "state": state,
        "decided_by": user,
        "decided_npm_user": npm_user,
        "decided_at": decided_at,
        "decision_reason": reason,
        "decided_in_portal": True,
        "decision_claimed_at": None,
        "resolved_at": timezone.now(),
        "resolved_elsewhere": False,
    }


def settle(
    unanswered: UnansweredDecision, seen: Look, actor: Actor, *, now: datetime | None = None
) -> Settlement:
    """Record what `seen` says about an unanswered decision, once: the stage's state, the
    audit entry, the notification and the released claim, in one transaction."""
    now = now or timezone.now()
    stage = unanswered.stage
    result = _result_of(unanswered, seen.seen, now)
    if result == Result.UNKNOWN:
        UnansweredDecision.objects.filter(pk=unanswered.pk).update(checked_at=now)
        return Settlement(stage.pk, result, State(stage.state), seen.seen, seen.error)
    with transaction.atomic():
        if not UnansweredDecision.objects.filter(pk=unanswered.pk).delete()[0]:
            stage.refresh_from_db()  # another look settled it first
            return Settlement(
                stage.pk, _result_from_state(unanswered, stage), State(stage.state), seen.seen
            )
        _record_state(unanswered, seen, result)
        stage.refresh_from_db()
        audit.record(
            Action.DECISION_OUTCOME_KNOWN,
            actor,
            stage=stage,
            npm_user=unanswered.npm_user,
            payload={
                "decision": unanswered.decision,
                "outcome": str(result),
                "registry_shows": str(seen.seen),
                "sent_by": unanswered.user.get_username() if unanswered.user else "",
                "seen_by": "sync" if actor == SYSTEM else "portal",
            },
        )
    logger.info("unanswered %s of %s: %s", unanswered.decision, stage, result)
    return Settlement(stage.pk, result, State(stage.state), seen.seen)


def settle_unanswered(client: RegistryClient | None = None) -> list[Settlement]:
    """The sync pass's share: one look at every unanswered decision, and what it settled."""
    if client is None:
        if not UnansweredDecision.objects.exists():
            return []
        with sync_client() as own_client:
            return settle_unanswered(own_client)
    settled = []
    for unanswered in UnansweredDecision.objects.select_related("stage", "user").order_by("id"):
        settlement = settle(unanswered, look(client, unanswered.stage), SYSTEM)
        if settlement.result != Result.UNKNOWN:
            settled.append(settlement)
        elif settlement.error:
            logger.warning("unanswered decision on %s: %s", unanswered.stage, settlement.error)
    return settled


def _result_of(unanswered: UnansweredDecision, seen: Seen, now: datetime) -> Result:
    settle_after = timedelta(seconds=settings.GREENROOM_DECISION_SETTLE_SECONDS)
    waited_enough = unanswered.sent_at <= now - settle_after
    approving = unanswered.decision == APPROVE
    if seen == Seen.UNREADABLE:
        return Result.UNKNOWN
    if seen == Seen.STAGED or (seen == Seen.GONE and approving):
        # Gone but not published right after an approve is more likely a packument that lags
        # behind (a cache) than a rejection elsewhere: only time tells them apart.
        return Result.NOT_APPLIED if waited_enough else Result.UNKNOWN
    wanted = Seen.PUBLISHED if approving else Seen.GONE
    return Result.APPLIED if seen == wanted else Result.NOT_APPLIED


def _result_from_state(unanswered: UnansweredDecision, stage: StagedVersion) -> Result:
    if stage.state == State.PENDING:
        return Result.NOT_APPLIED
    applied = stage.decided_in_portal and stage.decided_by_id == unanswered.user_id
    return Result.APPLIED if applied else Result.NOT_APPLIED


def _record_state(unanswered: UnansweredDecision, seen: Look, result: Result) -> None:
    stage = unanswered.stage
    if result == Result.APPLIED:
        state = State.APPROVED if unanswered.decision == APPROVE else State.REJECTED
        StagedVersion.objects.filter(pk=stage.pk).update(
            **decided_in_portal(
                state, unanswered.user, unanswered.npm_user, unanswered.reason, unanswered.sent_at
            )
        )
        WebAuthChallenge.objects.filter(stage=stage).delete()
        NotificationEvent.objects.record(NotificationEvent.Kind.DECIDED, stage)
        return
    StagedVersion.objects.filter(pk=stage.pk).update(decision_claimed_at=None)
    if seen.seen == Seen.PUBLISHED:
        sync.resolve_stage(stage, State.APPROVED, published_shasum=seen.published_shasum)
    elif seen.seen == Seen.GONE:
        sync.resolve_stage(stage, State.REJECTED)
