"""Approve/reject tests: a live dev registry wired into settings, npm people with TOTP 2FA, the
portal personas (tests/personas.py), and a count of what reached the registry.

npm side: `ci` stages (no 2FA, it is automation), `alice` and `bob` maintain @acme/* with TOTP,
`mallory` has TOTP but maintains nothing. The portal's sync reads with ci's read-only token.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyotp
import pytest
from django.conf import LazySettings
from django.test import Client
from django.urls import reverse

import devregistry.api
from devregistry.routing import Context
from devregistry.store import Store
from devregistry.testing import LiveRegistry
from devregistry.wire import Request, Response
from reviews.audit.trail import Actor
from reviews.decide import npm_tokens
from reviews.mirror import sync
from reviews.mirror.registry import RegistryClient
from reviews.models import StagedVersion
from tests.support import packages
from tests.support.openapi import StageTraffic

APPROVE_PATH = r"/-/stage/[0-9a-f-]+/approve"
STAGE_PATH = r"/-/stage/[0-9a-f-]+"


@dataclass
class NpmPerson:
    name: str
    token: str
    otp_secret: str

    def code(self, offset_steps: int = 0) -> str:
        """The TOTP code of now, or of `offset_steps` 30-second steps away."""
        return str(pyotp.TOTP(self.otp_secret).at(time.time() + 30 * offset_steps))

    def wrong_code(self) -> str:
        """A code that is none of the accepted window's (now, one step before or after)."""
        accepted = {self.code(step) for step in (-1, 0, 1)}
        return next(c for c in ("000000", "111111", "222222", "333333") if c not in accepted)


