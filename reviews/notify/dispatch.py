"""Who hears about what, and the emails they get.

Events are an outbox: the hooks below write a `NotificationEvent` inside the transaction of the
change they report (a stage first seen, a stage decided here or elsewhere), so an event exists
exactly when its change committed, and a second sync pass finds its key taken. Reminders are
events too, written by `create_reminders()` at most once per team's rate.

`dispatch_event()` turns one event into one `Notification` per person (an email) and one
`WebhookDelivery` per team, in one transaction that also marks the event dispatched. A new
stage is held back until its tarball verdict (and the file analysis, when the portal has one)
is ready, or GREENROOM_NOTIFY_ANALYSIS_WAIT seconds have passed: then it goes out without them.

`send_notification()` claims one email (a conditional UPDATE with a lease), renders it from the
database as it is now, sends it through Django's email backend and records it sent. A retried
or redelivered task finds it sent or claimed and does nothing; a worker that died mid-send
leaves a claim that expires, and the sweep hands the email out again with the same
Message-ID, so a copy that did leave is folded into one by mail clients.

Celery wrappers with their retry policy are in `reviews.tasks`; webhooks in
`reviews.notify.webhooks`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import smtplib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import User
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from reviews.audit import trail as audit
from reviews.audit.trail import Action, Actor
from reviews.models import (
    Batch,
    BatchItem,
    DeliveryStatus,
    LineComment,
    Membership,
    Notification,
    NotificationEvent,
    NotificationMode,
    NotificationPreference,
    Review,
    Role,
    StagedVersion,
    Team,
    TeamNotificationSettings,
    WebhookDelivery,
    notification_event_key,
)
from reviews.review.analysis import current_baseline
from reviews.review.risk import stage_findings
from reviews.teams.access import pattern_matches, patterns_q
from reviews.teams.policy import stager_ids

logger = logging.getLogger(__name__)

EventKind = NotificationEvent.Kind
Kind = Notification.Kind
State = StagedVersion.State
# Reviews and line comments: who hears is the people involved, not the whole team.
DISCUSSION_KINDS = (EventKind.REVIEW, EventKind.COMMENT, EventKind.REPLY, EventKind.RESOLVED)

SEND_LEASE = timedelta(minutes=5)  # longer than an SMTP conversation can take (EMAIL_TIMEOUT)
MAX_SEND_ATTEMPTS = 5
SEND_BACKOFF = 30.0  # seconds before the second attempt, doubled each time
SEND_BACKOFF_CAP = 1800.0
# A pending email whose next attempt is this far in the past lost its task: the sweep resends.
STALE_AFTER = timedelta(minutes=5)
BATCH = 500
# Reminders run hourly; a repeat due "every day" must not slip an hour each day.
REMINDER_SLACK = timedelta(minutes=10)
DIGEST_ROWS = 50  # per list and team; the rest is a count and a link
UNSUBSCRIBE_SALT = "greenroom.notifications.unsubscribe"
MAX_SUBJECT = 200


# -- The hooks: one call from each place that changes a stage ------------------------------------


def stage_seen(stage: StagedVersion) -> None:
    """The sync created this stage's row: its owners hear about it once it is analysed."""
    record_event(EventKind.NEW_STAGE, stage)


def stage_decided(stage: StagedVersion) -> None:
    """The stage was approved or rejected, here or elsewhere: its owners hear who and how."""
    record_event(EventKind.DECIDED, stage)


def event_key(kind: str, stage_pk: int, team_pk: int | None = None, number: int = 0) -> str:
    return notification_event_key(kind, stage_pk, team_pk, number)


def record_event(
    kind: NotificationEvent.Kind,
    stage: StagedVersion,
    *,
    team: Team | None = None,
    number: int = 0,
    now: datetime | None = None,
) -> NotificationEvent | None:
    """The event, written in the caller's transaction; None if it was already recorded."""
    return NotificationEvent.objects.record(kind, stage, team=team, number=number, now=now)


# -- Who owns a package, who wants to hear ---------------------------------------------------------


def owning_teams(package_name: str) -> list[Team]:
    teams = Team.objects.prefetch_related("patterns").order_by("name")
    return [
        team
        for team in teams
        if any(pattern_matches(p.pattern, package_name) for p in team.patterns.all())
    ]


@dataclass(frozen=True)
class Recipient:
    user: User
    team: Team  # the team the email is sent for


def preferences(teams: Iterable[Team]) -> dict[tuple[int, int], str]:
    rows = NotificationPreference.objects.filter(team__in=list(teams))
    return {(row.user_id, row.team_id): row.mode for row in rows}


def mode_of(user: User, team: Team) -> str:
    row = NotificationPreference.objects.filter(user=user, team=team).first()
    return row.mode if row else NotificationMode.IMMEDIATE


