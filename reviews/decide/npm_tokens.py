"""People's own npm tokens: checked with whoami, encrypted at rest, used only to decide stages.

A token is encrypted with the first of GREENROOM_TOKEN_KEYS and decrypted with any of them
(MultiFernet), so keys rotate: put a new key first, run `manage.py rotate_token_keys`, then drop
the old one. The plaintext lives only inside the functions below and the RegistryClient they
make; the portal shows the npm user name, never the token.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from reviews.audit import trail as audit
from reviews.audit.trail import Action, Actor
from reviews.mirror.registry import (
    Forbidden,
    IpNotAllowed,
    RegistryClient,
    RegistryError,
    Timeout,
    Unauthorized,
)
from reviews.models import NpmToken, WebAuthChallenge

logger = logging.getLogger(__name__)

# What an npm token can look like: header-safe, no spaces. Anything else is refused before it
# reaches a header (where requests would quote the bad value in its error message).
TOKEN_RE = re.compile(r"[A-Za-z0-9._~+/=:-]{8,2048}")
# How precisely "last used" is kept: at most one write a minute.
USED_AT_PRECISION = timedelta(minutes=1)


class TokenError(Exception):
    """Linking or using a token failed; the message is meant for the person."""


class TokenUnreadable(TokenError):
    """No key in GREENROOM_TOKEN_KEYS decrypts the stored token (a key was dropped too early)."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def fernet() -> MultiFernet:
    keys = tuple(settings.GREENROOM_TOKEN_KEYS)
    if not keys:
        raise ImproperlyConfigured("GREENROOM_TOKEN_KEYS is empty")
    return _fernet(keys)


@sensitive_variables()
def encrypt(token: str) -> str:
    return fernet().encrypt(token.encode()).decode()


@sensitive_variables()
def decrypt(ciphertext: str) -> str:
    try:
        return fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise TokenUnreadable(
            "Your linked npm token can no longer be read by the portal; link it again."
        ) from None


@sensitive_variables()
def registry_client(token: str = "", *, timeout: Timeout | None = None) -> RegistryClient:
    """A client for the configured registry, as the owner of `token`."""
    if not settings.GREENROOM_REGISTRY_URL:
        raise TokenError("No registry is configured (GREENROOM_REGISTRY_URL).")
    return RegistryClient(settings.GREENROOM_REGISTRY_URL, token, timeout=timeout)


@dataclass(frozen=True)
class Linked:
    """A person's linked token, decrypted for one use. Never logged: its repr hides the token."""

    record: NpmToken
    token: str

    def __repr__(self) -> str:
        return f"<Linked npm user {self.record.npm_user}>"

    @property
    def npm_user(self) -> str:
        return self.record.npm_user

    @sensitive_variables()
    def client(self, *, timeout: Timeout | None = None) -> RegistryClient:
        return registry_client(self.token, timeout=timeout)

    def mark_used(self) -> None:
        # To the minute: a batch uses the token for every stage, and one write a minute will do.
        now = timezone.now()
        last = self.record.last_used_at
        if last is not None and last >= now - USED_AT_PRECISION:
            return
        NpmToken.objects.filter(pk=self.record.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - USED_AT_PRECISION)
        ).update(last_used_at=now)


def linked_record(user: User) -> NpmToken | None:
    return NpmToken.objects.filter(user=user).first()


@sensitive_variables()
def linked(user: User) -> Linked | None:
    """The person's token, decrypted; None if they have not linked one."""
    record = linked_record(user)
    if record is None:
        return None
    return Linked(record, decrypt(record.encrypted))


# -- State changes --------------------------------------------------------------------------------


@sensitive_variables()
def link(user: User, token: str, actor: Actor) -> NpmToken:
    """Check the token with the registry's whoami, then store it encrypted, replacing any
    token linked before. Raises TokenError with words for the person."""
    token = token.strip()
    if not TOKEN_RE.fullmatch(token):
        raise TokenError("That does not look like an npm token: paste the whole token, no spaces.")
    try:
        with registry_client(token) as client:
            npm_user = client.whoami()
    except IpNotAllowed:
        raise TokenError(
            "The registry refused this token from the portal's address: its IP allowlist does "
            "not include this server."
        ) from None
    except (Unauthorized, Forbidden):
        # Registries answer 401 or 403 for a revoked token: either way it is not usable.
        raise TokenError(
            "The registry did not accept this token (wrong, revoked or expired): create a new "
            "token and link that one."
        ) from None
    except RegistryError as e:
        raise TokenError(
            f"The registry could not check the token ({_said(e)}); nothing was linked. Try again."
        ) from None
    with transaction.atomic():
        replaced = NpmToken.objects.filter(user=user).delete()[0] > 0
        record = NpmToken.objects.create(
            user=user, npm_user=npm_user, encrypted=encrypt(token), linked_at=timezone.now()
        )
        audit.record(
            Action.NPM_ACCOUNT_LINKED, actor, npm_user=npm_user, payload={"replaced": replaced}
        )
    logger.info("%s linked the npm account %s", user, npm_user)
    return record


