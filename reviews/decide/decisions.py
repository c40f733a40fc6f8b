"""Approve and reject: in the request, as the person, with the second factor they give now.

`decide()` is the one state change. It claims the stage (a conditional UPDATE, so two clicks,
two tabs or two people send one request), sends approve or reject once with the person's own
token, and turns the registry's answer into an `Outcome` in plain words, the local state and
one audit entry. Nothing here retries and nothing goes through a queue: a one-time code is
spent at most once, and lives only in this request's memory.

Which second factor to ask for is the registry's call: the first attempt carries none and asks
for the security-key flow (`npm-auth-type: web`). A registry that opens a web challenge gets
the key path (with a typed code as the alternative it also accepts); one that answers a plain
OTP challenge gets the code form; an account without 2FA is simply done.

A decision the registry did not answer (a timeout, a lost connection) may have been applied:
it is never reported as "nothing changed". The claim is kept, the request looks at the
registry for a few seconds, and the page says Greenroom is checking until `outcomes` knows.

After an approval (the view queues it: this room does not import the tasks) a Celery task
compares the published `dist.shasum` / `dist.integrity` with
the tarball that was reviewed; a difference is a critical, audited alert on the stage page.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import nodesemver
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from reviews.audit import trail as audit
from reviews.audit.trail import Action, Actor
from reviews.decide import npm_tokens, outcomes
from reviews.decide.outcomes import Result
from reviews.mirror import sync
from reviews.mirror.registry import (
    Conflict,
    Forbidden,
    IpNotAllowed,
    NotFound,
    OtpRequired,
    Packument,
    RateLimited,
    RegistryClient,
    RegistryError,
    Reply,
    Unauthorized,
    Unavailable,
    WebAuthRequired,
    sync_client,
)
from reviews.models import (
    BatchItem,
    NotificationEvent,
    Profile,
    SecondFactor,
    StagedVersion,
    UnansweredDecision,
    WebAuthChallenge,
)
from reviews.teams import policy

logger = logging.getLogger(__name__)

Decision = WebAuthChallenge.Decision
State = StagedVersion.State

# A claim older than this belongs to a request that died; a live one ends within the timeout.
DECISION_CLAIM_LEASE = timedelta(minutes=2)
# doneUrl is looked at no more often than this, whatever retry-after says, and no less often.
MIN_POLL_INTERVAL = 1.0
MAX_POLL_INTERVAL = 30.0
# What may go into an npm-otp header: a typed code, or the token a security key handed out.
CODE_RE = re.compile(r"[0-9]{6,8}")
RECOVERY_CODE_RE = re.compile(r"[A-Za-z0-9-]{8,64}")
FACTOR_RE = re.compile(r"[A-Za-z0-9._~+/=-]{6,512}")
PLACEHOLDER_VERSION = "0.0.0-stage"
MAX_URL = 2000


class Factor(StrEnum):
    NONE = "none"  # the first attempt: let the registry say what it wants
    CODE = "code"
    RECOVERY_CODE = "recovery code"
    SECURITY_KEY = "security key"


class Kind(StrEnum):
    DONE = "done"
    CODE_NEEDED = "code_needed"
    KEY_NEEDED = "key_needed"
    WRONG_CODE = "wrong_code"
    WAITING = "waiting"  # the security key has not been used yet
    DECIDED = "decided"  # already decided, here or elsewhere
    BUSY = "busy"  # another request is sending a decision for this stage right now
    UNKNOWN = "unknown"  # the registry did not answer: Greenroom is checking how it ended
    NOT_LINKED = "not_linked"
    RELINK = "relink"  # the linked token is no longer accepted
    REFUSED = "refused"
    FAILED = "failed"
    POLICY = "policy"  # the team policy is not met: nothing was sent


ASKS_FOR_CODE = {Kind.CODE_NEEDED, Kind.WRONG_CODE, Kind.KEY_NEEDED}


@dataclass(frozen=True)
class Outcome:
    """What happened, in words for the person, and what the page should offer next."""

    kind: Kind
    decision: Decision
    message: str
    notice: str = ""  # the registry's npm-notice, shown as its own line (escaped)

    @property
    def asks_for_code(self) -> bool:
        return self.kind in ASKS_FOR_CODE

    @property
    def is_error(self) -> bool:
        return self.kind in {
            Kind.WRONG_CODE,
            Kind.NOT_LINKED,
            Kind.RELINK,
            Kind.REFUSED,
            Kind.FAILED,
            Kind.POLICY,
        }


class DecisionCrashed(Exception):
    """Something other than a registry answer broke the attempt. Raised without its cause, so
    no error report carries the frames (and headers) of the request that was being sent."""


# -- The decision ---------------------------------------------------------------------------------


@dataclass
class Attempt:
    """One approve/reject attempt, and the one audit entry that records how it ended."""

    stage: StagedVersion
    decision: Decision
    actor: Actor
    factor: Factor
    reason: str = ""
    npm_user: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def record(
        self,
        action: Action,
        error: RegistryError | None = None,
        *,
        reply: Reply | None = None,
        **details: Any,
    ) -> None:
        payload: dict[str, Any] = {"decision": str(self.decision), "factor": str(self.factor)}
        if self.reason:
            payload["reason"] = self.reason
        payload.update(self.details, **details)
        answer = error or reply
        audit.record(
            action,
            self.actor,
            stage=self.stage,
            npm_user=self.npm_user,
            registry_status=answer.status if answer else None,
            registry_message=answer.message if answer else "",
            payload=payload,
        )

    def outcome(self, kind: Kind, message: str, notice: str = "") -> Outcome:
        return Outcome(kind, self.decision, message, notice)


@sensitive_variables()
def decide(
    stage: StagedVersion,
    user: User,
    decision: Decision,
    actor: Actor,
    *,
    otp: str | None = None,
    reason: str = "",
    factor: Factor | None = None,
    acknowledged_unread: bool = False,
    batch: int | None = None,
    held_claim: datetime | None = None,
) -> Outcome:
    """Send one approve or reject for `stage` as `user`; the caller has checked their role.

    `otp` is a typed code (or recovery code) or a security key's token; None for the first
    attempt. `acknowledged_unread`: the person confirmed they understand that Greenroom could
    not read the whole staged tarball; approving such a stage is refused without it. `batch`:
    the batch this decision belongs to (its audit entry names it; the batch is announced once,
    so the stage is not announced on its own). `held_claim`: the caller already holds this
    stage's decision claim, taken at that time (a batch run claims its stages together).
    """
    attempt = Attempt(stage, decision, actor, factor or factor_of(otp), reason.strip())
    if batch is not None:
        attempt.details["batch"] = batch
    try:
        linked = npm_tokens.linked(user)
    except npm_tokens.TokenUnreadable as e:
        attempt.record(Action.DECISION_REFUSED, why="linked npm token unreadable")
        return attempt.outcome(Kind.RELINK, str(e))
    attempt.npm_user = linked.npm_user if linked else ""
    if stage.state != State.PENDING:
        return _refused_before_claim(attempt, linked)
    if decision == Decision.APPROVE:
        # The team policy, checked again at the click: nothing goes out if it is not met.
        gate = policy.check_approval(stage, user)
        attempt.details.update(gate.audit)  # the approvals (and findings read) it relied on
        if gate.refusal:
            attempt.record(Action.DECISION_REFUSED, why="team policy", policy=gate.refusal)
            return attempt.outcome(Kind.POLICY, gate.refusal)
    if linked is None or unanswered_decision(stage):
        return _refused_before_claim(attempt, linked)
    unread = stage.unread_tarball() if decision == Decision.APPROVE else ""
    if unread and not acknowledged_unread:
        attempt.record(Action.DECISION_REFUSED, why="unread tarball not acknowledged")
        return attempt.outcome(Kind.REFUSED, unacknowledged_words(unread))
    if unread:
        attempt.details["acknowledged"] = f"{UNREAD_ACKNOWLEDGEMENT}: {unread}"
    if otp is not None and not FACTOR_RE.fullmatch(otp):
        attempt.record(Action.DECISION_FAILED, why="second factor not sendable")
        return attempt.outcome(
            Kind.FAILED, "The second factor could not be sent as it is. Nothing was changed."
        )
    claim = held_claim or claim_decision(stage.pk)
    if claim is None:
        stage.refresh_from_db()
        return _refused_before_claim(attempt, linked, claimed=True)
    before: Outcome | None = None
    try:
        with linked.client(timeout=settings.GREENROOM_DECISION_TIMEOUT) as client:
            # Never spend a code (or ask for one) on a stage this token cannot decide.
            before = confirm_decidable(attempt, client, linked)
            if before is None:
                send = client.approve_stage if decision == Decision.APPROVE else client.reject_stage
                reply = send(stage.stage_id, otp=otp, web=otp is None)
    except RegistryError as error:
        if unanswered_error(error):
            # It may have been applied: keep the claim, never say "nothing changed".
            return await_outcome(attempt, user, error)
        release_decision(stage.pk, claim)
        return _answer(attempt, error, linked, sent_factor=otp is not None)
    except Exception as error:
        release_decision(stage.pk, claim)
        attempt.record(Action.DECISION_FAILED, why=f"unexpected {type(error).__name__}")
        raise DecisionCrashed(
            f"{decision} of {stage} failed unexpectedly: {type(error).__name__}"
        ) from None
    finally:
        linked.mark_used()
    if before is not None:
        release_decision(stage.pk, claim)
        return before
    record_decision(stage, user, attempt, reply)
    remember_factor(user, attempt.factor)
    npm_tokens.clear_code_failures(linked.record)
    return attempt.outcome(Kind.DONE, done_words(attempt), reply.notice)


def done_words(attempt: Attempt) -> str:
    verb = "approved and published" if attempt.decision == Decision.APPROVE else "rejected"
    stage = attempt.stage
    return (
        f"{stage.package_name}@{stage.version} was {verb} by the registry, "
        f"as npm user {attempt.npm_user}."
    )


def factor_of(otp: str | None) -> Factor:
    if otp is None:
        return Factor.NONE
    return Factor.CODE if CODE_RE.fullmatch(otp) else Factor.RECOVERY_CODE


REMEMBERED = {
    Factor.CODE: SecondFactor.CODE,
    Factor.RECOVERY_CODE: SecondFactor.CODE,
    Factor.SECURITY_KEY: SecondFactor.SECURITY_KEY,
}


def remember_factor(user: User, factor: Factor) -> None:
    """Which kind of second factor worked, so the next approve page offers it first."""
    kind = REMEMBERED.get(factor)
    if kind is not None:
        Profile.objects.update_or_create(user=user, defaults={"last_second_factor": kind})


def remembered_factor(user: User) -> SecondFactor | None:
    kind = Profile.objects.filter(user=user).values_list("last_second_factor", flat=True).first()
    return SecondFactor(kind) if kind else None


def _refused_before_claim(
    attempt: Attempt, linked: npm_tokens.Linked | None, *, claimed: bool = False
) -> Outcome:
    """Why nothing is sent: decided already, no token, an unknown outcome, or another request."""
    stage = attempt.stage
    if stage.state != State.PENDING:
        attempt.record(Action.DECISION_REFUSED, why=f"already {stage.state}")
        return attempt.outcome(Kind.DECIDED, already_decided(stage))
    if linked is None:
        attempt.record(Action.DECISION_REFUSED, why="no linked npm token")
        return attempt.outcome(
            Kind.NOT_LINKED,
            "Link your npm token on your settings page first: the registry decides as you.",
        )
    unanswered = unanswered_decision(stage)
    if unanswered is not None:
        attempt.record(Action.DECISION_REFUSED, why="an earlier decision's outcome is unknown")
        return attempt.outcome(Kind.UNKNOWN, checking_words(unanswered))
    assert claimed  # the only other reason
    attempt.record(Action.DECISION_REFUSED, why="another decision in progress")
    return attempt.outcome(
        Kind.BUSY,
        "Someone is sending a decision about this stage right now. Nothing was sent; "
        "look at the stage again in a moment.",
    )


def confirm_decidable(
    attempt: Attempt, client: RegistryClient, linked: npm_tokens.Linked
) -> Outcome | None:
    """A cheap read with the person's token first: is the stage still there, for them?
    None if it is; else why nothing is sent."""
    try:
        client.get_stage(attempt.stage.stage_id)
    except RegistryError as error:
        match error:
            case IpNotAllowed():
                return _ip_refused(attempt, error)
            case NotFound():
                return _not_found(attempt, error)
            case Unauthorized() | Forbidden():
                return _token_refused(attempt, error, linked)
        attempt.record(Action.DECISION_FAILED, error, why="stage could not be read first")
        return attempt.outcome(
            Kind.FAILED,
            f"The registry could not be asked whether this stage is still there "
            f"({_said(error)}). Nothing was sent; try again.",
            error.notice,
        )
    return None


def _answer(
    attempt: Attempt, error: RegistryError, linked: npm_tokens.Linked, *, sent_factor: bool
) -> Outcome:
    """The registry said no: plain words, the audit entry, and local state."""
    match error:
        case WebAuthRequired() if not sent_factor:
            return _key_needed(attempt, error)
        case OtpRequired() if not sent_factor:
            return _code_needed(attempt, error, linked)
        case OtpRequired():
            return _factor_refused(attempt, error, linked)
        case IpNotAllowed():
            return _ip_refused(attempt, error)
        case Unauthorized() | Forbidden():
            return _token_refused(attempt, error, linked)
        case NotFound():
            return _not_found(attempt, error)
        case Conflict():
            return _changed_elsewhere(attempt, error)
        case RateLimited():
            attempt.record(Action.DECISION_FAILED, error, why="rate limited")
            wait = f" in {error.retry_after:.0f} seconds" if error.retry_after else " in a minute"
            return attempt.outcome(
                Kind.FAILED,
                f"The registry is limiting requests. Nothing was changed; try again{wait}.",
                error.notice,
            )
    attempt.record(Action.DECISION_FAILED, error, why="registry error")
    return attempt.outcome(
        Kind.FAILED,
        f"The registry could not do it ({error.status or 'no answer'}: {error.message}). "
        "Nothing was changed; try again.",
        error.notice,
    )


UNREAD_ACKNOWLEDGEMENT = "I understand Greenroom could not read this whole tarball"


def unacknowledged_words(unread: str) -> str:
    return (
        f"Greenroom could not read this whole tarball: {unread} Nothing was sent. To approve it "
        f'anyway, tick "{UNREAD_ACKNOWLEDGEMENT}" and approve again.'
    )


def _key_needed(attempt: Attempt, error: WebAuthRequired) -> Outcome:
    open_challenge(attempt, error)
    attempt.record(Action.DECISION_CHALLENGED, error, offered="security key or code")
    return attempt.outcome(
        Kind.KEY_NEEDED,
        "The registry asks for your second factor: confirm with your security key, or type "
        "a code from your authenticator app (or a recovery code).",
        error.notice,
    )


def _code_needed(attempt: Attempt, error: RegistryError, linked: npm_tokens.Linked) -> Outcome:
    attempt.record(Action.DECISION_CHALLENGED, error, offered="code")
    warning = npm_tokens.lock_out_warning(npm_tokens.recent_code_failures(linked.record))
    return attempt.outcome(
        Kind.CODE_NEEDED,
        _sentences(
            "The registry asks for a one-time code from your authenticator app (or one of "
            "your recovery codes).",
            warning,
        ),
        error.notice,
    )


def _factor_refused(attempt: Attempt, error: RegistryError, linked: npm_tokens.Linked) -> Outcome:
    """A refused code: registries give one answer for a wrong code, a used one and a
    locked-out account, so the words cover all three; the count warns before a lock-out."""
    if attempt.factor == Factor.SECURITY_KEY:
        attempt.record(Action.DECISION_WRONG_CODE, error)
        return attempt.outcome(
            Kind.WRONG_CODE,
            "The registry did not accept the security-key confirmation. Nothing was changed; "
            "start again.",
            error.notice,
        )
    failures = npm_tokens.record_code_failure(linked.record)
    attempt.record(Action.DECISION_WRONG_CODE, error, refused_lately=failures)
    return attempt.outcome(
        Kind.WRONG_CODE,
        _sentences(
            "The registry did not accept that code (wrong, already used, or too many attempts: "
            "wait a few minutes). Nothing was changed; type a new code.",
            npm_tokens.lock_out_warning(failures),
        ),
        error.notice,
    )


def _ip_refused(attempt: Attempt, error: RegistryError) -> Outcome:
    attempt.record(Action.DECISION_REFUSED, error, why="IP not allowed")
    return attempt.outcome(
        Kind.REFUSED,
        "The registry refused your token from the portal's address: the token's IP "
        "allowlist does not include this server. Nothing was changed.",
        error.notice,
    )


def _token_refused(attempt: Attempt, error: RegistryError, linked: npm_tokens.Linked) -> Outcome:
    """401 without a challenge, or 403: registries answer either for a revoked token, and 403
    for a real refusal too. Whoami with the same token tells them apart."""
    valid = _token_still_valid(linked)
    if valid is False:
        attempt.record(Action.DECISION_REFUSED, error, why="token revoked or expired")
        return attempt.outcome(
            Kind.RELINK,
            "The registry no longer accepts your linked npm token (revoked or expired: it "
            "will not even say whose it is). Link a new token on your settings page. Nothing "
            "was changed.",
            error.notice,
        )
    if valid is None:
        attempt.record(Action.DECISION_REFUSED, error, why="token refused, validity unknown")
        return attempt.outcome(
            Kind.REFUSED,
            f"The registry refused your linked npm token ({_said(error)}) and could not say "
            "whether the token is still valid. Nothing was changed.",
            error.notice,
        )
    attempt.record(Action.DECISION_REFUSED, error, why="forbidden")
    return attempt.outcome(
        Kind.REFUSED,
        f"The registry refused npm user {attempt.npm_user} for this package ({_said(error)}). "
        "The token itself is still valid: this is what that npm account may do. Nothing was "
        "changed.",
        error.notice,
    )


def _token_still_valid(linked: npm_tokens.Linked) -> bool | None:
    """Whether the registry still knows the token (whoami); None if it could not say."""
    try:
        with linked.client(timeout=settings.GREENROOM_DECISION_TIMEOUT) as client:
            client.whoami()
    except IpNotAllowed:
        return None
    except (Unauthorized, Forbidden):
        return False
    except RegistryError:
        return None
    return True


def _not_found(attempt: Attempt, error: RegistryError) -> Outcome:
    """404 means "not found for you": the sync token tells a stage this npm account may not
    see from one that is gone."""
    stage = attempt.stage
    state = refresh_from_registry(stage)
    if state == State.PENDING:
        attempt.record(Action.DECISION_REFUSED, error, why="stage not visible to this npm account")
        return attempt.outcome(
            Kind.REFUSED,
            f"Your npm account ({attempt.npm_user}) cannot see or decide {stage.package_name}: "
            f"the registry answered {error.status} to it, though the stage is still staged. "
            "Only a maintainer of the package can approve or reject it. Nothing was changed.",
            error.notice,
        )
    if state is None:
        attempt.record(Action.DECISION_FAILED, error, why="not found, stage unreadable")
        return attempt.outcome(
            Kind.FAILED,
            f"The registry answered {error.status} ({error.message}), and the portal could not "
            "read where the stage stands now. Nothing was changed; look again in a moment.",
            error.notice,
        )
    attempt.record(
        Action.DECISION_REFUSED, error, why="already decided elsewhere", registry_state=str(state)
    )
    now = {
        State.APPROVED: "the registry shows it approved.",
        State.REJECTED: "the registry no longer has it, and its version is not published: it "
        "was rejected or withdrawn.",
    }[state]
    return attempt.outcome(
        Kind.DECIDED, f"This stage was already decided elsewhere: {now}", error.notice
    )


def _changed_elsewhere(attempt: Attempt, error: RegistryError) -> Outcome:
    state = refresh_from_registry(attempt.stage)
    attempt.record(
        Action.DECISION_REFUSED,
        error,
        why="decided or changed elsewhere",
        registry_state=str(state or "unknown"),
    )
    now = {
        State.APPROVED: "The registry shows it approved.",
        State.REJECTED: "The registry no longer has it: it was rejected or withdrawn.",
        State.PENDING: "It is still staged at the registry.",
        None: "The portal could not read where it stands now.",
    }[state]
    return attempt.outcome(
        Kind.DECIDED,
        f"This stage was already decided or changed elsewhere (the registry answered "
        f"{error.status}: {error.message}). {now}",
        error.notice,
    )


def _said(error: RegistryError) -> str:
    return f"{error.status}: {error.message}" if error.status else error.message


def _sentences(*parts: str) -> str:
    return " ".join(part for part in parts if part)


def already_decided(stage: StagedVersion) -> str:
    state = stage.get_state_display().lower()
    if stage.decided_in_portal:
        who = stage.decided_by.get_username() if stage.decided_by else "a former user"
        return f"This stage was already {state} in Greenroom by {who}."
    return f"This stage was already {state} outside Greenroom."


# -- State changes, one function each -------------------------------------------------------------


def claim_decision(stage_pk: int) -> datetime | None:
    """Take the right to send this stage's decision; the claim's timestamp, or None."""
    now = timezone.now()
    claimed = (
        StagedVersion.objects.filter(
            pk=stage_pk, state=State.PENDING, unanswered_decision__isnull=True
        )
        .filter(
            Q(decision_claimed_at__isnull=True)
            | Q(decision_claimed_at__lt=now - DECISION_CLAIM_LEASE)
        )
        .update(decision_claimed_at=now)
    )
    return now if claimed else None


def claim_decisions(stage_pks: list[int]) -> tuple[datetime, set[int]]:
    """`claim_decision()` for many stages in one write: the claim's time and the stages it got."""
    now = timezone.now()
    StagedVersion.objects.filter(
        pk__in=stage_pks, state=State.PENDING, unanswered_decision__isnull=True
    ).filter(
        Q(decision_claimed_at__isnull=True) | Q(decision_claimed_at__lt=now - DECISION_CLAIM_LEASE)
    ).update(decision_claimed_at=now)
    claimed = StagedVersion.objects.filter(pk__in=stage_pks, decision_claimed_at=now)
    return now, set(claimed.values_list("pk", flat=True))