def recipients(
    teams: list[Team],
    *,
    min_role: Role = Role.VIEWER,
    mode: str = NotificationMode.IMMEDIATE,
    exclude_user_id: int | None = None,
) -> list[Recipient]:
    """Active members of these teams, with an email address, holding at least `min_role`,
    who chose `mode` for that team; each person once, for the first such team by name."""
    chosen = preferences(teams)
    memberships = (
        Membership.objects.filter(team__in=teams, role__gte=min_role, user__is_active=True)
        .exclude(user__email="")
        .select_related("user", "team")
        .order_by("team__name", "user_id")
    )
    found: dict[int, Recipient] = {}
    for membership in memberships:
        if membership.user_id == exclude_user_id or membership.user_id in found:
            continue
        wanted = chosen.get((membership.user_id, membership.team_id), NotificationMode.IMMEDIATE)
        if wanted == mode:
            found[membership.user_id] = Recipient(membership.user, membership.team)
    return list(found.values())


def team_settings(team: Team) -> TeamNotificationSettings:
    """The team's settings row, or the defaults (unsaved) when it has none."""
    try:
        return team.notification_settings
    except TeamNotificationSettings.DoesNotExist:
        return TeamNotificationSettings(team=team)


def has_webhook(team: Team) -> bool:
    return bool(team_settings(team).webhook_url_encrypted)


# -- The analysis, when there is one ---------------------------------------------------------------


@dataclass(frozen=True)
class Highlights:
    """What the file and package.json analysis says, in the few lines an email has room for."""

    counts: dict[str, int] = field(default_factory=dict)  # "added" -> files; unchanged left out
    install_scripts: list[str] = field(default_factory=list)  # "postinstall added: node x.js"
    new_dependencies: list[str] = field(default_factory=list)  # "left-pad ^1.3.0"
    first_release: bool = False
    note: str = ""  # why there are no counts (the analysis was refused or failed)
    risk: str = ""  # highest severity among new and changed findings ("" for none)
    findings: list[str] = field(default_factory=list)  # "critical a.js:4 Reads NPM_TOKEN…"
    more_findings: int = 0  # new and changed findings not listed

    @property
    def changed_files(self) -> int:
        return sum(self.counts.values())


MAX_HIGHLIGHTS = 20
TOP_FINDINGS = 5


def highlights(stage: StagedVersion) -> Highlights | None:
    """The stage's analysis in a few lines; None while it is not finished. Anything the
    analysis side raises is logged and read as not ready: an email waits for it a bounded
    time, and never on a crash."""
    try:
        chosen = current_baseline(stage)
        if chosen is None:
            return None
        analysis = chosen.analysis
        if analysis is None:
            return Highlights(note=chosen.problem) if chosen.problem else None
        if not analysis.finished:
            return None
        return _with_findings(_highlights_of(analysis), analysis, chosen.release_findings)
    except Exception:
        logger.exception("the analysis of %s could not be read", stage)
        return None


def _highlights_of(analysis: Any) -> Highlights:
    manifest = analysis.manifest if isinstance(analysis.manifest, dict) else {}
    first_release = bool(manifest.get("first_release", analysis.baseline_id is None))
    if analysis.status != "done":
        why = analysis.refusal_message or analysis.error or analysis.get_status_display()
        return Highlights(first_release=first_release, note=f"Not analysed: {why}")
    counts = {
        "added": analysis.files_added,
        "modified": analysis.files_modified,
        "renamed": analysis.files_renamed,
        "removed": analysis.files_removed,
    }
    scripts = [
        f"{entry.get('key')} {entry.get('status')}: {entry.get('new') or entry.get('old') or ''}"
        for entry in manifest.get("scripts", [])
        if isinstance(entry, dict) and entry.get("hook")
    ]
    dependencies = [
        f"{entry.get('key')} {entry.get('new') or ''} ({entry.get('section')})"
        for entry in manifest.get("dependencies", [])
        if isinstance(entry, dict) and entry.get("status") == "added"
    ]
    return Highlights(
        counts={status: n for status, n in counts.items() if n},
        install_scripts=[one_line(line, 300) for line in scripts[:MAX_HIGHLIGHTS]],
        new_dependencies=[one_line(line, 300) for line in dependencies[:MAX_HIGHLIGHTS]],
        first_release=first_release,
    )


def _with_findings(found: Highlights, analysis: Any, release: Any) -> Highlights:
    """The risk and the top new or changed findings (highest severity first)."""
    news = [f for f in stage_findings(analysis, release or []) if f.counts_for_risk]
    news.sort(key=lambda f: -f.severity.rank)
    lines = [one_line(f"{f.severity.value} {f.where}: {f.title}", 300) for f in news[:TOP_FINDINGS]]
    risk = news[0].severity.value if news else ""
    return replace(found, risk=risk, findings=lines, more_findings=max(len(news) - TOP_FINDINGS, 0))


