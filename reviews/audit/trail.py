"""The audit trail: append-only and hash-chained.

Every state change calls `record()` inside the transaction that makes the change, so one never
lands without the other. Each entry's hash covers its content and the previous entry's hash;
`verify_chain()` finds the first entry that was changed, removed or inserted behind our back.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.ipv6 import clean_ipv6_address

from reviews.inspect.storable import storable, storable_text
from reviews.models import AuditEvent, StagedVersion

GENESIS_HASH = "0" * 64
# Any key that names one of these is refused: the trail must never hold a secret.
SECRET_WORDS = ("token", "otp", "password", "secret", "authorization", "cookie")
CHAIN_LOCK_ID = 0x6772_6E72  # "grnr": one PostgreSQL advisory lock serialises appends


class Action(StrEnum):
    STAGE_SEEN = "stage.seen"
    STAGE_UPDATED = "stage.updated"  # the registry changed a pending stage (e.g. its shasum)
    TARBALL_VERIFIED = "tarball.verified"
    TARBALL_MISMATCH = "tarball.mismatch"
    TARBALL_UNAVAILABLE = "tarball.unavailable"
    # A first download that did not match; a second one decides (one of the three above).
    TARBALL_MISMATCH_UNCONFIRMED = "tarball.mismatch_unconfirmed"
    TARBALL_RECHECK_REQUESTED = "tarball.recheck_requested"  # a person asked to check again
    STAGE_ANALYSED = "stage.analysed"  # the review's analysis finished: its risk and counts
    APPROVED_ELSEWHERE = "stage.approved_elsewhere"
    REJECTED_ELSEWHERE = "stage.rejected_elsewhere"
    PUBLISHED_DIGEST_CHECKED = "stage.published_digest_checked"
    LOGIN = "auth.login"
    LOGIN_FAILED = "auth.login_failed"
    TEAM_CREATED = "team.created"
    TEAM_DELETED = "team.deleted"
    MEMBER_ROLE_SET = "team.member_role_set"
    MEMBER_REMOVED = "team.member_removed"
    PATTERN_ADDED = "team.pattern_added"
    PATTERN_REMOVED = "team.pattern_removed"
    # Another team gained or lost a pattern that matches some of this team's packages.
    OVERLAPPING_PATTERN_ADDED = "team.overlapping_pattern_added"
    OVERLAPPING_PATTERN_REMOVED = "team.overlapping_pattern_removed"
    SETTINGS_CHANGED = "settings.changed"
    NPM_ACCOUNT_LINKED = "npm_token.linked"
    NPM_ACCOUNT_UNLINKED = "npm_token.unlinked"
    NPM_KEYS_ROTATED = "npm_token.keys_rotated"
    # Every approve/reject attempt made in the portal ends in exactly one of these.
    STAGE_APPROVED = "stage.approved"
    STAGE_REJECTED = "stage.rejected"
    DECISION_CHALLENGED = "decision.challenged"  # the registry asked for a code or a key
    DECISION_WRONG_CODE = "decision.wrong_code"
    DECISION_REFUSED = "decision.refused"
    DECISION_FAILED = "decision.failed"
    DECISION_CANCELLED = "decision.cancelled"
    # No answer (a timeout, a lost connection): it may have been applied. Then, once the
    # registry shows how it ended, the second entry says so (and who or what looked).
    DECISION_OUTCOME_UNKNOWN = "decision.outcome_unknown"
    DECISION_OUTCOME_KNOWN = "decision.outcome_known"
    PUBLISHED_DIGEST_MISMATCH = "stage.published_digest_mismatch"
    # Batches: several stages decided in one sitting; each stage's outcome is its own entry
    # above (its payload names the batch), held-back stages included.
    BATCH_CREATED = "batch.created"
    BATCH_FINISHED = "batch.finished"
    # Notifications: a team's reminder rate and webhook, a person's choice per team.
    TEAM_NOTIFICATIONS_CHANGED = "team.notifications_changed"
    TEAM_WEBHOOK_SET = "team.webhook_set"
    TEAM_WEBHOOK_REMOVED = "team.webhook_removed"
    NOTIFICATION_PREFERENCE_SET = "notifications.preference_set"
    # Team review: verdicts, line comments, the policy and what it asks at the click.
    REVIEW_SUBMITTED = "review.submitted"
    COMMENT_ADDED = "comment.added"
    COMMENT_REPLIED = "comment.replied"
    COMMENT_RESOLVED = "comment.resolved"
    COMMENT_UNRESOLVED = "comment.unresolved"
    TEAM_POLICY_CHANGED = "team.policy_changed"
    FINDINGS_ACKNOWLEDGED = "findings.acknowledged"
    PROFILE_NPM_USER_SET = "profile.staging_npm_user_set"
    # Tokens for the JSON API (reviews.api), made and revoked on the settings page or by command.
    API_TOKEN_CREATED = "api_token.created"  # noqa: S105 (an action's name, not a secret)
    API_TOKEN_REVOKED = "api_token.revoked"  # noqa: S105


@dataclass(frozen=True)
class Actor:
    """Who did it and from where; `SYSTEM` for the sync and other background work."""

    user: User | None = None
    ip: str | None = None
    user_agent: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest) -> Actor:
        user = getattr(request, "user", None)
        user = user if isinstance(user, User) else None
        return cls(
            user=user,
            ip=request.META.get("REMOTE_ADDR") or None,
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:400],
        )


SYSTEM = Actor()


class SecretInAuditPayload(ValueError):
    pass


def refuse_secrets(payload: Any, path: str = "payload") -> None:
    if isinstance(payload, dict):
        for key, value in payload.items():
            if any(word in str(key).lower() for word in SECRET_WORDS):
                raise SecretInAuditPayload(f"{path}.{key} looks like a secret; not recorded")
            refuse_secrets(value, f"{path}.{key}")
    elif isinstance(payload, list):
        for item in payload:
            refuse_secrets(item, path)


def normalise_ip(ip: str | None) -> str | None:
    """The address as its column stores it, so the hash covers what the row holds: Django's
    GenericIPAddressField (and PostgreSQL's inet) write an IPv4-mapped address as
    `::ffff:192.0.2.1` where Python writes `::ffff:c000:201`."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    return clean_ipv6_address(str(address)) if address.version == 6 else str(address)


def content_of(event: AuditEvent) -> dict[str, Any]:
    """Exactly what the hash covers (everything but the hash itself)."""
    return {
        "created_at": event.created_at.isoformat(timespec="microseconds"),
        "action": event.action,
        "user_id": event.user_id,
        "username": event.username,
        "npm_user": event.npm_user,
        "stage_id": event.stage_id,
        "stage_uuid": event.stage_uuid,
        "package_name": event.package_name,
        "version": event.version,
        "shasum": event.shasum,
        "target": event.target,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "registry_status": event.registry_status,
        "registry_message": event.registry_message,
        "payload": event.payload,
        "prev_hash": event.prev_hash,
    }


def hash_of(event: AuditEvent) -> str:
    canonical = json.dumps(content_of(event), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def lock_chain() -> None:
    # SQLite runs write transactions one at a time (settings use BEGIN IMMEDIATE); PostgreSQL
    # needs a lock so two writers never both read the same previous hash.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_ID])


@dataclass(frozen=True)
class Entry:
    """One entry to append, for `record_many` (the arguments of `record`)."""

    action: Action
    actor: Actor = SYSTEM
    stage: StagedVersion | None = None
    target: str = ""
    npm_user: str = ""
    registry_status: int | None = None
    registry_message: str = ""
    payload: dict[str, Any] = field(default_factory=dict)


def record(
    action: Action,
    actor: Actor = SYSTEM,
    *,
    stage: StagedVersion | None = None,
    target: str = "",
    npm_user: str = "",
    registry_status: int | None = None,
    registry_message: str = "",
    payload: dict[str, Any] | None = None,
) -> AuditEvent:
    entry = Entry(
        action,
        actor,
        stage=stage,
        target=target,
        npm_user=npm_user,
        registry_status=registry_status,
        registry_message=registry_message,
        payload=payload or {},
    )
    refuse_secrets(entry.payload)
    with transaction.atomic():
        lock_chain()
        event = _chained(entry, _chain_head())
        event.save()
    return event


def record_many(entries: Sequence[Entry], *, chain_locked: bool = False) -> list[AuditEvent]:
    """Append several entries at once: the chain is locked and its head read once, the entries
    are chained in memory (hashed exactly as `record` hashes one) and inserted together, in
    order. Every stage named must already have its row (its id is hashed). `chain_locked`: the
    caller took `lock_chain()` in this transaction already."""
    if not entries:
        return []
    for entry in entries:
        refuse_secrets(entry.payload)
    with transaction.atomic():
        if not chain_locked:
            lock_chain()
        prev_hash = _chain_head()
        events = []
        for entry in entries:
            event = _chained(entry, prev_hash)
            events.append(event)
            prev_hash = event.hash
        created = AuditEvent.objects.bulk_create(events)
        ids = [event.pk for event in created]
        if any(pk is None for pk in ids) or ids != sorted(ids):
            # verify_chain() walks the chain by id: an insert that numbered the entries in
            # another order would break it, so nothing of it is kept.
            raise RuntimeError("the audit entries were not numbered in the order they chain")
    return created


def _chain_head() -> str:
    head = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
    return head or GENESIS_HASH


def _chained(entry: Entry, prev_hash: str) -> AuditEvent:
    actor, stage = entry.actor, entry.stage
    event = AuditEvent(
        created_at=timezone.now(),
        action=str(entry.action),
        user=actor.user,
        username=actor.user.get_username() if actor.user else "",
        npm_user=storable_text(entry.npm_user),
        stage=stage,
        stage_uuid=str(stage.stage_id) if stage else "",
        package_name=stage.package_name if stage else "",
        version=stage.version if stage else "",
        shasum=stage.shasum if stage else "",
        target=storable_text(entry.target),
        ip=normalise_ip(actor.ip),
        user_agent=storable_text(actor.user_agent[:400]),
        registry_status=entry.registry_status,
        registry_message=storable_text(entry.registry_message[:2000]),
        # Reasons and registry answers may quote a tarball: stored (and hashed) storable.
        payload=storable(json.loads(json.dumps(entry.payload, sort_keys=True))),
        prev_hash=prev_hash,
    )
    event.hash = hash_of(event)
    return event


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    count: int
    problem: str = ""
    entry_id: int | None = None


def entries_in_order() -> Iterator[AuditEvent]:
    return AuditEvent.objects.order_by("id").iterator(chunk_size=2000)


def verify_chain() -> ChainReport:
    expected_prev, previous_id, count = GENESIS_HASH, None, 0
    for event in entries_in_order():
        if event.prev_hash != expected_prev:
            where = f"between entry #{previous_id} and" if previous_id else "before"
            return ChainReport(
                False,
                count,
                f"the chain breaks {where} entry #{event.pk}: an entry was removed or "
                "inserted there, or the one before was rewritten",
                event.pk,
            )
        if hash_of(event) != event.hash:
            return ChainReport(
                False, count, f"entry #{event.pk} was changed after it was written", event.pk
            )
        expected_prev, previous_id = event.hash, event.pk
        count += 1
    return ChainReport(True, count)
