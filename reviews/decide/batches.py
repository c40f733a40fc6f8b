"""Batches: many stages approved (or rejected) in one sitting, with one typed code.

A batch is a row with one item per selected stage, in dependency order (`releases`). Stages
this person may not approve are items too, left out with the reason. `run()` sends the
decisions one by one, in order, in the person's own web request, through `decisions.decide()`:
the same per-stage claim, team-policy gate, audit entry and answers as a single decision. The
code is a parameter of that request and nothing else: not a row, a task argument, a cache
entry or a log line; it is re-sent for each stage until the registry refuses it, and then the
batch waits for a fresh one (and its page says so).

Each item ends done, failed (with the registry's words), skipped (decided elsewhere meanwhile)
or held back (a stage it depends on did not get published). A failure never stops the items
that do not depend on it. The batch's state is in the database after every item, so a page
polling it shows progress, and a reload (or another browser) continues where it stood.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from reviews.audit import trail as audit
from reviews.audit.trail import Action, Actor
from reviews.decide import decisions, npm_tokens, releases
from reviews.decide.decisions import Decision, Kind, Outcome
from reviews.models import Batch, BatchItem, Membership, NotificationEvent, Role, StagedVersion
from reviews.teams import policy
from reviews.teams.access import is_staff, pattern_matches

logger = logging.getLogger(__name__)

ItemState = BatchItem.State
BatchState = Batch.State
MAX_STAGES = 500
# A run whose request died leaves its claim; one that lives renews it after every item.
RUN_LEASE = timedelta(minutes=2)
# The registry refused the code (or asked for one): wait for a fresh code, send nothing more.
CODE_REFUSED = {Kind.WRONG_CODE, Kind.CODE_NEEDED, Kind.KEY_NEEDED}
# Nothing can be sent for anyone's stage: stop, and say why.
STOPS_THE_BATCH = {Kind.NOT_LINKED, Kind.RELINK}
OPEN_STATES = {BatchState.READY, BatchState.RUNNING, BatchState.NEEDS_CODE}


# -- Making a batch -------------------------------------------------------------------------------


def left_out_reason(stage: StagedVersion, user: User, npm_user: str | None) -> str:
    """Why this person may not approve this stage in a batch ("" if they may)."""
    if stage.state != StagedVersion.State.PENDING:
        return decisions.already_decided(stage)
    check = policy.for_person(stage, user, npm_user)
    if check.reasons:
        return " ".join(check.reasons)
    findings = check.state.findings
    if check.state.policy.acknowledge_findings and not policy.acknowledged(stage, user, findings):
        return (
            f"It has {findings} new critical/high findings to acknowledge: approve it on its "
            "own page."
        )
    unread = stage.unread_tarball()
    if unread:
        return f"Greenroom could not read its whole tarball ({unread}): approve it on its own page."
    return ""


def create(stages: Iterable[StagedVersion], user: User, actor: Actor, title: str = "") -> Batch:
    """A batch of these (visible) stages, in dependency order; the caller checked visibility."""
    chosen = list({stage.pk: stage for stage in stages}.values())[:MAX_STAGES]
    order = releases.dependency_order(chosen)
    linked = npm_tokens.linked_record(user)
    npm_user = linked.npm_user if linked else None
    position = {stage.pk: index for index, stage in enumerate(order.stages)}
    with transaction.atomic():
        batch = Batch.objects.create(created_by=user, title=title[:300], cycles=order.cycles)
        items = []
        for stage in order.stages:
            reason = left_out_reason(stage, user, npm_user)
            items.append(
                BatchItem(
                    batch=batch,
                    stage=stage,
                    position=position[stage.pk],
                    after=[position[pk] for pk in order.after.get(stage.pk, [])],
                    state=ItemState.EXCLUDED if reason else ItemState.QUEUED,
                    message=reason,
                )
            )
        BatchItem.objects.bulk_create(items)
        audit.record(
            Action.BATCH_CREATED,
            actor,
            target=f"batch #{batch.pk}",
            payload={
                "batch": batch.pk,
                "stages": [str(stage) for stage in order.stages],
                "left_out": [str(i.stage) for i in items if i.state == ItemState.EXCLUDED],
                "cycles": order.cycles,
            },
        )
    return batch


def may_see(batch: Batch, user: User) -> bool:
    """A batch is its maker's; staff may look at any."""
    return batch.created_by_id == user.pk or user.is_staff