def ready_to_announce(stage: StagedVersion) -> bool:
    """The tarball has its verdict and, for a verified one where stages are analysed, the
    analysis is finished."""
    if stage.integrity == StagedVersion.Integrity.PENDING:
        return False
    if stage.integrity != StagedVersion.Integrity.VERIFIED:
        return True  # nothing will be analysed: say what is known now
    return highlights(stage) is not None


# -- Dispatch: an event becomes emails and webhook deliveries -------------------------------------


@dataclass
class Fanout:
    """What one dispatch queued: the pending emails and webhook deliveries, by id."""

    notification_ids: list[int] = field(default_factory=list)
    delivery_ids: list[int] = field(default_factory=list)

    def extend(self, other: Fanout) -> None:
        self.notification_ids += other.notification_ids
        self.delivery_ids += other.delivery_ids


def dispatch_events(now: datetime | None = None) -> Fanout:
    """Dispatch every event that is due; the emails and deliveries to send."""
    now = now or timezone.now()
    fanout = Fanout()
    pending = NotificationEvent.objects.filter(dispatched_at__isnull=True).order_by("id")
    for event_id in pending.values_list("id", flat=True)[:BATCH]:
        fanout.extend(dispatch_event(event_id, now=now))
    return fanout


def dispatch_event(event_id: int, *, now: datetime | None = None) -> Fanout:
    """One event's emails and webhook deliveries, created once (the event is claimed in the
    same transaction); nothing while a new stage still waits for its analysis."""
    now = now or timezone.now()
    event = NotificationEvent.objects.select_related("stage", "team").filter(pk=event_id).first()
    if event is None or event.dispatched_at is not None:
        return Fanout()
    wait = timedelta(seconds=settings.GREENROOM_NOTIFY_ANALYSIS_WAIT)
    if (
        event.kind == EventKind.NEW_STAGE
        and event.stage is not None
        and event.stage.state == State.PENDING
        and not ready_to_announce(event.stage)
        and now < event.created_at + wait
    ):
        return Fanout()
    with transaction.atomic():
        claimed = NotificationEvent.objects.filter(pk=event.pk, dispatched_at__isnull=True).update(
            dispatched_at=now
        )
        if not claimed:
            return Fanout()
        emails, hooks = _fan_out(event, now)
        Notification.objects.bulk_create(emails, ignore_conflicts=True)
        WebhookDelivery.objects.bulk_create(hooks, ignore_conflicts=True)
    return Fanout(
        list(
            Notification.objects.filter(
                key__in=[n.key for n in emails], status=DeliveryStatus.PENDING
            ).values_list("id", flat=True)
        ),
        list(
            WebhookDelivery.objects.filter(
                key__in=[d.key for d in hooks], status=DeliveryStatus.PENDING
            ).values_list("id", flat=True)
        ),
    )


def _fan_out(
    event: NotificationEvent, now: datetime
) -> tuple[list[Notification], list[WebhookDelivery]]:
    stage = event.stage
    if stage is None:
        # A team's own event (its policy changed): every member hears, by their choice.
        assert event.team is not None
        teams = [event.team]
        people = recipients(teams)
    elif event.kind in (EventKind.NEW_STAGE, EventKind.REMINDER) and stage.state != State.PENDING:
        return [], []  # decided before anyone was told: the decision is the news
    elif event.kind == EventKind.REMINDER:
        assert event.team is not None
        teams = [event.team]
        people = recipients(teams, min_role=Role.APPROVER)
    elif event.kind in DISCUSSION_KINDS:
        teams = owning_teams(stage.package_name)
        people = discussion_recipients(event, stage, teams)
    else:
        teams = owning_teams(stage.package_name)
        # The person who decided in the portal knows; everyone else hears.
        decided = (EventKind.DECIDED, EventKind.BATCH_DECIDED)
        decider = stage.decided_by_id if event.kind in decided else None
        people = recipients(teams, exclude_user_id=decider)
    emails = [
        Notification(
            key=f"{event.key}:user:{person.user.pk}",
            kind=event.kind,
            user=person.user,
            team=person.team,
            event=event,
            created_at=now,
            next_attempt_at=now,
        )
        for person in people
    ]
    summary = one_line(event_summary(event), 300)
    hooks = [
        WebhookDelivery(
            key=f"{event.key}:team:{team.pk}",
            team=team,
            event=event,
            summary=summary,
            created_at=now,
            updated_at=now,
            next_attempt_at=now,
        )
        for team in teams
        if has_webhook(team)
    ]
    return emails, hooks


