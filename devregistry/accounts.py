"""Users, passwords and bearer tokens."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from devregistry import otp
from devregistry.models import State, Token, User

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,213}$")
_ITERATIONS = 20_000  # a dev registry: cheap enough for tests, still not plain text


@dataclass(frozen=True)
class Principal:
    """Who a request's bearer token speaks for."""

    user: User
    read_only: bool
    automation: bool

    @property
    def actor_type(self) -> str:
        return "trusted automation" if self.automation else "user"


def valid_username(name: str) -> bool:
    return bool(_NAME.match(name))


def hash_password(password: str) -> str:
    salt = secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), _ITERATIONS)
    return f"pbkdf2_sha256${_ITERATIONS}${salt}${digest.hex()}"


def check_password(user: User, password: str) -> bool:
    _, iterations, salt, expected = user.password_hash.split("$")
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iterations))
    return hmac.compare_digest(digest.hex(), expected)


def add_user(
    state: State, name: str, password: str, email: str | None = None, otp_secret: str | None = None
) -> User:
    if not valid_username(name):
        raise ValueError(f"invalid user name {name!r}: lowercase letters, digits, . _ - only")
    if name in state.users:
        raise ValueError(f"user {name!r} already exists")
    if not password:
        raise ValueError("a password is required")
    if otp_secret is not None and not otp.valid_secret(otp_secret):
        raise ValueError("the OTP secret must be base32")
    user = User(
        name=name,
        email=email or f"{name}@example.com",
        password_hash=hash_password(password),
        otp_secret=otp_secret,
    )
    state.users[name] = user
    return user


def create_token(
    state: State, user: str, *, read_only: bool = False, automation: bool = False
) -> str:
    if user not in state.users:
        raise ValueError(f"no user {user!r}")
    token = "npm_" + secrets.token_hex(18)
    state.tokens[_token_key(token)] = Token(user=user, read_only=read_only, automation=automation)
    return token


def principal_for(state: State, authorization: str | None) -> Principal | None:
    """The principal behind an `Authorization: Bearer <token>` header, if the token is known
    and not revoked."""
    record = _token_record(state, authorization)
    if record is None or record.revoked or record.user not in state.users:
        return None
    return Principal(state.users[record.user], record.read_only, record.automation)


def is_revoked(state: State, authorization: str | None) -> bool:
    record = _token_record(state, authorization)
    return record is not None and record.revoked


def revoke_token(state: State, token: str) -> bool:
    """Marks a token revoked (kept, so the registry can tell it from one it never issued)."""
    record = state.tokens.get(_token_key(token.strip()))
    if record is None:
        return False
    record.revoked = True
    return True


def new_recovery_codes(state: State, user: str, count: int = 5) -> list[str]:
    """Replaces the user's recovery codes with `count` new ones (16 hex digits each)."""
    codes = [secrets.token_hex(8) for _ in range(count)]
    state.users[user].recovery_codes = [otp.recovery_code_key(code) for code in codes]
    return codes


def _token_record(state: State, authorization: str | None) -> Token | None:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return state.tokens.get(_token_key(token.strip()))


def _token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