def renew_decisions(stage_pks: set[int], claim: datetime) -> datetime:
    """Keep the claims still held at `claim` (a long batch outlives the lease); the new time."""
    now = timezone.now()
    StagedVersion.objects.filter(pk__in=stage_pks, decision_claimed_at=claim).update(
        decision_claimed_at=now
    )
    return now


def release_decisions(stage_pks: set[int], claim: datetime) -> None:
    """Give back the claims still held at `claim`, but never one whose decision went out
    without an answer (it stays claimed until the registry shows how it ended)."""
    StagedVersion.objects.filter(
        pk__in=stage_pks, decision_claimed_at=claim, unanswered_decision__isnull=True
    ).update(decision_claimed_at=None)


def release_decision(stage_pk: int, claim: datetime) -> None:
    StagedVersion.objects.filter(pk=stage_pk, decision_claimed_at=claim).update(
        decision_claimed_at=None
    )


def record_decision(stage: StagedVersion, user: User, attempt: Attempt, reply: Reply) -> None:
    """The registry said yes: the stage is decided by this person, in the portal.

    Written whatever the row says now: the registry's 201/204 is the fact, even if a sync pass
    saw the stage vanish in the meantime and marked it decided elsewhere.
    """
    approved = attempt.decision == Decision.APPROVE
    state = State.APPROVED if approved else State.REJECTED
    with transaction.atomic():
        StagedVersion.objects.filter(pk=stage.pk).update(
            **outcomes.decided_in_portal(
                state, user, attempt.npm_user, attempt.reason, timezone.now()
            )
        )
        WebAuthChallenge.objects.filter(stage=stage).delete()
        stage.refresh_from_db()
        attempt.record(Action.STAGE_APPROVED if approved else Action.STAGE_REJECTED, reply=reply)
        batch = attempt.details.get("batch")
        if batch is None:
            NotificationEvent.objects.record(NotificationEvent.Kind.DECIDED, stage)
        else:
            # A batch is announced once, as a whole; its item is done in this same commit.
            BatchItem.objects.filter(batch_id=batch, stage=stage).update(
                state=BatchItem.State.DONE, message=done_words(attempt), finished_at=timezone.now()
            )
    logger.info("%s %s %s as npm user %s", user, attempt.decision, stage, attempt.npm_user)


