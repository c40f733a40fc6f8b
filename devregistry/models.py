"""The registry's state: plain records, kept in memory and saved record by record (store.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

if TYPE_CHECKING:
    from _collections_abc import dict_items, dict_values

STATE_FORMAT = 1

V = TypeVar("V")
D = TypeVar("D")


class Records(dict[str, V], Generic[V]):
    """Records by key that remember, while `tracking`, every key a write may have changed:
    read, set or deleted (iterating the values counts as reading them all). The store saves
    those and only those, so a write costs what it touches, not the whole state."""

    def __init__(self, items: Iterable[tuple[str, V]] = ()) -> None:
        super().__init__(items)
        self.tracking = False
        self.touched: set[str] = set()

    def _touch(self, key: str) -> None:
        if self.tracking:
            self.touched.add(key)

    def __getitem__(self, key: str) -> V:
        value = super().__getitem__(key)
        if self.tracking:
            self.touched.add(key)
        return value

    @overload
    def get(self, key: str, default: None = None) -> V | None: ...
    @overload
    def get(self, key: str, default: V | D) -> V | D: ...
    def get(self, key: str, default: object = None) -> object:
        if self.tracking and key in self:
            self.touched.add(key)
        return super().get(key, default)

    def __setitem__(self, key: str, value: V) -> None:
        self._touch(key)
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self._touch(key)
        super().__delitem__(key)

    def pop(self, key: str, *default: Any) -> Any:
        self._touch(key)
        return super().pop(key, *default)

    def setdefault(self, key: str, default: Any = None) -> Any:
        self._touch(key)
        return super().setdefault(key, default)

    def popitem(self) -> tuple[str, V]:
        key, value = super().popitem()
        self._touch(key)
        return key, value

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def values(self) -> dict_values[str, V]:
        self._touch_all()
        return super().values()

    def items(self) -> dict_items[str, V]:
        self._touch_all()
        return super().items()

    def clear(self) -> None:
        self._touch_all()
        super().clear()

    def _touch_all(self) -> None:
        if self.tracking:
            self.touched.update(self.keys())

    def restore(self, key: str, value: V | None) -> None:
        """Puts back what the database holds for `key` (None: nothing), untracked."""
        if value is None:
            super().pop(key, None)
        else:
            super().__setitem__(key, value)


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
    # How many times the code of `last_otp_step` was accepted, for the max-uses switch.
    otp_step_uses: int = 0
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


class StageRecords(Records[Stage]):
    """Stages by id, with an index of their (package, version) for the registry's one version
    index (a stage's package and version never change in place)."""

    def __init__(self, items: Iterable[tuple[str, Stage]] = ()) -> None:
        self._by_version: dict[tuple[str, str], str] = {}
        super().__init__()
        for key, stage in items:
            self.load(key, stage)

    def load(self, key: str, stage: Stage) -> None:
        """Adds a stage read from storage, untracked."""
        self.restore(key, stage)

    def has_version(self, package_name: str, version: str) -> bool:
        key = self._by_version.get((package_name, version))
        if key is None or not dict.__contains__(self, key):
            return False
        stage = dict.__getitem__(self, key)
        return stage.package_name == package_name and stage.version == version

    def __setitem__(self, key: str, value: Stage) -> None:
        self._unindex(key)
        super().__setitem__(key, value)
        self._by_version[(value.package_name, value.version)] = key

    def __delitem__(self, key: str) -> None:
        self._unindex(key)
        super().__delitem__(key)

    def pop(self, key: str, *default: Any) -> Any:
        self._unindex(key)
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Stage]:
        key, value = super().popitem()
        self._by_version.pop((value.package_name, value.version), None)
        return key, value

    def clear(self) -> None:
        super().clear()
        self._by_version.clear()

    def restore(self, key: str, value: Stage | None) -> None:
        self._unindex(key)
        super().restore(key, value)
        if value is not None:
            self._by_version[(value.package_name, value.version)] = key

    def _unindex(self, key: str) -> None:
        if dict.__contains__(self, key):
            old = dict.__getitem__(self, key)
            if self._by_version.get((old.package_name, old.version)) == key:
                del self._by_version[(old.package_name, old.version)]


@dataclass
class State:
    users: Records[User] = field(default_factory=Records)
    tokens: Records[Token] = field(default_factory=Records)
    packages: Records[Package] = field(default_factory=Records)
    stages: StageRecords = field(default_factory=StageRecords)
    web_challenges: Records[WebChallenge] = field(default_factory=Records)
    next_seq: int = 1

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"format": STATE_FORMAT, "next_seq": self.next_seq}
        for kind in ("users", "tokens", "packages", "stages", "web_challenges"):
            records: Records[Any] = getattr(self, kind)
            doc[kind] = {k: dataclasses.asdict(v) for k, v in dict.items(records)}
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> State:
        if doc.get("format") != STATE_FORMAT:
            raise ValueError(f"unknown state format {doc.get('format')!r}")
        return cls(
            users=Records((k, User(**v)) for k, v in doc["users"].items()),
            tokens=Records((k, Token(**v)) for k, v in doc["tokens"].items()),
            packages=Records((k, Package(**v)) for k, v in doc["packages"].items()),
            stages=StageRecords((k, Stage(**v)) for k, v in doc["stages"].items()),
            web_challenges=Records(
                (k, WebChallenge(**v)) for k, v in doc["web_challenges"].items()
            ),
            next_seq=doc["next_seq"],
        )