@dataclass
class Traffic:
    """Every request that reached the registry's routes (injected faults never do)."""

    seen: list[tuple[str, str, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Set `hold` and approve requests wait at the registry until `release` is set.
    hold: bool = False
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def count(self, method: str, path_pattern: str, *, with_factor: bool | None = None) -> int:
        with self.lock:
            return sum(
                1
                for m, path, factor in self.seen
                if m == method
                and re.fullmatch(path_pattern, path)
                and (with_factor is None or factor == with_factor)
            )

    def approvals(self, *, with_factor: bool | None = None) -> int:
        return self.count("POST", APPROVE_PATH, with_factor=with_factor)

    def rejections(self) -> int:
        return self.count("DELETE", STAGE_PATH)


class Registry:
    """The registry side: people, staging, and what happens there behind the portal's back."""

    def __init__(self, live: LiveRegistry, traffic: Traffic) -> None:
        self.live = live
        self.url = live.url
        self.traffic = traffic
        live.add_user("ci")
        self.ci_token = live.token("ci")
        self.sync_token = live.token("ci", read_only=True)
        self.people = {name: self._person(name) for name in ("alice", "bob", "mallory")}

    def _person(self, name: str) -> NpmPerson:
        secret = pyotp.random_base32()
        self.live.add_user(name, otp_secret=secret)
        return NpmPerson(name, self.live.token(name), secret)

    @property
    def other_mode(self) -> bool:
        return self.live.compat == "other"

    @property
    def alice(self) -> NpmPerson:
        return self.people["alice"]

    @property
    def bob(self) -> NpmPerson:
        return self.people["bob"]

    @property
    def mallory(self) -> NpmPerson:
        return self.people["mallory"]

    def stage(
        self, name: str = "@acme/widget", version: str = "1.0.0", tag: str = "latest"
    ) -> StagedVersion:
        """Stage at the registry (as CI does), then let the portal's sync record it and
        download and verify its tarball."""
        stage_id = packages.stage(self.url, self.ci_token, name, version, tag=tag)
        self.live.add_owner(name, "alice")
        self.live.add_owner(name, "bob")
        with RegistryClient(self.url, self.sync_token, timeout=5) as client:
            recorded = sync.record_new_stage(client.get_stage(stage_id))
            assert recorded is not None
            sync.download_stage(recorded.pk, client)
        return StagedVersion.objects.get(pk=recorded.pk)

    def publish(self, name: str, version: str, tag: str = "latest") -> None:
        packages.publish(self.url, self.ci_token, name, version, tag=tag)

    def approve_elsewhere(self, stage: StagedVersion) -> None:
        with RegistryClient(self.url, self.ci_token, timeout=5) as client:
            client.approve_stage(stage.stage_id)

    def packument(self, name: str) -> dict[str, Any]:
        with RegistryClient(self.url, timeout=5) as client:
            return client.get_packument(name).raw

    def still_staged(self, stage: StagedVersion) -> bool:
        with Store(self.live.data_dir).read() as state:
            return str(stage.stage_id) in state.stages

    def revoke_tokens_of(self, name: str) -> None:
        """Revoked, not forgotten: a registry may answer a revoked token differently."""
        with Store(self.live.data_dir).write() as state:
            for token in state.tokens.values():
                if token.user == name:
                    token.revoked = True

    def reject_elsewhere(self, stage: StagedVersion) -> None:
        with RegistryClient(self.url, self.ci_token, timeout=5) as client:
            client.reject_stage(stage.stage_id)

    def publish_behind_the_stage(self, stage: StagedVersion) -> None:
        """Put the staged version into the packument directly, as a conflicting release."""
        with Store(self.live.data_dir).write() as state:
            staged = state.stages[str(stage.stage_id)]
            state.packages[stage.package_name].versions[stage.version] = staged.manifest

    def tamper_published_dist(self, name: str, version: str, **dist: str) -> None:
        with Store(self.live.data_dir).write() as state:
            state.packages[name].versions[version]["dist"].update(dist)

    def web_tokens(self) -> list[str]:
        """The security-key tokens the registry handed out (secrets the portal must not keep)."""
        with Store(self.live.data_dir).read() as state:
            return [c.token for c in state.web_challenges.values() if c.token]


@pytest.fixture
def traffic(monkeypatch: pytest.MonkeyPatch, stage_traffic: StageTraffic) -> Traffic:
    """Counts registry requests; every stage response is also checked against openapi.yaml."""
    seen = Traffic()
    handle = devregistry.api.handle

    def counting(ctx: Context, request: Request) -> Response:
        with seen.lock:
            seen.seen.append((request.method, request.path, bool(request.header("npm-otp"))))
        if seen.hold and re.fullmatch(APPROVE_PATH, request.path):
            seen.arrived.set()
            seen.release.wait(timeout=10)
        return handle(ctx, request)

    monkeypatch.setattr(devregistry.api, "handle", counting)
    return seen


# `@both_modes`: the test runs against npm's answers and against those of another open-source
# registry (`LiveRegistry(compat="other")`, devregistry/README.md); the portal must be right
# with either.
both_modes = pytest.mark.parametrize("registry", ["npm", "other"], indirect=True)


@pytest.fixture
def registry(
    request: pytest.FixtureRequest,
    registry_factory: Callable[..., LiveRegistry],
    traffic: Traffic,
    settings: LazySettings,
) -> Registry:
    reg = Registry(registry_factory(compat=getattr(request, "param", "npm")), traffic)
    settings.GREENROOM_REGISTRY_URL = reg.url
    settings.GREENROOM_SYNC_TOKEN = reg.sync_token
    settings.GREENROOM_DECISION_TIMEOUT = 5
    return reg


def link(user: Any, person: NpmPerson) -> None:
    npm_tokens.link(user, person.token, Actor(user=user))


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def url(name: str, stage: StagedVersion) -> str:
    return reverse(f"reviews:{name}", args=[stage.stage_id])


def approve(client: Client, stage: StagedVersion, **data: str) -> Any:
    return client.post(url("stage-approve", stage), data)


def reject(client: Client, stage: StagedVersion, **data: str) -> Any:
    return client.post(url("stage-reject", stage), data)


def poll(client: Client, stage: StagedVersion, *, htmx: bool = True) -> Any:
    headers = {"HX-Request": "true"} if htmx else {}
    return client.post(url("stage-security-key-poll", stage), headers=headers)
