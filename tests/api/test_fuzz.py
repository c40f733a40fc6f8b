"""The API fuzzed against its own OpenAPI document (schemathesis): whatever a client sends that
the document allows, or nearly allows, the answer is never a 500 and always matches the
document (status, content type, headers, body).

Bounded: a fixed number of examples per operation, derandomized so a run is repeatable, on the
test database (SQLite unless DATABASE_URL says otherwise).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.core.parameters import ParameterLocation

from reviews.api import longpoll
from tests.api.conftest import token_for
from tests.personas import World
from tests.review.support import reviewed
from tests.support.packages import build_tarball

EXAMPLES_PER_OPERATION = 50


# Read through the whole WSGI stack, as a client would (no database needed for it).
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())


@pytest.fixture
def connections_kept_open() -> Iterator[None]:
    """The real WSGI handler closes the database connection after each request, and the test's
    transaction with it (on PostgreSQL); Django's own test client holds that back too."""
    signals = (request_started, request_finished)
    for signal in signals:
        signal.disconnect(close_old_connections)
    yield
    for signal in signals:
        signal.connect(close_old_connections)


@pytest.fixture
def known(
    world: World, settings: Any, monkeypatch: pytest.MonkeyPatch, connections_kept_open: None
) -> dict[str, Any]:
    """A reviewed Acme stage and the approver's token. Half the cases ask for that stage and
    package, so the documents of things that exist are checked too."""
    settings.GREENROOM_API_RATE_LIMIT = 0  # thousands of calls with one token
    monkeypatch.setattr(longpoll, "pause", lambda seconds: None)  # no real waiting
    reviewed(
        world.acme_stage,
        build_tarball("@acme/ui", "2.0.0", {"index.js": "two\n"}),
        build_tarball("@acme/ui", "1.0.0", {"index.js": "one\n"}),
    )
    return {
        "header": {"Authorization": f"Bearer {token_for(world.approver)}"},
        "stage_id": str(world.acme_stage.stage_id),
        "turn": itertools.count(),
    }


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.django_db
def test_the_api_answers_as_its_openapi_document_says(case: Any, known: dict[str, Any]) -> None:
    meta = case.meta
    if not meta.is_negative_at(ParameterLocation.PATH) and next(known["turn"]) % 2:
        if "stage_id" in (case.path_parameters or {}):
            case.path_parameters["stage_id"] = known["stage_id"]
        if "name" in (case.path_parameters or {}):
            case.path_parameters["name"] = "@acme/ui"
    # A case that tests bad headers may be one without the token: keep it so.
    headers = {} if meta.is_negative_at(ParameterLocation.HEADER) else known["header"]
    case.call_and_validate(headers=headers)
