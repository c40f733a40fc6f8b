"""Approving a stage whose tarball Greenroom could not read whole needs the approver's explicit
acknowledgement, on every path to the registry: the form, a direct call, the security key."""

from __future__ import annotations

import pytest
from django.utils import timezone

from reviews.audit.trail import Action, Actor
from reviews.decide import decisions
from reviews.decide.decisions import Decision, Kind
from reviews.models import AuditEvent, StagedVersion, WebAuthChallenge
from tests.decide.conftest import Registry, approve, client_for, link, poll, url
from tests.personas import World

pytestmark = pytest.mark.django_db

ACKNOWLEDGED = "I understand Greenroom could not read this whole tarball"


def undownloadable(registry: Registry) -> StagedVersion:
    """A stage whose tarball the registry would not hand over (403): nothing of it was read."""
    registry.live.set_faults([{"path": "/tarball$", "status": 403}])
    stage = registry.stage()
    registry.live.clear_faults()
    assert stage.integrity == StagedVersion.Integrity.UNAVAILABLE
    assert stage.unread_tarball().startswith("It could not be downloaded: registry answered")
    return stage


def last_event(stage: StagedVersion) -> AuditEvent:
    event = AuditEvent.objects.filter(stage=stage).order_by("-id").first()
    assert event is not None
    return event


def test_the_approve_page_leads_with_it_and_asks_for_the_tick(registry: Registry, world: World):
    stage = undownloadable(registry)
    link(world.approver, registry.alice)

    body = client_for(world.approver).get(url("stage-approve-form", stage)).content.decode()

    assert body.index('id="unread-tarball"') < body.index("What will happen")
    assert "Critical: Greenroom could not read this whole tarball" in body
    assert f"{ACKNOWLEDGED}</label>" in body
    assert 'name="acknowledge_unread" required' in body


def test_rejecting_needs_no_acknowledgement(registry: Registry, world: World):
    stage = undownloadable(registry)
    link(world.approver, registry.alice)

    body = client_for(world.approver).get(url("stage-reject-form", stage)).content.decode()

    assert "acknowledge_unread" not in body


def test_the_decision_itself_refuses_without_the_acknowledgement(registry: Registry, world: World):
    # Past the form (a request raced a finishing analysis, a future caller): decide() checks too.
    stage = undownloadable(registry)
    link(world.approver, registry.alice)

    actor = Actor(user=world.approver)
    code = registry.alice.code()

    outcome = decisions.decide(stage, world.approver, Decision.APPROVE, actor, otp=code)

    assert outcome.kind == Kind.REFUSED
    assert "Nothing was sent" in outcome.message
    assert ACKNOWLEDGED in outcome.message
    assert registry.traffic.approvals() == 0
    assert registry.still_staged(stage)
    event = last_event(stage)
    assert event.action == Action.DECISION_REFUSED
    assert event.payload["why"] == "unread tarball not acknowledged"


def test_a_security_key_approval_carries_the_acknowledgement(registry: Registry, world: World):
    stage = undownloadable(registry)
    link(world.approver, registry.alice)
    client = client_for(world.approver)

    assert approve(client, stage, acknowledge_unread="on").status_code == 200
    challenge = WebAuthChallenge.objects.get(stage=stage, user=world.approver)
    assert challenge.acknowledged_unread
    registry.live.complete_web_auth(challenge.auth_url)
    WebAuthChallenge.objects.filter(pk=challenge.pk).update(next_poll_at=timezone.now())

    assert poll(client, stage)["HX-Redirect"] == url("stage", stage)

    stage.refresh_from_db()
    assert stage.state == StagedVersion.State.APPROVED
    event = last_event(stage)
    assert event.action == Action.STAGE_APPROVED
    assert event.payload["factor"] == "security key"
    assert event.payload["acknowledged"].startswith(f"{ACKNOWLEDGED}: It could not be downloaded")


def test_a_key_confirmed_before_the_tarball_turned_out_unread_sends_nothing(
    registry: Registry, world: World
):
    stage = registry.stage()
    link(world.approver, registry.alice)
    client = client_for(world.approver)
    assert approve(client, stage).status_code == 200  # no tick: nothing was unread yet
    challenge = WebAuthChallenge.objects.get(stage=stage, user=world.approver)
    assert not challenge.acknowledged_unread
    # Meanwhile the tarball changed and its download failed.
    StagedVersion.objects.filter(pk=stage.pk).update(
        tarball=None,
        integrity=StagedVersion.Integrity.UNAVAILABLE,
        integrity_reason="registry answered 403",
    )
    registry.live.complete_web_auth(challenge.auth_url)
    WebAuthChallenge.objects.filter(pk=challenge.pk).update(next_poll_at=timezone.now())

    poll(client, stage)

    assert registry.traffic.approvals(with_factor=True) == 0
    assert registry.still_staged(stage)
    assert last_event(stage).payload["why"] == "unread tarball not acknowledged"