def discussion_recipients(
    event: NotificationEvent, stage: StagedVersion, teams: list[Team]
) -> list[Recipient]:
    """Who hears about a review or a comment: the person who staged the version and everyone
    who reviewed or commented on it before (for a reply or a resolution: the thread's people
    too); for a review, also the approvers, who wait for approvals. Never its author; only
    members of an owning team, by their choice for that team."""
    author = discussion_author(event)
    wanted = set(stager_ids(stage))
    wanted |= set(
        Review.objects.filter(stage=stage).exclude(author=None).values_list("author_id", flat=True)
    )
    if event.kind in (EventKind.REVIEW, EventKind.COMMENT):
        wanted |= set(
            LineComment.objects.filter(stage=stage)
            .exclude(author=None)
            .values_list("author_id", flat=True)
        )
    elif event.comment is not None:
        root = event.comment.thread_id or event.comment.pk
        wanted |= set(
            LineComment.objects.filter(Q(pk=root) | Q(thread_id=root))
            .exclude(author=None)
            .values_list("author_id", flat=True)
        )
    found = [person for person in recipients(teams) if person.user.pk in wanted]
    if event.kind == EventKind.REVIEW:
        known = {person.user.pk for person in found}
        found += [p for p in recipients(teams, min_role=Role.APPROVER) if p.user.pk not in known]
    return [person for person in found if person.user.pk != author]


def discussion_author(event: NotificationEvent) -> int | None:
    if event.kind == EventKind.RESOLVED:
        # The resolution's author is whoever resolved the thread.
        return event.comment.resolved_by_id if event.comment else None
    if event.review is not None:
        return event.review.author_id
    return event.comment.author_id if event.comment else None


def discussion_words(event: NotificationEvent) -> str:
    """'bob requested changes', 'alice replied on index.js line 4', ..."""
    if event.review is not None:
        verbs = {
            Review.Verdict.APPROVE: "approved",
            Review.Verdict.REQUEST_CHANGES: "requested changes on",
            Review.Verdict.COMMENT: "commented on",
        }
        return f"{event.review.author_name} {verbs[Review.Verdict(event.review.verdict)]}"
    comment = event.comment
    if comment is None:
        return "someone commented on"
    where = f"{comment.path} line {comment.line}"
    if event.kind == EventKind.RESOLVED:
        who = comment.resolved_by.get_username() if comment.resolved_by else "someone"
        return f"{who} resolved the thread on {where} of"
    verb = "replied on" if event.kind == EventKind.REPLY else "commented on"
    return f"{comment.author_name} {verb} {where} of"


def event_summary(event: NotificationEvent) -> str:
    stage = event.stage
    if stage is None:
        team = event.team.name if event.team else "a team"
        return f"The review policy of {team} changed"
    name = f"{stage.package_name}@{stage.version}"
    if event.kind in DISCUSSION_KINDS:
        return f"{discussion_words(event)} {name}"
    if event.kind == EventKind.NEW_STAGE:
        return f"New stage: {name}"
    if event.kind == EventKind.REMINDER:
        return f"Reminder {event.number}: {name} is waiting"
    if event.kind == EventKind.BATCH_DECIDED:
        return batch_words(event.number)
    return f"{name} {decision_words(stage)}"


def batch_stages(batch_pk: int) -> list[StagedVersion]:
    """The stages a batch decided, in its order."""
    return [
        item.stage
        for item in BatchItem.objects.filter(batch_id=batch_pk, state=BatchItem.State.DONE)
        .select_related("stage", "stage__decided_by")
        .order_by("position")
    ]


def batch_words(batch_pk: int) -> str:
    """'Batch #3: 30 stages approved by alice in Greenroom: @acme/a@1.0.0, ...'."""
    stages = batch_stages(batch_pk)
    batch = Batch.objects.filter(pk=batch_pk).first()
    who = batch.created_by.get_username() if batch and batch.created_by else "a former user"
    verb = "rejected" if batch and batch.state == Batch.State.REJECTED else "approved"
    names = ", ".join(str(stage) for stage in stages[:5])
    more = f" and {len(stages) - 5} more" if len(stages) > 5 else ""
    count = f"{len(stages)} stage{'' if len(stages) == 1 else 's'}"
    return f"Batch #{batch_pk}: {count} {verb} by {who} in Greenroom: {names}{more}"


def decision_words(stage: StagedVersion) -> str:
    """'approved by alice (npm user alice-npm) in Greenroom', 'rejected outside Greenroom'."""
    state = stage.get_state_display().lower()
    if stage.decided_in_portal:
        who = stage.decided_by.get_username() if stage.decided_by else "a former user"
        npm = f" (npm user {stage.decided_npm_user})" if stage.decided_npm_user else ""
        return f"{state} by {who}{npm} in Greenroom"
    if stage.state == State.REJECTED:
        return "rejected or withdrawn outside Greenroom"
    return f"{state} outside Greenroom"