# -- Running it -----------------------------------------------------------------------------------


@dataclass
class Run:
    """What one run did: the stages it approved (their digests are to be checked)."""

    approved: list[int] = field(default_factory=list)
    sent: int = 0  # decisions the registry accepted with this run's code
    busy: bool = False  # another request is running this batch


def claim_run(batch_pk: int) -> bool:
    now = timezone.now()
    return bool(
        Batch.objects.filter(pk=batch_pk, state__in=OPEN_STATES)
        .filter(Q(running_since__isnull=True) | Q(running_since__lt=now - RUN_LEASE))
        .update(running_since=now, state=BatchState.RUNNING, message="")
    )


class RunClaim:
    """The run's claims: on its batch, and on the decisions of its queued stages, taken in one
    write (the per-stage claim single decisions use, so no other request or batch sends them
    meanwhile). Renewed once a quarter of the lease is gone, not after every item; what is
    left is released at the end."""

    def __init__(self, batch_pk: int, stage_pks: list[int]) -> None:
        self.batch_pk = batch_pk
        self.at, self.stages = decisions.claim_decisions(stage_pks)
        self.renewed = time.monotonic()

    def of(self, stage: StagedVersion) -> datetime | None:
        """The claim this run holds on the stage (None: it could not take it)."""
        return self.at if stage.pk in self.stages else None

    def renew(self) -> None:
        if time.monotonic() - self.renewed < RUN_LEASE.total_seconds() / 4:
            return
        Batch.objects.filter(pk=self.batch_pk).update(running_since=timezone.now())
        self.at = decisions.renew_decisions(self.stages, self.at)
        self.renewed = time.monotonic()

    def release(self) -> None:
        """Decided stages hold no claim any more; the rest (not sent, refused) are free again."""
        decisions.release_decisions(self.stages, self.at)


class Roles:
    """The person's role per package, their memberships read once for the whole run."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.memberships = list(
            Membership.objects.filter(user_id=user.pk).prefetch_related("team__patterns")
        )

    def may_decide(self, stage: StagedVersion) -> bool:
        if is_staff(self.user):
            return True
        roles = [
            Role(membership.role)
            for membership in self.memberships
            if any(
                pattern_matches(p.pattern, stage.package_name)
                for p in membership.team.patterns.all()
            )
        ]
        return max(roles, default=Role.VIEWER) >= Role.APPROVER


@sensitive_variables("code")
def run(
    batch: Batch,
    user: User,
    code: str,
    actor: Actor,
    decision: Decision = Decision.APPROVE,
    reason: str = "",
) -> Run:
    """Send the batch's queued items in order with `code`, until done or the code is refused."""
    result = Run()
    if not claim_run(batch.pk):
        result.busy = True
        return result
    stopped: Outcome | None = None
    items = {i.position: i for i in batch.items.select_related("stage", "stage__tarball")}
    queued = [i.stage.pk for i in items.values() if i.state == ItemState.QUEUED]
    claim, roles = RunClaim(batch.pk, queued), Roles(user)
    try:
        for item in sorted(items.values(), key=lambda i: i.position):
            if item.state != ItemState.QUEUED:
                continue
            if not roles.may_decide(item.stage):  # the role may have gone since the batch began
                _leave_out(item, batch, decision, actor)
                continue
            blocker = _blocker(item, items) if decision == Decision.APPROVE else None
            if blocker is not None:
                _hold(item, blocker, batch, decision, actor)
                continue
            outcome = decisions.decide(
                item.stage,
                user,
                decision,
                actor,
                otp=code,
                reason=reason,
                batch=batch.pk,
                held_claim=claim.of(item.stage),
            )
            if outcome.kind in CODE_REFUSED or outcome.kind in STOPS_THE_BATCH:
                stopped = outcome
                break
            _settle(item, outcome)
            if outcome.kind == Kind.DONE:
                result.sent += 1
            if item.state == ItemState.DONE and decision == Decision.APPROVE:
                result.approved.append(item.stage.pk)
            claim.renew()
    finally:
        claim.release()
        _end_run(batch, stopped, decision, result.sent)
    return result


