"""Second factor: TOTP codes (RFC 6238) and security-key web challenges.

A user with an OTP secret must send `npm-otp` to approve, reject, publish or move a dist-tag.
The value is either a TOTP code (SHA-1, 6 digits, 30 s steps, one step either side accepted)
or the token a completed web challenge handed out, which works once.

`--compat other` checks strictly, as another open-source implementation does: no security-key
flow; a TOTP code only once (a step newer than the last accepted); a recovery code (16 hex
digits) once; after five failed codes the account is locked for five minutes; and a missing
code, a wrong one, a replayed one and a right one during the lock-out all get the same answer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import struct
import time
import uuid
from datetime import UTC, datetime, timedelta

from devregistry.errors import RegistryError
from devregistry.models import State, User, WebChallenge

STEP_SECONDS = 30
DIGITS = 6
WINDOW = 1  # accepted steps either side of now, for clock drift
CHALLENGE_LIFETIME = timedelta(minutes=15)
MAX_FAILURES = 5  # strict mode: failed codes before the lock-out
LOCKOUT = timedelta(minutes=5)


class SecondFactorRefused(RegistryError):
    """A refused code. Raised out of the write that checked it (which is discarded); when it is
    a failure that counts (strict mode), the server records it in a write of its own."""

    def __init__(self, error: RegistryError, user: str, *, counts: bool) -> None:
        super().__init__(error.status, error.message, headers=error.headers, body=error.body)
        self.user = user
        self.counts = counts


class WebChallengeNeeded(Exception):
    """The client asked for the security-key flow (`npm-auth-type: web`, no `npm-otp`).

    Raised out of the write that checked the factor (which is discarded); the server then
    records a new challenge in a write of its own and answers 401 with authUrl/doneUrl.
    """

    def __init__(self, user: str) -> None:
        super().__init__(user)
        self.user = user


def new_secret() -> str:
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii")


def totp(secret: str, step: int) -> str:
    key = base64.b32decode(_normalise(secret), casefold=True)
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**DIGITS).zfill(DIGITS)


def current_step(now: float | None = None) -> int:
    return int(time.time() if now is None else now) // STEP_SECONDS


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step `code` belongs to, within the accepted window, or None."""
    if len(code) != DIGITS or not code.isdigit():
        return None
    here = current_step(now)
    for step in range(here - WINDOW, here + WINDOW + 1):
        if hmac.compare_digest(totp(secret, step), code):
            return step
    return None


def valid_secret(secret: str) -> bool:
    try:
        base64.b32decode(_normalise(secret), casefold=True)
    except ValueError:
        return False
    return bool(secret.strip())


def require_second_factor(
    state: State,
    user: User,
    otp: str | None,
    auth_type: str | None,
    *,
    refuse_reuse: bool,
    strict: bool = False,
    max_uses: int | None = None,
) -> None:
    """Checks the factor for a write; records its use in `state` (inside the caller's write).

    `max_uses`: a TOTP code is accepted that many times, then refused as used (the switch
    `DIR/otp-max-uses`, to test a portal that re-sends one code until it is refused)."""
    if user.otp_secret is None:
        return
    if strict:
        _require_strictly(user, (otp or "").strip().replace(" ", ""))
        return
    otp = (otp or "").strip().replace(" ", "")
    if not otp:
        if (auth_type or "").lower() == "web":
            raise WebChallengeNeeded(user.name)
        raise _otp_refusal("This operation requires a one-time password.")
    if _use_web_token(state, user, otp):
        return
    step = matching_step(user.otp_secret, otp)
    if step is None:
        raise _otp_refusal("Invalid one-time password.")
    if refuse_reuse and step <= user.last_otp_step:
        raise _otp_refusal("This one-time password has already been used; wait for the next one.")
    _count_use(user, step, max_uses)


def _count_use(user: User, step: int, max_uses: int | None) -> None:
    if step > user.last_otp_step:
        user.last_otp_step, user.otp_step_uses = step, 0
    if max_uses is not None and (step < user.last_otp_step or user.otp_step_uses >= max_uses):
        raise _otp_refusal("This one-time password has already been used; wait for the next one.")
    user.otp_step_uses += 1


