"""One error shape for every status, a 429 with Retry-After per token, and no stack trace."""

from __future__ import annotations

import uuid

import pytest

from reviews.api import documents, ratelimit, tokens
from reviews.audit.trail import SYSTEM
from reviews.models import Review
from tests.api.conftest import API, ApiClient, api_as, error_of
from tests.personas import World

pytestmark = pytest.mark.django_db


def test_the_rate_limit_is_per_token_with_retry_after(world: World, settings):
    settings.GREENROOM_API_RATE_LIMIT = 3
    settings.GREENROOM_API_RATE_WINDOW = 60
    first = ApiClient(tokens.create(world.viewer, "one", SYSTEM).secret)
    for _ in range(3):
        assert first.get("/stages").status_code == 200

    limited = first.get("/stages")

    assert limited.status_code == 429
    assert error_of(limited)["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert f"try again in {limited['Retry-After']} seconds" in error_of(limited)["message"]
    # The same person's other token has its own count.
    second = ApiClient(tokens.create(world.viewer, "two", SYSTEM).secret)
    assert second.get("/stages").status_code == 200


def test_a_new_window_starts_a_new_count(world: World, settings):
    settings.GREENROOM_API_RATE_LIMIT = 2
    settings.GREENROOM_API_RATE_WINDOW = 60
    key = uuid.uuid4().hex[:16]
    start = 6_000_000.0  # the start of a window
    assert ratelimit.retry_after(key, now=start) is None
    assert ratelimit.retry_after(key, now=start + 1) is None
    assert ratelimit.retry_after(key, now=start + 45.2) == 15
    assert ratelimit.retry_after(key, now=start + 60) is None


def test_a_limit_of_zero_is_no_limit(world: World, settings):
    settings.GREENROOM_API_RATE_LIMIT = 0
    key = uuid.uuid4().hex[:16]
    assert all(ratelimit.retry_after(key) is None for _ in range(50))


def test_an_unexpected_failure_is_a_500_without_a_trace(world: World, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals at /srv/greenroom")

    monkeypatch.setattr(documents, "stage_document", broken)

    response = api_as(world.viewer).get(f"/stages/{world.acme_stage.stage_id}")

    assert response.status_code == 500
    assert error_of(response)["code"] == "server_error"
    body = response.content.decode()
    assert "secret internals" not in body
    assert "Traceback" not in body


def test_a_wrong_method_is_405_in_the_same_shape(world: World):
    response = api_as(world.viewer).client.delete(f"{API}/stages")
    assert response.status_code == 405
    assert response["Allow"] == "GET"
    assert error_of(response)["code"] == "method_not_allowed"


def test_a_path_that_is_no_endpoint_is_404_in_the_same_shape(world: World):
    for path in ("/nothing", "/stages/", "/stages/x/y/z"):
        response = api_as(world.viewer).get(path)
        assert response.status_code == 404, path
        assert error_of(response)["code"] == "not_found"


def test_a_body_that_is_not_json_is_400(world: World):
    response = api_as(world.approver).client.post(
        f"{API}/stages/{world.acme_stage.stage_id}/reviews",
        "{not json",
        content_type="application/json",
        headers=api_as(world.approver).headers,
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "bad_request"


@pytest.mark.parametrize(
    "body",
    [{}, {"verdict": "lgtm"}, {"verdict": "comment", "body": "x" * 20_001}],
)
def test_an_invalid_review_is_422(world: World, body):
    response = api_as(world.approver).post(f"/stages/{world.acme_stage.stage_id}/reviews", body)
    assert response.status_code == 422
    assert error_of(response)["message"].startswith("body.review.")


def test_a_review_is_recorded_with_the_pages_rules(world: World):
    stage = world.acme_stage
    response = api_as(world.approver).post(
        f"/stages/{stage.stage_id}/reviews", {"verdict": "approve", "body": "read it all"}
    )
    assert response.status_code == 201
    assert response.json()["verdict"] == "approve"
    assert Review.objects.filter(stage=stage, author=world.approver, verdict="approve").exists()
    document = api_as(world.viewer).get(f"/stages/{stage.stage_id}").json()
    assert [(r["reviewer"], r["verdict"]) for r in document["reviews"]] == [("approver", "approve")]


def test_a_review_the_page_would_refuse_is_409_with_its_reason(world: World):
    response = api_as(world.approver).post(
        f"/stages/{world.acme_stage.stage_id}/reviews", {"verdict": "request_changes", "body": ""}
    )
    assert response.status_code == 409
    assert error_of(response) == {
        "code": "review_refused",
        "message": "Say what needs changing, or what you want to note.",
    }
    assert not Review.objects.exists()