# -- Reminders and digests ------------------------------------------------------------------------


def create_reminders(now: datetime | None = None) -> list[NotificationEvent]:
    """A reminder event for each pending stage older than its team's setting, at most one per
    stage and team every `reminder_every_days` days."""
    now = now or timezone.now()
    created: list[NotificationEvent] = []
    teams = Team.objects.select_related("notification_settings").prefetch_related("patterns")
    for team in teams:
        rate = team_settings(team)
        patterns = [p.pattern for p in team.patterns.all()]
        if not rate.reminder_after_days or not patterns:
            continue
        every = timedelta(days=max(rate.reminder_every_days, 1))
        due = StagedVersion.objects.filter(
            patterns_q(patterns),
            state=State.PENDING,
            staged_at__lte=now - timedelta(days=rate.reminder_after_days),
        ).order_by("staged_at", "id")
        for stage in due[:BATCH]:
            last = (
                NotificationEvent.objects.filter(kind=EventKind.REMINDER, stage=stage, team=team)
                .order_by("-number")
                .first()
            )
            if last is not None and last.created_at > now - every + REMINDER_SLACK:
                continue
            number = last.number + 1 if last else 1
            event = record_event(EventKind.REMINDER, stage, team=team, number=number, now=now)
            if event is not None:
                created.append(event)
    return created


def create_digests(now: datetime | None = None) -> list[int]:
    """Today's digest for every person who chose one for a team they are in, once the digest
    hour has come; the ids of those created now. Running again the same day adds nothing."""
    now = now or timezone.now()
    if now.hour < settings.GREENROOM_DIGEST_HOUR:
        return []
    member = Membership.objects.filter(team=OuterRef("team"), user=OuterRef("user"))
    user_ids = (
        NotificationPreference.objects.filter(mode=NotificationMode.DIGEST, user__is_active=True)
        .exclude(user__email="")
        .filter(Exists(member))
        .values_list("user_id", flat=True)
        .distinct()
    )
    day = now.date().isoformat()
    created_ids = []
    for user_id in sorted(set(user_ids)):
        previous = (
            Notification.objects.filter(kind=Kind.DIGEST, user_id=user_id)
            .order_by("-window_end")
            .first()
        )
        start = previous.window_end if previous and previous.window_end else None
        start = start or now - timedelta(days=1)
        digest, created = Notification.objects.get_or_create(
            key=f"digest:{user_id}:{day}",
            defaults={
                "kind": Kind.DIGEST,
                "user_id": user_id,
                "window_start": min(start, now),
                "window_end": now,
                "created_at": now,
                "next_attempt_at": now,
            },
        )
        if created:
            created_ids.append(digest.pk)
    return created_ids


@dataclass
class DigestSection:
    team: Team
    arrived: list[StagedVersion]
    decided: list[StagedVersion]
    waiting: list[StagedVersion]
    more: dict[str, int]  # list name -> rows left out

    @property
    def empty(self) -> bool:
        return not (self.arrived or self.decided or self.waiting)


def digest_teams(user: User) -> list[Team]:
    member = Membership.objects.filter(team=OuterRef("pk"), user=user)
    chosen = NotificationPreference.objects.filter(
        team=OuterRef("pk"), user=user, mode=NotificationMode.DIGEST
    )
    return list(Team.objects.filter(Exists(member), Exists(chosen)).order_by("name"))


def digest_sections(user: User, start: datetime, end: datetime) -> list[DigestSection]:
    """Per digest team: what arrived in the window, what was decided in it, and what else is
    still waiting."""
    sections = []
    for team in digest_teams(user):
        owned = StagedVersion.objects.filter(
            patterns_q(list(team.patterns.values_list("pattern", flat=True)))
        ).order_by("staged_at", "id")
        lists = {
            "arrived": owned.filter(first_seen_at__gte=start, first_seen_at__lt=end),
            "decided": owned.filter(resolved_at__gte=start, resolved_at__lt=end)
            .exclude(state=State.PENDING)
            .exclude(first_seen_at__gte=start),
            "waiting": owned.filter(state=State.PENDING, first_seen_at__lt=start),
        }
        rows = {name: list(query[: DIGEST_ROWS + 1]) for name, query in lists.items()}
        more = {
            name: lists[name].count() - DIGEST_ROWS
            for name, found in rows.items()
            if len(found) > DIGEST_ROWS
        }
        section = DigestSection(
            team,
            rows["arrived"][:DIGEST_ROWS],
            rows["decided"][:DIGEST_ROWS],
            rows["waiting"][:DIGEST_ROWS],
            more,
        )
        if not section.empty:
            sections.append(section)
    return sections