def _blocker(item: BatchItem, items: dict[int, BatchItem]) -> BatchItem | None:
    """The first item this one depends on that was not published (None: go ahead)."""
    for position in item.after:
        dependency = items.get(position)
        if dependency is None or dependency.state == ItemState.DONE:
            continue
        if dependency.state == ItemState.SKIPPED:
            dependency.stage.refresh_from_db(fields=["state"])
            if dependency.stage.state == StagedVersion.State.APPROVED:
                continue  # approved elsewhere: published all the same
        return dependency
    return None


def _leave_out(item: BatchItem, batch: Batch, decision: Decision, actor: Actor) -> None:
    message = f"Deciding needs the approver role in a team that owns {item.stage.package_name}."
    with transaction.atomic():
        _finish_item(item, ItemState.EXCLUDED, message)
        _refused(item, batch, decision, actor, why="no longer an approver")


def _refused(
    item: BatchItem, batch: Batch, decision: Decision, actor: Actor, **details: str
) -> None:
    """The audit entry of a stage the run did not send (held back, or left out)."""
    linked = npm_tokens.linked_record(actor.user) if actor.user else None
    audit.record(
        Action.DECISION_REFUSED,
        actor,
        stage=item.stage,
        npm_user=linked.npm_user if linked else "",
        payload={"decision": str(decision), "batch": batch.pk, **details},
    )


def _hold(
    item: BatchItem, blocker: BatchItem, batch: Batch, decision: Decision, actor: Actor
) -> None:
    why = {
        ItemState.FAILED: "failed",
        ItemState.HELD: "was held back",
        ItemState.EXCLUDED: "was left out",
        ItemState.SKIPPED: "was not published (decided elsewhere)",
        ItemState.QUEUED: "was not sent yet",
    }[ItemState(blocker.state)]
    message = f"Held back: it depends on {blocker.stage}, which {why}. Nothing was sent."
    with transaction.atomic():
        _finish_item(item, ItemState.HELD, message)
        _refused(
            item,
            batch,
            decision,
            actor,
            why="held back: a dependency was not published",
            depends_on=str(blocker.stage),
        )


def _settle(item: BatchItem, outcome: Outcome) -> None:
    if outcome.kind == Kind.DONE and not outcome.notice:
        item.state = ItemState.DONE  # written with the decision itself (decisions.py)
        return
    if outcome.kind == Kind.DONE:
        state = ItemState.DONE
    elif outcome.kind == Kind.DECIDED:
        state = ItemState.SKIPPED
    else:
        state = ItemState.FAILED
    words = outcome.message
    if outcome.notice:
        words = f"{words} The registry says: {outcome.notice}"
    _finish_item(item, state, words)


def _finish_item(item: BatchItem, state: ItemState, message: str) -> None:
    item.state = state
    item.message = message
    item.finished_at = timezone.now()
    item.save(update_fields=["state", "message", "finished_at"])