# -- No answer: the outcome is unknown until the registry shows it ------------------------------

# Statuses that mean a gateway gave up waiting for the registry, which may still have done it.
GATEWAY_GAVE_UP = {502, 504}


def unanswered_error(error: RegistryError) -> bool:
    """Whether the decision may have been applied although no answer said so."""
    return isinstance(error, Unavailable) and (
        error.status is None or error.status in GATEWAY_GAVE_UP
    )


def unanswered_decision(stage: StagedVersion) -> UnansweredDecision | None:
    return UnansweredDecision.objects.filter(stage=stage).select_related("stage", "user").first()


def record_unanswered(attempt: Attempt, user: User, error: RegistryError) -> UnansweredDecision:
    """The decision went out and no answer came back: remember it (the claim stays taken)."""
    with transaction.atomic():
        unanswered = UnansweredDecision.objects.create(
            stage=attempt.stage,
            user=user,
            npm_user=attempt.npm_user,
            decision=attempt.decision,
            reason=attempt.reason,
            factor=attempt.factor,
            sent_at=timezone.now(),
        )
        attempt.record(Action.DECISION_OUTCOME_UNKNOWN, error, why="no answer")
    logger.warning("%s of %s got no answer (%s); checking", attempt.decision, attempt.stage, error)
    return unanswered