# -- Sending one email ----------------------------------------------------------------------------


class TransientSendError(Exception):
    """The mail server could not take the email now; retry in `retry_in` seconds."""

    def __init__(self, message: str, retry_in: float) -> None:
        super().__init__(message)
        self.retry_in = retry_in


SENT = "sent"
SKIPPED = "skipped"  # nothing to say any more (decided, unsubscribed, left the team)
BUSY = "busy"  # already sent, or claimed by another worker
FAILED = "failed"


def send_notification(notification_id: int) -> str:
    """Send one email once. Raises TransientSendError when the mail server should be tried
    again later; records FAILED once MAX_SEND_ATTEMPTS attempts are spent."""
    now = timezone.now()
    claimed = (
        Notification.objects.filter(pk=notification_id, status=DeliveryStatus.PENDING)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - SEND_LEASE))
        .update(claimed_at=now, attempts=F("attempts") + 1)
    )
    if not claimed:
        return BUSY
    notification = Notification.objects.select_related(
        "user",
        "team",
        "event__stage__decided_by",
        "event__team",
        "event__review",
        "event__comment__resolved_by",
    ).get(pk=notification_id)
    try:
        message = build_message(notification)
    except Exception as e:
        _finish(notification, now, DeliveryStatus.FAILED, f"could not render: {type(e).__name__}")
        logger.exception("notification %s could not be rendered", notification.key)
        return FAILED
    if message is None:
        _finish(notification, now, DeliveryStatus.SKIPPED, "")
        return SKIPPED
    try:
        message.send()
    except Exception as e:
        transient = is_transient(e)
        words = describe_send_error(e)
        if transient and notification.attempts < MAX_SEND_ATTEMPTS:
            delay = min(SEND_BACKOFF * 2.0 ** (notification.attempts - 1), SEND_BACKOFF_CAP)
            Notification.objects.filter(pk=notification.pk, claimed_at=now).update(
                claimed_at=None,
                next_attempt_at=now + timedelta(seconds=delay),
                last_error=words[:500],
            )
            logger.info("email %s deferred: %s", notification.key, words)
            raise TransientSendError(words, delay) from None
        _finish(notification, now, DeliveryStatus.FAILED, words)
        logger.warning("email %s failed: %s", notification.key, words)
        return FAILED
    _finish(
        notification, now, DeliveryStatus.SENT, "", message_id=message.extra_headers["Message-ID"]
    )
    return SENT


def _finish(
    notification: Notification, claim: datetime, status: str, error: str, *, message_id: str = ""
) -> None:
    done = Notification.objects.filter(pk=notification.pk, claimed_at=claim).update(
        status=status,
        claimed_at=None,
        sent_at=timezone.now() if status == DeliveryStatus.SENT else None,
        message_id=message_id,
        last_error=error[:500],
    )
    if not done:
        logger.warning("email %s: the claim expired before it was recorded", notification.key)


