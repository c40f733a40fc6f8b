"""Rejecting deletes the staged tarball for good: the version must be typed, a reason given,
and the same second-factor paths apply."""

from __future__ import annotations

import pytest

from reviews.audit.trail import Action
from reviews.models import AuditEvent, StagedVersion
from tests.decide.conftest import Registry, client_for, link, reject, url
from tests.personas import World

pytestmark = pytest.mark.django_db


def test_the_confirmation_says_the_tarball_is_deleted_for_good(registry: Registry, world: World):
    stage = registry.stage()
    link(world.approver, registry.alice)

    page = client_for(world.approver).get(url("stage-reject-form", stage)).content.decode()

    assert "Rejecting permanently deletes the staged tarball" in page
    assert "Type the version to confirm (1.0.0)" in page
    assert 'name="reason"' in page
    assert "Reject and delete 1.0.0" in page


@pytest.mark.parametrize("typed", ["", "1.0", "1.0.1", "@acme/widget@1.0.0"])
def test_the_version_must_be_typed_exactly(registry: Registry, world: World, typed: str):
    stage = registry.stage()
    link(world.approver, registry.alice)

    response = reject(
        client_for(world.approver),
        stage,
        confirm_version=typed,
        reason="broken",
        otp=registry.alice.code(),
    )

    assert response.status_code == 400
    assert registry.traffic.rejections() == 0
    assert registry.still_staged(stage)


def test_a_reason_is_required(registry: Registry, world: World):
    stage = registry.stage()
    link(world.approver, registry.alice)

    response = reject(client_for(world.approver), stage, confirm_version="1.0.0", reason="")

    assert response.status_code == 400
    assert registry.traffic.rejections() == 0


def test_reject_with_confirmation_reason_and_code(registry: Registry, world: World):
    stage = registry.stage()
    link(world.approver, registry.alice)
    client = client_for(world.approver)

    first = reject(client, stage, confirm_version="1.0.0", reason="ships a debug build")

    body = first.content.decode()
    assert first.status_code == 200
    assert "confirm with your security key, or type a code" in body
    assert "ships a debug build" in body  # the reason is kept for the next step
    assert registry.still_staged(stage)

    done = reject(
        client,
        stage,
        confirm_version="1.0.0",
        reason="ships a debug build",
        otp=registry.alice.code(),
    )

    assert done.status_code == 303
    assert not registry.still_staged(stage)
    stage.refresh_from_db()
    assert stage.state == StagedVersion.State.REJECTED
    assert stage.decided_by == world.approver
    assert stage.decision_reason == "ships a debug build"
    assert stage.published_checked_at is None
    event = AuditEvent.objects.filter(stage=stage).order_by("-id").first()
    assert event is not None
    assert (event.action, event.registry_status) == (Action.STAGE_REJECTED, 204)
    assert event.payload["reason"] == "ships a debug build"
    assert registry.traffic.rejections() == 2
    page = client.get(url("stage", stage)).content.decode()
    assert "Rejected in Greenroom by" in page
    assert "Reason: ships a debug build" in page