def await_outcome(attempt: Attempt, user: User, error: RegistryError) -> Outcome:
    """Look at the registry for a few seconds; then say what is known, or that Greenroom is
    still checking (the sync pass goes on looking)."""
    unanswered = record_unanswered(attempt, user, error)
    deadline = time.monotonic() + settings.GREENROOM_DECISION_CHECK_SECONDS
    while True:
        settlement = check_once(unanswered, attempt.actor)
        if settlement.result != Result.UNKNOWN or time.monotonic() >= deadline:
            return settled_outcome(unanswered, settlement, error.notice)
        time.sleep(settings.GREENROOM_DECISION_CHECK_INTERVAL)


def check_once(unanswered: UnansweredDecision, actor: Actor) -> outcomes.Settlement:
    """One look with the sync token, recorded if it tells how the decision ended."""
    timeout = max(
        1.0, min(settings.GREENROOM_DECISION_TIMEOUT, settings.GREENROOM_DECISION_CHECK_SECONDS)
    )
    try:
        with sync_client(timeout=timeout) as client:
            seen = outcomes.look(client, unanswered.stage)
    except Exception as e:  # a missing registry setting, for example: keep checking later
        seen = outcomes.Look(outcomes.Seen.UNREADABLE, error=type(e).__name__)
    return outcomes.settle(unanswered, seen, actor)