def _end_run(batch: Batch, stopped: Outcome | None, decision: Decision, sent: int) -> None:
    """Release the run claim: finished, waiting for a code, or ready to go on."""
    queued = batch.items.filter(state=ItemState.QUEUED).exists()
    fields: dict[str, object] = {"running_since": None}
    if stopped is not None and stopped.kind in CODE_REFUSED:
        fields.update(state=BatchState.NEEDS_CODE, message=_code_words(stopped, sent))
    elif stopped is not None:
        fields.update(state=BatchState.READY, message=stopped.message)
    elif queued:
        fields.update(state=BatchState.READY)
    else:
        final = BatchState.FINISHED if decision == Decision.APPROVE else BatchState.REJECTED
        fields.update(state=final, finished_at=timezone.now())
    with transaction.atomic():
        Batch.objects.filter(pk=batch.pk).update(**fields)
        batch.refresh_from_db()
        if batch.state in {BatchState.FINISHED, BatchState.REJECTED}:
            _announce(batch, decision)


def _code_words(outcome: Outcome, sent: int) -> str:
    if outcome.kind == Kind.WRONG_CODE and sent:
        return (
            f"The registry took this code for {sent} stage{'' if sent == 1 else 's'}, then "
            "stopped accepting it (a code is re-sent for each stage until the registry refuses "
            "it). Type a fresh code to go on."
        )
    return outcome.message


def _announce(batch: Batch, decision: Decision) -> None:
    """One notification for the whole batch, and one audit entry saying how it ended."""
    items = list(batch.items.select_related("stage"))
    counts = {state.value: 0 for state in ItemState}
    for item in items:
        counts[item.state] += 1
    audit.record(
        Action.BATCH_FINISHED,
        Actor(user=batch.created_by),
        target=f"batch #{batch.pk}",
        payload={"batch": batch.pk, "decision": str(decision), "counts": counts},
    )
    decided = [item.stage for item in items if item.state == ItemState.DONE]
    if decided:
        NotificationEvent.objects.record(
            NotificationEvent.Kind.BATCH_DECIDED, decided[0], number=batch.pk
        )


# -- What the page shows --------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemView:
    item: BatchItem
    risk: str
    review: str  # the review state against the team policy, in words
    tag_move: str  # the dist-tag move approving makes
    depends_on: list[str]

    @property
    def shown_state(self) -> str:
        return self.item.get_state_display()


def item_views(batch: Batch, *, details: bool = True, with_tags: bool = False) -> list[ItemView]:
    """Each item for the page; `details`: its risk and review state too (the live progress
    polls without them), `with_tags`: the dist-tag move too (one packument read each)."""
    items = list(batch.items.select_related("stage", "stage__review_baseline"))
    by_position = {item.position: item for item in items}
    views = []
    for item in items:
        stage = item.stage
        baseline = getattr(stage, "review_baseline", None)
        risk = (baseline.risk or "none") if baseline is not None else "not analysed yet"
        views.append(
            ItemView(
                item,
                risk,
                review_words(stage) if details else "",
                tag_move(stage) if with_tags else "",
                [str(by_position[p].stage) for p in item.after if p in by_position],
            )
        )
    return views


def review_words(stage: StagedVersion) -> str:
    state = policy.approval_state(stage)
    missing = state.missing()
    approvals = f"{len(state.approvals)} approving review{'' if len(state.approvals) == 1 else 's'}"
    if not state.policy.required_approvals:
        return f"{approvals}; the team policy asks for none"
    if missing:
        return f"{approvals}; needs {'; '.join(missing)}"
    return f"{approvals} of {state.policy.required_approvals} required: met"


def tag_move(stage: StagedVersion) -> str:
    if stage.state != StagedVersion.State.PENDING:
        return ""
    preview = decisions.preview_approval(stage)
    if preview.problem:
        return preview.problem
    tag = preview.tag or "latest"
    if preview.current is None or preview.current_is_placeholder:
        return f"{tag}: (none) → {preview.after}"
    return f"{tag}: {preview.current} → {preview.after}"


def progress(batch: Batch) -> dict[str, int]:
    counts = {state.value: 0 for state in ItemState}
    for state in batch.items.values_list("state", flat=True):
        counts[state] += 1
    return counts