def is_transient(error: Exception) -> bool:
    """Connection trouble and 4xx SMTP replies pass; 5xx replies and anything else do not."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        return bool(codes) and all(400 <= code < 500 for code in codes)
    if isinstance(error, smtplib.SMTPResponseException):
        return 400 <= error.smtp_code < 500
    return isinstance(error, smtplib.SMTPServerDisconnected | OSError)


def describe_send_error(error: Exception) -> str:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "the mail server refused the recipient: " + "; ".join(
            f"{code} {_text(reply)}" for code, reply in error.recipients.values()
        )
    if isinstance(error, smtplib.SMTPResponseException):
        return f"the mail server answered {error.smtp_code} {_text(error.smtp_error)}"
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return "the mail server closed the connection"
    if isinstance(error, TimeoutError):
        return "the mail server did not answer in time"
    if isinstance(error, OSError):
        return f"could not reach the mail server ({type(error).__name__})"
    return f"sending failed ({type(error).__name__})"


def _text(reply: bytes | str) -> str:
    return one_line(reply.decode(errors="replace") if isinstance(reply, bytes) else reply, 300)


def stale_notifications(now: datetime | None = None) -> list[int]:
    """Pending emails whose task was lost (never run, or its worker died): send them again."""
    now = now or timezone.now()
    return list(
        Notification.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lt=now - STALE_AFTER
        )
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - SEND_LEASE))
        .order_by("id")
        .values_list("id", flat=True)[:BATCH]
    )


# -- The emails -----------------------------------------------------------------------------------


def make_message(
    name: str, to: str, ctx: dict[str, Any], headers: dict[str, str] | None = None
) -> EmailMultiAlternatives:
    """The one way an email is made: `emails/<name>-subject.txt`, `-body-text.txt` and
    `-body-html.html`, rendered with `ctx`."""
    ctx = {**ctx, "base_url": base_url(), "me_url": absolute(reverse("reviews:me"))}
    subject = one_line(render_to_string(f"emails/{name}-subject.txt", ctx), MAX_SUBJECT)
    text = _tidy(render_to_string(f"emails/{name}-body-text.txt", ctx))
    html = render_to_string(f"emails/{name}-body-html.html", ctx)
    message = EmailMultiAlternatives(subject, text, to=[to], headers=headers or {})
    message.attach_alternative(html, "text/html")
    return message


def build_message(notification: Notification) -> EmailMultiAlternatives | None:
    """The email as the database says now; None if there is nothing to say any more."""
    user = notification.user
    if not user.is_active or not user.email:
        return None
    teams = [notification.team] if notification.team else digest_teams(user)
    ctx: dict[str, Any] = {"user": user, "team": notification.team}
    if notification.kind == Kind.DIGEST:
        assert notification.window_start is not None
        assert notification.window_end is not None
        sections = digest_sections(user, notification.window_start, notification.window_end)
        if not sections:
            return None
        name = "digest"
        ctx.update(
            sections=sections,
            window_start=notification.window_start,
            window_end=notification.window_end,
            arrived=sum(len(s.arrived) + s.more.get("arrived", 0) for s in sections),
            waiting=sum(len(s.waiting) + s.more.get("waiting", 0) for s in sections),
            decided=sum(len(s.decided) + s.more.get("decided", 0) for s in sections),
            dashboard_url=absolute(reverse("reviews:dashboard")),
        )
    else:
        team, event = notification.team, notification.event
        if team is None or event is None:
            return None
        if not Membership.objects.filter(team=team, user=user).exists():
            return None  # left the team since
        if mode_of(user, team) != NotificationMode.IMMEDIATE:
            return None  # chose the digest or nothing since
        stage = event.stage
        if stage is None:
            name = "team-policy"
            ctx.update(policy_context(team))
        else:
            waiting_kind = notification.kind in (Kind.NEW_STAGE, Kind.REMINDER)
            if waiting_kind and stage.state != State.PENDING:
                return None
            name = EMAIL_TEMPLATES[Kind(notification.kind)]
            ctx.update(stage_context(stage, notification.created_at))
        if notification.kind in DISCUSSION_KINDS:
            ctx.update(discussion_context(event))
        if notification.kind == Kind.BATCH_DECIDED:
            ctx.update(summary=batch_words(event.number), batch_stages=batch_stages(event.number))
        ctx.update(event=event, reminder_number=event.number)
        if notification.kind == Kind.NEW_STAGE and stage is not None:
            found = highlights(stage)
            ctx.update(highlights=found, analysis_missing=found is None)
    unsubscribe = unsubscribe_url(user, teams)
    ctx.update(unsubscribe_url=unsubscribe, unsubscribe_teams=teams)
    headers = {
        "Message-ID": message_id(notification.key),
        "List-Unsubscribe": f"<{unsubscribe}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "Auto-Submitted": "auto-generated",
        "X-Greenroom-Event": str(notification.kind),
    }
    return make_message(name, user.email, ctx, headers)


EMAIL_TEMPLATES = {
    Kind.NEW_STAGE: "stage-new",
    Kind.DECIDED: "stage-decided",
    Kind.BATCH_DECIDED: "batch-decided",
    Kind.REMINDER: "stage-reminder",
    Kind.REVIEW: "stage-discussion",
    Kind.COMMENT: "stage-discussion",
    Kind.REPLY: "stage-discussion",
    Kind.RESOLVED: "stage-discussion",
}


def discussion_context(event: NotificationEvent) -> dict[str, Any]:
    """What a review or comment email says: who did what, its text, and a link to it."""
    assert event.stage is not None
    url = absolute(reverse("reviews:stage", args=[event.stage.stage_id]))
    text = ""
    if event.review is not None:
        text = event.review.body
        url += "#reviews"
    elif event.comment is not None:
        text = "" if event.kind == EventKind.RESOLVED else event.comment.body
        url += f"#thread-{event.comment.thread_id or event.comment.pk}"
    return {"what": discussion_words(event), "text": text, "discussion_url": url}


def policy_context(team: Team) -> dict[str, Any]:
    return {
        "policy_team": team,
        "team_url": absolute(reverse("reviews:team", args=[team.slug])),
    }


def stage_context(stage: StagedVersion, now: datetime) -> dict[str, Any]:
    waiting = now - stage.staged_at
    return {
        "stage": stage,
        "stage_url": absolute(reverse("reviews:stage", args=[stage.stage_id])),
        "integrity": stage.get_integrity_display(),
        "integrity_problem": stage.integrity == StagedVersion.Integrity.MISMATCH,
        "decision": decision_words(stage),
        "waiting_days": max(waiting.days, 0),
    }


def message_id(key: str) -> str:
    """The same Message-ID for every attempt at one email: a copy sent twice is one to mail
    clients."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    domain = urlsplit(base_url()).hostname or "greenroom.invalid"
    return f"<{digest}@{domain}>"