def check_unanswered(stage: StagedVersion, actor: Actor) -> Outcome | None:
    """ "Check now": one look at an unanswered decision on `stage`; None if there is none."""
    unanswered = unanswered_decision(stage)
    if unanswered is None:
        return None
    return settled_outcome(unanswered, check_once(unanswered, actor))


def settled_outcome(
    unanswered: UnansweredDecision, settlement: outcomes.Settlement, notice: str = ""
) -> Outcome:
    decision = Decision(unanswered.decision)
    stage = unanswered.stage
    if settlement.result == Result.UNKNOWN:
        return Outcome(Kind.UNKNOWN, decision, checking_words(unanswered), notice)
    if settlement.result == Result.APPLIED:
        verb = "approved and published" if decision == Decision.APPROVE else "rejected"
        return Outcome(
            Kind.DONE,
            decision,
            f"{stage.package_name}@{stage.version} was {verb} by the registry, as npm user "
            f"{unanswered.npm_user}: its answer never came, but the registry now shows it.",
            notice,
        )
    if settlement.state == State.PENDING:
        return Outcome(
            Kind.FAILED,
            decision,
            f"The registry did not {decision} it: the stage is still staged, so that request "
            "changed nothing. You may decide again.",
            notice,
        )
    stage.refresh_from_db()
    return Outcome(
        Kind.DECIDED,
        decision,
        f"The registry did not answer, and now shows this stage {settlement.state} "
        f"elsewhere, not {'approved' if decision == Decision.APPROVE else 'rejected'} by "
        "your request.",
        notice,
    )


