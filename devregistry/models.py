"""The registry's state: plain records, saved as one JSON document (see store.py)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

STATE_FORMAT = 1


def now_iso() -> str:
    """ISO 8601 in UTC with milliseconds and a Z, the registry's timestamp format."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class User:
    name: str
    email: str
    password_hash: str
    otp_secret: str | None = None
    # The highest TOTP time step accepted so far, for --refuse-otp-reuse.
    last_otp_step: int = -1
    # `--compat other` only: SHA-256 of each unused recovery code, failed codes since the last
    # accepted one, and the end of a lock-out (ISO 8601) once there were too many.
    recovery_codes: list[str] = field(default_factory=list)
    otp_failures: int = 0
    otp_locked_until: str | None = None
    created: str = field(default_factory=now_iso)


@dataclass
class Token:
    """A bearer token, stored by its SHA-256 only."""

    user: str
    read_only: bool = False
    automation: bool = False
    created: str = field(default_factory=now_iso)
    revoked: bool = False


@dataclass
class Package:
    name: str
    maintainers: list[str]
    # version -> manifest (package.json plus _id, _npmUser, dist without the tarball URL,
    # which is built per request from the public URL).
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    dist_tags: dict[str, str] = field(default_factory=dict)
    time: dict[str, str] = field(default_factory=dict)


@dataclass
class Stage:
    id: str
    package_name: str
    version: str
    tag: str
    created_at: str
    actor: str
    actor_type: str
    access: str
    shasum: str
    integrity: str
    manifest: dict[str, Any]
    # Order of staging; createdAt can tie at millisecond precision.
    seq: int

    def to_api(self) -> dict[str, str]:
        """Exactly the fields of stage.yaml's StagePackageVersion."""
        return {
            "id": self.id,
            "packageName": self.package_name,
            "version": self.version,
            "tag": self.tag,
            "createdAt": self.created_at,
            "actor": self.actor,
            "actorType": self.actor_type,
            "access": self.access,
            "shasum": self.shasum,
        }


@dataclass
class WebChallenge:
    """A security-key challenge: the person presses the button at authUrl, npm polls doneUrl."""

    id: str
    user: str
    created: str = field(default_factory=now_iso)
    # Set when the button is pressed; accepted once as npm-otp for `user`.
    token: str | None = None
    used: bool = False


@dataclass
class State:
    users: dict[str, User] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    packages: dict[str, Package] = field(default_factory=dict)
    stages: dict[str, Stage] = field(default_factory=dict)
    web_challenges: dict[str, WebChallenge] = field(default_factory=dict)
    next_seq: int = 1

    def to_json(self) -> dict[str, Any]:
        return {"format": STATE_FORMAT, **dataclasses.asdict(self)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> State:
        if doc.get("format") != STATE_FORMAT:
            raise ValueError(f"unknown state format {doc.get('format')!r}")
        return cls(
            users={k: User(**v) for k, v in doc["users"].items()},
            tokens={k: Token(**v) for k, v in doc["tokens"].items()},
            packages={k: Package(**v) for k, v in doc["packages"].items()},
            stages={k: Stage(**v) for k, v in doc["stages"].items()},
            web_challenges={k: WebChallenge(**v) for k, v in doc["web_challenges"].items()},
            next_seq=doc["next_seq"],
        )
