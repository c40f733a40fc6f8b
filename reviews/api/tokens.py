"""API tokens: made, revoked, and checked on every API request.

A token is `grn_` and 43 characters of `secrets.token_urlsafe(32)` (256 random bits): the prefix
lets secret scanners and people recognise it. Only its SHA-256 is stored (a fast hash is enough
for a random secret of that size; there is nothing to guess), so a copy of the database lets
nobody call the API. The token is shown once, when it is made.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from reviews.audit import trail as audit
from reviews.audit.trail import Action, Actor
from reviews.models import ApiToken

PREFIX = "grn_"
RANDOM_BYTES = 32
HINT_LENGTH = len(PREFIX) + 8
MAX_SECRET_LENGTH = 200
MAX_EXPIRY_DAYS = 3650
# last_used_at is written at most this often per token, not on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class NewToken:
    record: ApiToken
    secret: str  # shown once, never stored


class TokenRefused(Exception):
    """Why a presented token does not authenticate: a code for machines, words for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(
    user: User,
    name: str,
    actor: Actor,
    *,
    expires_in_days: int | None = None,
    now: datetime | None = None,
) -> NewToken:
    """A new token for `user`, and its audit entry, in one transaction."""
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        raise ValueError(f"A token expires after 1 to {MAX_EXPIRY_DAYS} days, or never.")
    now = now or timezone.now()
    secret = PREFIX + secrets.token_urlsafe(RANDOM_BYTES)
    expires_at = now + timedelta(days=expires_in_days) if expires_in_days else None
    with transaction.atomic():
        record = ApiToken.objects.create(
            user=user,
            name=name.strip()[:100],
            digest=digest_of(secret),
            hint=secret[:HINT_LENGTH],
            created_at=now,
            expires_at=expires_at,
        )
        audit.record(
            Action.API_TOKEN_CREATED,
            actor,
            target=f"api-token:{record.pk}",
            payload={
                "owner": user.get_username(),
                "name": record.name,
                "hint": record.hint,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
    return NewToken(record, secret)


def revoke(token: ApiToken, actor: Actor) -> bool:
    """Revoke once; False if it was revoked already (nothing is recorded twice)."""
    with transaction.atomic():
        revoked = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if revoked:
            audit.record(
                Action.API_TOKEN_REVOKED,
                actor,
                target=f"api-token:{token.pk}",
                payload={
                    "owner": token.user.get_username(),
                    "name": token.name,
                    "hint": token.hint,
                },
            )
    return bool(revoked)


def tokens_of(user: User) -> list[ApiToken]:
    return list(ApiToken.objects.filter(user=user))


def authenticate(secret: str, now: datetime | None = None) -> ApiToken:
    """The live token this secret names, its owner loaded; TokenRefused says why not."""
    now = now or timezone.now()
    if not secret.startswith(PREFIX) or len(secret) > MAX_SECRET_LENGTH:
        raise TokenRefused(
            "invalid_token", f"That is not a Greenroom API token (they start with {PREFIX})."
        )
    token = ApiToken.objects.select_related("user").filter(digest=digest_of(secret)).first()
    if token is None:
        raise TokenRefused("invalid_token", "This API token is not known.")
    if token.revoked_at is not None:
        revoked = f"{token.revoked_at:%Y-%m-%d}"
        raise TokenRefused("token_revoked", f"This API token was revoked on {revoked}.")
    if token.is_expired(now):
        assert token.expires_at is not None
        expired = f"{token.expires_at:%Y-%m-%d}"
        raise TokenRefused("token_expired", f"This API token expired on {expired}.")
    if not token.user.is_active:
        raise TokenRefused("account_inactive", "The owner of this API token can no longer sign in.")
    mark_used(token, now)
    return token


def mark_used(token: ApiToken, now: datetime) -> None:
    ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ).update(last_used_at=now)