def checking_words(unanswered: UnansweredDecision) -> str:
    done = "approved" if unanswered.decision == Decision.APPROVE else "rejected"
    who = unanswered.user.get_username() if unanswered.user else "a former user"
    return (
        f"We did not hear back from the registry; it may have {done}. Greenroom is checking… "
        f"({unanswered.decision} sent by {who} at {unanswered.sent_at:%H:%M:%S} UTC, as npm "
        f"user {unanswered.npm_user}). Approve and reject come back only once the registry "
        "shows how it ended."
    )


def refresh_from_registry(stage: StagedVersion) -> State | None:
    """Ask the registry (as the sync does) where a stage stands, record it with the sync's own
    functions, and return the state; None if the registry could not say."""
    try:
        with sync_client(timeout=settings.GREENROOM_DECISION_TIMEOUT) as client:
            try:
                remote = client.get_stage(stage.stage_id)
            except NotFound:
                packument = _packument_or_none(client, stage.package_name)
                dist = packument.dist(stage.version) if packument else None
                if dist is None:
                    sync.resolve_stage(stage, State.REJECTED)
                else:
                    shasum = dist.get("shasum")
                    sync.resolve_stage(
                        stage,
                        State.APPROVED,
                        published_shasum=shasum if isinstance(shasum, str) else "",
                    )
            else:
                sync.refresh_stage(stage, remote)
    except RegistryError as e:
        logger.warning("could not refresh %s from the registry: %s", stage, e)
        return None
    except Exception:
        logger.exception("could not refresh %s from the registry", stage)
        return None
    stage.refresh_from_db()
    return State(stage.state)


def _packument_or_none(client: RegistryClient, name: str) -> Packument | None:
    try:
        return client.get_packument(name)
    except NotFound:
        return None


# -- The security-key path ------------------------------------------------------------------------


def open_challenge(attempt: Attempt, error: WebAuthRequired) -> WebAuthChallenge | None:
    """Remember the registry's challenge (which stage, who, until when) for the polls."""
    if len(error.auth_url) > MAX_URL or len(error.done_url) > MAX_URL:
        return None
    user = attempt.actor.user
    assert user is not None  # decisions are made by people
    now = timezone.now()
    with transaction.atomic():
        WebAuthChallenge.objects.filter(user=user, stage=attempt.stage).delete()
        return WebAuthChallenge.objects.create(
            user=user,
            stage=attempt.stage,
            decision=attempt.decision,
            reason=attempt.reason,
            acknowledged_unread="acknowledged" in attempt.details,
            auth_url=error.auth_url,
            done_url=error.done_url,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.GREENROOM_WEB_AUTH_TIMEOUT),
            next_poll_at=now,
        )


def pending_challenge(stage: StagedVersion, user: User) -> WebAuthChallenge | None:
    """The person's live security-key challenge for this stage, if any."""
    return WebAuthChallenge.objects.filter(
        stage=stage, user=user, expires_at__gt=timezone.now()
    ).first()


