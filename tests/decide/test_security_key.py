"""The security-key path, end to end through the dev registry: the registry's authUrl page is
pressed like a browser would, while the portal polls doneUrl server-side."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from reviews.audit.trail import Action
from reviews.models import AuditEvent, StagedVersion, WebAuthChallenge
from tests.decide.conftest import Registry, approve, client_for, link, poll, reject, url
from tests.personas import World

pytestmark = pytest.mark.django_db

DONE_PATH = r"/-/v1/done"


def start(registry: Registry, world: World, decide=approve, **data: str):
    stage = registry.stage()
    link(world.approver, registry.alice)
    client = client_for(world.approver)
    response = decide(client, stage, **data)
    assert response.status_code == 200
    challenge = WebAuthChallenge.objects.get(stage=stage, user=world.approver)
    return stage, client, challenge, response.content.decode()


def may_poll_now(challenge: WebAuthChallenge) -> None:
    """Skip the registry's retry-after instead of sleeping through it."""
    WebAuthChallenge.objects.filter(pk=challenge.pk).update(next_poll_at=timezone.now())


def test_approve_with_a_security_key(registry: Registry, world: World):
    stage, client, challenge, page = start(registry, world)

    assert challenge.auth_url.startswith(registry.url)
    assert f'href="{challenge.auth_url}" target="_blank" rel="noopener noreferrer"' in page
    assert "Waiting for your security key" in page
    assert url("stage-security-key-poll", stage) in page

    waiting = poll(client, stage)
    assert waiting.status_code == 200
    assert "Waiting for your security key" in waiting.content.decode()
    assert registry.traffic.count("GET", DONE_PATH) == 1

    registry.live.complete_web_auth(challenge.auth_url)
    may_poll_now(challenge)
    done = poll(client, stage)

    assert done.status_code == 200
    assert done["HX-Redirect"] == url("stage", stage)
    stage.refresh_from_db()
    assert stage.state == StagedVersion.State.APPROVED
    assert stage.decided_by == world.approver
    assert not registry.still_staged(stage)
    assert registry.traffic.approvals(with_factor=True) == 1
    assert not WebAuthChallenge.objects.exists()
    event = AuditEvent.objects.filter(stage=stage).order_by("-id").first()
    assert event is not None
    assert event.action == Action.STAGE_APPROVED
    assert event.payload["factor"] == "security key"
    page = client.get(url("stage", stage)).content.decode()
    assert "was approved and published by the registry" in page


def test_the_registry_retry_after_is_honoured(registry: Registry, world: World):
    stage, client, challenge, _ = start(registry, world)

    for _ in range(3):
        assert poll(client, stage).status_code == 200

    # The dev registry says retry-after: 1, so only the first poll reached doneUrl.
    assert registry.traffic.count("GET", DONE_PATH) == 1
    challenge.refresh_from_db()
    assert challenge.next_poll_at > timezone.now()


def test_reject_with_a_security_key_keeps_the_reason(registry: Registry, world: World):
    stage, client, challenge, _ = start(
        registry, world, reject, confirm_version="1.0.0", reason="wrong build"
    )

    registry.live.complete_web_auth(challenge.auth_url)
    may_poll_now(challenge)
    done = poll(client, stage, htmx=False)

    assert done.status_code == 303
    stage.refresh_from_db()
    assert stage.state == StagedVersion.State.REJECTED
    assert stage.decision_reason == "wrong build"
    assert not registry.still_staged(stage)


def test_without_javascript_check_now_comes_back_to_the_form(registry: Registry, world: World):
    stage, client, _, _ = start(registry, world)

    response = poll(client, stage, htmx=False)

    assert response.status_code == 303
    assert response["Location"] == url("stage-approve-form", stage)
    form = client.get(response["Location"]).content.decode()
    assert "Waiting for your security key" in form


def test_a_security_key_not_used_in_time_ends_the_wait(registry: Registry, world: World):
    stage, client, challenge, _ = start(registry, world)
    WebAuthChallenge.objects.filter(pk=challenge.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    response = poll(client, stage)

    assert response["HX-Redirect"] == url("stage-approve-form", stage)
    form = client.get(response["HX-Redirect"]).content.decode()
    assert "The security key was not used within 5 minutes. Nothing was changed" in form
    assert not WebAuthChallenge.objects.exists()
    assert registry.traffic.count("GET", DONE_PATH) == 0
    assert registry.still_staged(stage)
    event = AuditEvent.objects.filter(stage=stage).order_by("-id").first()
    assert event is not None
    assert (event.action, event.payload["why"]) == (
        Action.DECISION_FAILED,
        "security key not used in time",
    )


def test_cancel(registry: Registry, world: World):
    stage, client, _, _ = start(registry, world)

    response = client.post(url("stage-security-key-cancel", stage))

    assert response.status_code == 303
    assert not WebAuthChallenge.objects.exists()
    assert "cancelled. Nothing was changed" in client.get(response["Location"]).content.decode()
    event = AuditEvent.objects.filter(stage=stage).order_by("-id").first()
    assert event is not None
    assert event.action == Action.DECISION_CANCELLED


def test_a_code_can_still_be_typed_while_the_key_waits(registry: Registry, world: World):
    stage, client, _, _ = start(registry, world)

    response = approve(client, stage, otp=registry.alice.code())

    assert response.status_code == 303
    stage.refresh_from_db()
    assert stage.state == StagedVersion.State.APPROVED
    assert not WebAuthChallenge.objects.exists()
    # A waiting page left open in another tab stops polling and shows the decision, with one
    # message: the approval's, not also an "already approved" from the late poll.
    late = poll(client, stage)
    assert late["HX-Redirect"] == url("stage", stage)
    page = client.get(late["HX-Redirect"]).content.decode()
    assert page.count("was approved and published by the registry") == 1
    assert "already approved" not in page
    assert registry.traffic.approvals(with_factor=True) == 1


def test_a_stage_decided_while_the_key_waits(registry: Registry, world: World):
    stage, client, challenge, _ = start(registry, world)
    registry.approve_elsewhere(stage)
    registry.live.complete_web_auth(challenge.auth_url)
    may_poll_now(challenge)

    response = poll(client, stage)

    assert response["HX-Redirect"] == url("stage", stage)
    page = client.get(response["HX-Redirect"]).content.decode()
    assert "already decided elsewhere: the registry shows it approved" in page
    assert registry.traffic.approvals(with_factor=True) == 0  # the key's token was not spent
    stage.refresh_from_db()
    assert stage.state == StagedVersion.State.APPROVED
    assert stage.resolved_elsewhere
