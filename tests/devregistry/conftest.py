"""The dev registry's tests: three personas, a spec-validated client, every stage response checked.

alice maintains with TOTP 2FA, bob maintains without 2FA, carol is an outsider.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyotp
import pytest
import requests

from devregistry.testing import LiveRegistry
from tests.support import packages
from tests.support.openapi import StageTraffic, stage_session


@pytest.fixture(autouse=True)
def _every_stage_response_is_checked(stage_traffic: StageTraffic) -> StageTraffic:
    return stage_traffic


@dataclass
class Person:
    name: str
    token: str
    otp_secret: str | None = None

    def code(self, offset_steps: int = 0) -> str:
        """The TOTP code of now, or of `offset_steps` 30-second steps away."""
        assert self.otp_secret is not None
        return str(pyotp.TOTP(self.otp_secret).at(time.time() + 30 * offset_steps))

    def auth(self, **extra: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}", **extra}


@dataclass
class People:
    alice: Person
    bob: Person
    carol: Person


class StageApi:
    """The six stage endpoints over HTTP; every response is validated against openapi.yaml."""

    def __init__(self, registry: LiveRegistry) -> None:
        self.url = registry.url
        self.session = stage_session()

    def list(self, who: Person | None, **params: Any) -> requests.Response:
        return self.session.get(f"{self.url}-/stage", params=params, headers=_auth(who))

    def stage(
        self, who: Person | None, name: str, body: Any, path_name: str | None = None
    ) -> requests.Response:
        target = path_name or packages.escaped(name)
        return self.session.post(
            f"{self.url}-/stage/package/{target}", json=body, headers=_auth(who)
        )

    def view(self, who: Person | None, stage_id: str) -> requests.Response:
        return self.session.get(f"{self.url}-/stage/{stage_id}", headers=_auth(who))

    def tarball(self, who: Person | None, stage_id: str) -> requests.Response:
        return self.session.get(f"{self.url}-/stage/{stage_id}/tarball", headers=_auth(who))

    def approve(self, who: Person | None, stage_id: str, **headers: str) -> requests.Response:
        return self.session.post(
            f"{self.url}-/stage/{stage_id}/approve", headers={**_auth(who), **_h(headers)}
        )

    def reject(self, who: Person | None, stage_id: str, **headers: str) -> requests.Response:
        return self.session.delete(
            f"{self.url}-/stage/{stage_id}", headers={**_auth(who), **_h(headers)}
        )


def _auth(who: Person | None) -> dict[str, str]:
    return who.auth() if who is not None else {}


def _h(headers: dict[str, str]) -> dict[str, str]:
    """Keyword arguments to header names: npm_otp -> npm-otp."""
    return {k.replace("_", "-"): v for k, v in headers.items()}


@pytest.fixture
def people(live_registry: LiveRegistry) -> People:
    secret = pyotp.random_base32()
    live_registry.add_user("alice", otp_secret=secret)
    live_registry.add_user("bob")
    live_registry.add_user("carol")
    return People(
        alice=Person("alice", live_registry.token("alice"), secret),
        bob=Person("bob", live_registry.token("bob")),
        carol=Person("carol", live_registry.token("carol")),
    )


@pytest.fixture
def api(live_registry: LiveRegistry) -> Iterator[StageApi]:
    client = StageApi(live_registry)
    yield client
    client.session.close()


@pytest.fixture
def shared_package(live_registry: LiveRegistry, people: People) -> str:
    """`shared-pkg`, 1.0.0 published by alice; alice and bob maintain it, carol does not."""
    packages.publish(
        live_registry.url, people.alice.token, "shared-pkg", "1.0.0", otp=people.alice.code()
    )
    live_registry.add_owner("shared-pkg", "bob")
    return "shared-pkg"