def unlink(user: User, actor: Actor) -> bool:
    """Delete the person's token (and any security-key challenge waiting on it)."""
    with transaction.atomic():
        record = NpmToken.objects.select_for_update().filter(user=user).first()
        if record is None:
            return False
        record.delete()
        WebAuthChallenge.objects.filter(user=user).delete()
        audit.record(Action.NPM_ACCOUNT_UNLINKED, actor, npm_user=record.npm_user)
    logger.info("%s unlinked the npm account %s", user, record.npm_user)
    return True


# -- Refused codes: a count and a time, never a code ----------------------------------------------

# Registries lock an account for a few minutes after about five refused codes; the page warns
# from the third refused within this window.
CODE_FAILURE_WINDOW = timedelta(minutes=15)
CODE_FAILURES_LOCK = 5
CODE_FAILURES_WARN = 3


def record_code_failure(record: NpmToken) -> int:
    """One more refused code for this person; how many within CODE_FAILURE_WINDOW now."""
    now = timezone.now()
    fresh = NpmToken.objects.filter(pk=record.pk).filter(
        code_failures_since__gte=now - CODE_FAILURE_WINDOW
    )
    if not fresh.update(code_failures=F("code_failures") + 1):
        NpmToken.objects.filter(pk=record.pk).update(code_failures=1, code_failures_since=now)
    return recent_code_failures(record)


def clear_code_failures(record: NpmToken) -> None:
    # Nothing sent when there was nothing to clear as the record was read (a batch succeeds
    # many times in a row); a failure counted meanwhile elsewhere ages out of its window.
    if not record.code_failures and record.code_failures_since is None:
        return
    NpmToken.objects.filter(pk=record.pk).exclude(
        code_failures=0, code_failures_since__isnull=True
    ).update(code_failures=0, code_failures_since=None)


def recent_code_failures(record: NpmToken) -> int:
    fresh = (
        NpmToken.objects.filter(pk=record.pk)
        .values_list("code_failures", "code_failures_since")
        .first()
    )
    if fresh is None or fresh[1] is None or fresh[1] < timezone.now() - CODE_FAILURE_WINDOW:
        return 0
    return fresh[0]


def lock_out_warning(failures: int) -> str:
    """What to say before (or after) a registry may lock the account, or nothing."""
    if failures >= CODE_FAILURES_LOCK:
        return (
            f"{failures} codes were refused in the last {_minutes(CODE_FAILURE_WINDOW)}: your npm "
            "account may now be locked for a few minutes. Wait before you type another code."
        )
    if failures >= CODE_FAILURES_WARN:
        left = CODE_FAILURES_LOCK - failures
        more = {1: "One more failure", 2: "Two more failures"}.get(left, f"{left} more failures")
        return f"{more} may lock your npm account for a few minutes."
    return ""


def _minutes(window: timedelta) -> str:
    return f"{int(window.total_seconds() // 60)} minutes"


@dataclass(frozen=True)
class Rotation:
    rotated: int
    unreadable: list[int]


def rotate_keys() -> Rotation:
    """Re-encrypt every stored token with the first key. Tokens no key can read are listed
    (by row id) and left as they are."""
    multi = fernet()
    rotated, unreadable = 0, []
    for record in NpmToken.objects.order_by("pk").iterator():
        try:
            fresh = multi.rotate(record.encrypted.encode()).decode()
        except InvalidToken:
            unreadable.append(record.pk)
            continue
        NpmToken.objects.filter(pk=record.pk, encrypted=record.encrypted).update(encrypted=fresh)
        rotated += 1
    audit.record(
        Action.NPM_KEYS_ROTATED,
        payload={"rotated": rotated, "unreadable": len(unreadable)},
    )
    return Rotation(rotated, unreadable)


def _said(error: RegistryError) -> str:
    if error.status is None:
        return error.message
    return f"{error.status} {error.message}".strip()