@sensitive_variables()
def poll_security_key(stage: StagedVersion, user: User, actor: Actor) -> Outcome:
    """One look at the person's security-key challenge; once the key was used, the decision
    is re-sent with the token the registry handed out, in this same request."""
    challenge = WebAuthChallenge.objects.filter(stage=stage, user=user).first()
    decision = Decision(challenge.decision) if challenge else Decision.APPROVE
    attempt = Attempt(
        stage, decision, actor, Factor.SECURITY_KEY, challenge.reason if challenge else ""
    )
    if challenge is None:
        if stage.state != State.PENDING:
            return attempt.outcome(Kind.DECIDED, already_decided(stage))
        return attempt.outcome(
            Kind.FAILED,
            "No security-key confirmation is waiting for this stage. Nothing was changed; "
            "start again.",
        )
    now = timezone.now()
    if stage.state != State.PENDING:
        WebAuthChallenge.objects.filter(pk=challenge.pk).delete()
        return attempt.outcome(Kind.DECIDED, already_decided(stage))
    if now >= challenge.expires_at:
        limit = _minutes(settings.GREENROOM_WEB_AUTH_TIMEOUT)
        if WebAuthChallenge.objects.filter(pk=challenge.pk).delete()[0]:
            attempt.record(Action.DECISION_FAILED, why="security key not used in time")
        return attempt.outcome(
            Kind.FAILED,
            f"The security key was not used within {limit}. Nothing was changed; start again.",
        )
    # Claim this look: one request at a time polls doneUrl, and never before retry-after.
    claimed = WebAuthChallenge.objects.filter(pk=challenge.pk, next_poll_at__lte=now).update(
        next_poll_at=now + timedelta(seconds=MAX_POLL_INTERVAL)
    )
    if not claimed:
        return attempt.outcome(Kind.WAITING, waiting_words(challenge))
    try:
        linked = npm_tokens.linked(user)
    except npm_tokens.TokenUnreadable as e:
        WebAuthChallenge.objects.filter(pk=challenge.pk).delete()
        return attempt.outcome(Kind.RELINK, str(e))
    if linked is None:
        WebAuthChallenge.objects.filter(pk=challenge.pk).delete()
        return attempt.outcome(Kind.NOT_LINKED, "Link your npm token on your settings page first.")
    try:
        with linked.client(timeout=settings.GREENROOM_DECISION_TIMEOUT) as client:
            result = client.poll_web_auth_done(challenge.done_url)
    except RegistryError as error:
        if error.transient:
            _poll_again(challenge, getattr(error, "retry_after", None) or 2 * MIN_POLL_INTERVAL)
            return attempt.outcome(Kind.WAITING, waiting_words(challenge))
        if WebAuthChallenge.objects.filter(pk=challenge.pk).delete()[0]:
            attempt.npm_user = linked.npm_user
            attempt.record(Action.DECISION_FAILED, error, why="security-key confirmation ended")
        return attempt.outcome(
            Kind.FAILED,
            f"The registry ended the security-key confirmation ({error.status}: "
            f"{error.message}). Nothing was changed; start again.",
            error.notice,
        )
    if result.token is None:
        _poll_again(challenge, result.retry_after)
        return attempt.outcome(Kind.WAITING, waiting_words(challenge))
    # Done at the registry: whoever deletes the challenge re-sends the decision, once.
    if not WebAuthChallenge.objects.filter(pk=challenge.pk).delete()[0]:
        return attempt.outcome(Kind.BUSY, "This confirmation is being used by another request.")
    return decide(
        stage,
        user,
        decision,
        actor,
        otp=result.token,
        reason=challenge.reason,
        factor=Factor.SECURITY_KEY,
        acknowledged_unread=challenge.acknowledged_unread,
    )


def keep_challenge_note(stage: StagedVersion, user: User, note: str) -> None:
    """The note as typed now ("Check now" and the page's polls carry it): the decision the key
    confirms is sent with it, and the form shows it again."""
    WebAuthChallenge.objects.filter(stage=stage, user=user).update(reason=note.strip()[:2000])


def cancel_security_key(stage: StagedVersion, user: User, actor: Actor) -> bool:
    with transaction.atomic():
        challenge = WebAuthChallenge.objects.filter(stage=stage, user=user).first()
        if challenge is None or not WebAuthChallenge.objects.filter(pk=challenge.pk).delete()[0]:
            return False
        record = npm_tokens.linked_record(user)
        Attempt(
            stage,
            Decision(challenge.decision),
            actor,
            Factor.SECURITY_KEY,
            challenge.reason,
            record.npm_user if record else "",
        ).record(Action.DECISION_CANCELLED)
    return True


def _poll_again(challenge: WebAuthChallenge, retry_after: float) -> None:
    wait = min(max(retry_after, MIN_POLL_INTERVAL), MAX_POLL_INTERVAL)
    WebAuthChallenge.objects.filter(pk=challenge.pk).update(
        next_poll_at=timezone.now() + timedelta(seconds=wait)
    )


def waiting_words(challenge: WebAuthChallenge) -> str:
    return (
        "Waiting for your security key: open the registry's page, use your key there, and come "
        f"back. This request ends at {challenge.expires_at:%H:%M:%S} UTC."
    )


def _minutes(seconds: int) -> str:
    if seconds % 60:
        return f"{seconds} seconds"
    return "1 minute" if seconds == 60 else f"{seconds // 60} minutes"


# -- What approving will do -----------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    """What approving does to the stage's dist-tag, and what deserves a warning first."""

    tag: str
    current: str | None  # what the tag points to now (None: the tag does not exist yet)
    after: str
    warnings: list[str]
    loud: list[str]  # warnings that must not be missed
    problem: str = ""  # the packument could not be read

    @property
    def current_is_placeholder(self) -> bool:
        return self.current == PLACEHOLDER_VERSION