def _require_strictly(user: User, otp: str) -> None:
    assert user.otp_secret is not None
    if not otp:
        raise SecondFactorRefused(_same_challenge(), user.name, counts=False)
    if _locked(user):
        raise SecondFactorRefused(_same_challenge(), user.name, counts=False)
    step = matching_step(user.otp_secret, otp)
    if step is not None and step > user.last_otp_step:
        user.last_otp_step = step
    elif not _use_recovery_code(user, otp):
        raise SecondFactorRefused(_same_challenge(), user.name, counts=True)
    user.otp_failures = 0


def record_failure(state: State, name: str) -> None:
    """One more failed code (strict mode); the fifth locks the account for LOCKOUT."""
    user = state.users.get(name)
    if user is None:
        return
    user.otp_failures += 1
    if user.otp_failures >= MAX_FAILURES:
        user.otp_failures = 0
        user.otp_locked_until = (datetime.now(UTC) + LOCKOUT).isoformat()


def _locked(user: User) -> bool:
    until = user.otp_locked_until
    return until is not None and datetime.now(UTC) < datetime.fromisoformat(until)


def recovery_code_key(code: str) -> str:
    """A recovery code as stored: SHA-256 of its 16 hex digits, hyphens dropped, lower case."""
    return hashlib.sha256(code.replace("-", "").lower().encode()).hexdigest()


def _use_recovery_code(user: User, otp: str) -> bool:
    if not re.fullmatch(r"[0-9A-Fa-f]{16}", otp.replace("-", "")):
        return False
    key = recovery_code_key(otp)
    for stored in user.recovery_codes:
        if hmac.compare_digest(stored, key):
            user.recovery_codes.remove(stored)
            return True
    return False


def _same_challenge() -> RegistryError:
    # One answer for every refusal, so a caller cannot tell a wrong code from a lock-out.
    return RegistryError(
        401,
        "This operation requires a one-time password.",
        headers={"www-authenticate": "OTP"},
    )


def open_web_challenge(state: State, user: str) -> WebChallenge:
    # npm sends `npm-auth-type: web` by default, so challenges pile up: drop the stale ones.
    for stale in [c.id for c in state.web_challenges.values() if _expired(c)]:
        del state.web_challenges[stale]
    challenge = WebChallenge(id=str(uuid.uuid4()), user=user)
    state.web_challenges[challenge.id] = challenge
    return challenge


def live_web_challenge(state: State, challenge_id: str) -> WebChallenge | None:
    """The challenge, unless it is unknown or older than CHALLENGE_LIFETIME."""
    challenge = state.web_challenges.get(challenge_id)
    return None if challenge is None or _expired(challenge) else challenge


def web_challenge_refusal(challenge: WebChallenge, base_url: str) -> RegistryError:
    auth_url = f"{base_url}-/auth/{challenge.id}"
    done_url = f"{base_url}-/v1/done?authId={challenge.id}"
    return RegistryError(
        401,
        "This operation requires a one-time password or a security key.",
        headers={
            "www-authenticate": "OTP",
            "npm-notice": f"Open {auth_url} to use your security key for authentication",
        },
        body={"authUrl": auth_url, "doneUrl": done_url},
    )


def complete_web_challenge(challenge: WebChallenge) -> None:
    if challenge.token is None:
        # 64 hex characters: the shape npm's own OTP prompt accepts besides digits.
        challenge.token = secrets.token_hex(32)


def _use_web_token(state: State, user: User, otp: str) -> bool:
    for challenge in state.web_challenges.values():
        if challenge.user != user.name or challenge.token is None or _expired(challenge):
            continue
        if hmac.compare_digest(challenge.token, otp):
            if challenge.used:
                raise _otp_refusal(
                    "This one-time password (a security-key token) has already been used."
                )
            challenge.used = True
            return True
    return False


def _otp_refusal(message: str) -> RegistryError:
    return RegistryError(
        401,
        message,
        headers={
            "www-authenticate": "OTP",
            "npm-notice": (
                "Two-factor authentication is required: send the one-time password from your "
                "authenticator app (npm --otp=123456), or use your security key."
            ),
        },
    )


def _expired(challenge: WebChallenge) -> bool:
    return datetime.fromisoformat(challenge.created) < datetime.now(UTC) - CHALLENGE_LIFETIME


def _normalise(secret: str) -> str:
    secret = secret.strip().replace(" ", "").upper()
    return secret + "=" * (-len(secret) % 8)
