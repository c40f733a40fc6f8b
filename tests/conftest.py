"""Fixtures shared by the whole suite (keep this to shared fixtures)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import devregistry.api
from devregistry.routing import Context
from devregistry.testing import LiveRegistry
from devregistry.wire import Request, Response
from tests.support import npm
from tests.support.openapi import StageTraffic


@pytest.fixture
def registry_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., LiveRegistry]]:
    """Starts extra registries (e.g. `registry_factory(refuse_otp_reuse=True)`, or
    `compat="other"`); stops them all."""
    started: list[LiveRegistry] = []

    def make(*, refuse_otp_reuse: bool = False, compat: str = "npm") -> LiveRegistry:
        registry = LiveRegistry(
            tmp_path_factory.mktemp("devregistry"), refuse_otp_reuse=refuse_otp_reuse, compat=compat
        ).start()
        started.append(registry)
        return registry

    yield make
    for registry in started:
        registry.stop()


@pytest.fixture
def live_registry(registry_factory: Callable[..., LiveRegistry]) -> LiveRegistry:
    """An empty dev registry on 127.0.0.1 (port 0), in a temporary data directory."""
    return registry_factory()


@pytest.fixture
def npm_env(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[LiveRegistry, str | None], dict[str, str]]:
    """`npm_env(live_registry, token)`: the environment for an npm subprocess, with a
    temporary userconfig (registry URL and token), cache and HOME."""

    def make(registry: LiveRegistry, token: str | None) -> dict[str, str]:
        return npm.npm_env(registry, token, Path(tmp_path_factory.mktemp("npm-home")))

    return make


@pytest.fixture
def stage_traffic(monkeypatch: pytest.MonkeyPatch) -> Iterator[StageTraffic]:
    """Checks every stage-endpoint response that any dev registry in this process gives during
    the test (to Python or to the npm CLI) against devregistry/openapi.yaml; fails the test
    at teardown."""
    traffic = StageTraffic()
    handle = devregistry.api.handle

    def recording(ctx: Context, request: Request) -> Response:
        response = handle(ctx, request)
        traffic.record(request, response)
        return response

    monkeypatch.setattr(devregistry.api, "handle", recording)
    yield traffic
    problems = traffic.problems()
    assert not problems, "stage responses off the spec:\n" + "\n".join(problems)


@pytest.fixture
def eager() -> Iterator[None]:
    """Celery tasks run in the calling process as soon as they are sent; retries too, at once."""
    from portal.celery import app

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = saved