def preview_approval(stage: StagedVersion) -> Preview:
    """Read the packument's dist-tags (with the sync's read token) and compare, as npm does."""
    warnings: list[str] = []
    loud: list[str] = []
    if stage.integrity == StagedVersion.Integrity.MISMATCH:
        loud.append(
            "The staged tarball does not match its stage: "
            f"{stage.integrity_reason or 'see the integrity section'}."
        )
    elif stage.integrity != StagedVersion.Integrity.VERIFIED:
        warnings.append(
            f"The staged tarball has not been verified ({stage.get_integrity_display().lower()})."
        )
    if stage.tag == "latest" and _is_prerelease(stage.version):
        loud.append(
            f"{stage.version} is a prerelease, and approving makes it the latest version: "
            "everyone who installs the package without naming a version gets it."
        )
    try:
        with sync_client(timeout=settings.GREENROOM_DECISION_TIMEOUT) as client:
            packument = _packument_or_none(client, stage.package_name)
    except RegistryError as e:
        problem = f"The current dist-tags could not be read ({e}); the tag change is unknown."
        return Preview(stage.tag, None, stage.version, warnings, loud, problem)
    except Exception as e:  # a missing registry setting, for example
        problem = f"The current dist-tags could not be read ({type(e).__name__})."
        return Preview(stage.tag, None, stage.version, warnings, loud, problem)
    current = packument.dist_tags.get(stage.tag) if packument and stage.tag else None
    if packument and stage.version in packument.versions:
        loud.append(
            f"{stage.version} is already published: the registry will refuse this approval."
        )
    if current and current != PLACEHOLDER_VERSION and _lower(stage.version, current):
        loud.append(
            f"The {stage.tag} tag now points to {current}, a higher version: approving moves "
            f"it back to {stage.version}."
        )
    return Preview(stage.tag, current, stage.version, warnings, loud)


def _is_prerelease(version: str) -> bool:
    parsed = nodesemver.parse(version, False)
    return bool(parsed is not None and parsed.prerelease)


def _lower(version: str, than: str) -> bool:
    if nodesemver.valid(version, False) is None or nodesemver.valid(than, False) is None:
        return False
    return bool(nodesemver.lt(version, than, False))


# -- After an approval: is what was published what was reviewed? ---------------------------------


class DigestVerdict(StrEnum):
    MATCH = "match"
    MISMATCH = "mismatch"
    NOT_PUBLISHED = "not published"  # not in the packument (yet)
    SKIPPED = "skipped"  # not approved, or checked already


DIGEST_CHECK_ATTEMPTS = 5
DIGEST_RETRY_BACKOFF = 5.0
DIGEST_RETRY_CAP = 300.0


def check_published_digest(
    staged_version_id: int, client: RegistryClient | None = None
) -> DigestVerdict:
    """Compare the published version's dist.shasum / dist.integrity with the reviewed tarball
    and record the verdict once; a difference is a critical, audited alert."""
    stage = StagedVersion.objects.select_related("tarball").filter(pk=staged_version_id).first()
    if stage is None or stage.state != State.APPROVED or stage.published_checked_at is not None:
        return DigestVerdict.SKIPPED
    client = client or sync_client()
    packument = _packument_or_none(client, stage.package_name)
    dist = packument.dist(stage.version) if packument else None
    if dist is None:
        return DigestVerdict.NOT_PUBLISHED
    published_shasum = str(dist.get("shasum") or "").lower()
    published_integrity = str(dist.get("integrity") or "")
    reviewed_sha1 = stage.tarball.sha1 if stage.tarball else stage.shasum
    reviewed_integrity = stage.tarball.integrity if stage.tarball else ""
    shasum_matches = published_shasum == reviewed_sha1
    integrity_matches: bool | None = None
    if reviewed_integrity and published_integrity:
        # An SRI string may list several digests; the reviewed sha512 must be among them.
        integrity_matches = reviewed_integrity in published_integrity.split()
    verdict = (
        DigestVerdict.MATCH
        if shasum_matches and integrity_matches is not False
        else DigestVerdict.MISMATCH
    )
    with transaction.atomic():
        recorded = StagedVersion.objects.filter(
            pk=stage.pk, published_checked_at__isnull=True
        ).update(
            published_shasum=published_shasum[:40],
            published_shasum_matches=shasum_matches,
            published_integrity=published_integrity[:200],
            published_integrity_matches=integrity_matches,
            published_checked_at=timezone.now(),
        )
        if not recorded:
            return DigestVerdict.SKIPPED
        details = {
            "verdict": str(verdict),
            "reviewed_sha1": reviewed_sha1,
            "published_shasum": published_shasum[:40],
            "reviewed_integrity": reviewed_integrity,
            "published_integrity": published_integrity[:200],
            "reviewed_tarball_downloaded": stage.tarball is not None,
        }
        if verdict == DigestVerdict.MISMATCH:
            audit.record(Action.PUBLISHED_DIGEST_MISMATCH, stage=stage, payload=details)
        else:
            audit.record(Action.PUBLISHED_DIGEST_CHECKED, stage=stage, payload=details)
    if verdict == DigestVerdict.MISMATCH:
        logger.critical(
            "CRITICAL: %s was published with shasum %s / integrity %s, but the reviewed tarball "
            "has %s / %s",
            stage,
            published_shasum,
            published_integrity,
            reviewed_sha1,
            reviewed_integrity,
        )
    return verdict


def record_digest_unavailable(staged_version_id: int, reason: str) -> None:
    """The check gave up: say so on the stage and in the trail, rather than stay silent."""
    stage = StagedVersion.objects.filter(pk=staged_version_id).first()
    if stage is None:
        return
    with transaction.atomic():
        recorded = StagedVersion.objects.filter(
            pk=stage.pk, published_checked_at__isnull=True
        ).update(published_checked_at=timezone.now())
        if recorded:
            audit.record(
                Action.PUBLISHED_DIGEST_CHECKED,
                stage=stage,
                payload={"verdict": "unavailable", "why": reason[:500]},
            )
    logger.warning("published digest of %s could not be checked: %s", stage, reason)