def base_url() -> str:
    return str(settings.GREENROOM_BASE_URL).rstrip("/")


def absolute(path: str) -> str:
    return base_url() + path


_SPACES = re.compile(r"\s+")


def one_line(text: str, limit: int) -> str:
    """Text fit for a header or a one-line summary: no control, format (bidi, zero-width) or
    line-breaking characters, runs of space collapsed, cut at `limit`."""
    kept = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp")
    )
    kept = _SPACES.sub(" ", kept).strip()
    return kept if len(kept) <= limit else kept[: limit - 1] + "…"


def _tidy(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", text.strip()) + "\n"


# -- Unsubscribing and choosing -------------------------------------------------------------------


@dataclass(frozen=True)
class UnsubscribeTarget:
    user: User
    teams: list[Team]


def unsubscribe_token(user: User, teams: Iterable[Team]) -> str:
    return signing.dumps(
        {"u": user.pk, "t": sorted(team.pk for team in teams)}, salt=UNSUBSCRIBE_SALT
    )


def unsubscribe_url(user: User, teams: Iterable[Team]) -> str:
    token = unsubscribe_token(user, teams)
    return absolute(reverse("reviews:notifications-unsubscribe", args=[token]))


def read_unsubscribe_token(token: str) -> UnsubscribeTarget:
    """Who and which teams a link is for; raises signing.BadSignature for a link we did not
    sign (or whose person is gone)."""
    data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    if not isinstance(data, dict):
        raise signing.BadSignature("unexpected content")
    user_id, team_ids = data.get("u"), data.get("t")
    if not isinstance(user_id, int) or not isinstance(team_ids, list):
        raise signing.BadSignature("unexpected content")
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise signing.BadSignature("no such person")
    return UnsubscribeTarget(user, list(Team.objects.filter(pk__in=team_ids).order_by("name")))


def set_preference(user: User, team: Team, mode: str, actor: Actor, *, via: str = "page") -> bool:
    """Record how `user` hears about `team`, with its audit entry; False if nothing changed."""
    with transaction.atomic():
        row = NotificationPreference.objects.select_for_update().filter(user=user, team=team)
        current = row.first()
        old = current.mode if current else NotificationMode.IMMEDIATE
        if old == mode:
            return False
        NotificationPreference.objects.update_or_create(
            user=user, team=team, defaults={"mode": mode, "updated_at": timezone.now()}
        )
        audit.record(
            Action.NOTIFICATION_PREFERENCE_SET,
            actor,
            target=f"team:{team.slug}",
            payload={"person": user.get_username(), "old": old, "new": mode, "via": via},
        )
    return True


def unsubscribe(target: UnsubscribeTarget, actor: Actor) -> list[Team]:
    """Stop every email from the link's teams; the teams that changed."""
    return [
        team
        for team in target.teams
        if set_preference(target.user, team, NotificationMode.OFF, actor, via="unsubscribe link")
    ]


def update_reminders(team: Team, after_days: int, every_days: int, actor: Actor) -> bool:
    """A team's reminder rate, audited; False if it did not change."""
    with transaction.atomic():
        current, _ = TeamNotificationSettings.objects.select_for_update().get_or_create(team=team)
        old = (current.reminder_after_days, current.reminder_every_days)
        if old == (after_days, every_days):
            return False
        TeamNotificationSettings.objects.filter(pk=current.pk).update(
            reminder_after_days=after_days,
            reminder_every_days=every_days,
            updated_at=timezone.now(),
        )
        audit.record(
            Action.TEAM_NOTIFICATIONS_CHANGED,
            actor,
            target=f"team:{team.slug}",
            payload={
                "reminder_after_days": {"old": old[0], "new": after_days},
                "reminder_every_days": {"old": old[1], "new": every_days},
            },
        )
    return True


def preference_rows(user: User) -> list[tuple[Membership, str]]:
    """The person's teams with how they hear about each."""
    memberships = list(Membership.objects.filter(user=user).select_related("team"))
    chosen = preferences(m.team for m in memberships)
    return [(m, chosen.get((user.pk, m.team_id), NotificationMode.IMMEDIATE)) for m in memberships]
