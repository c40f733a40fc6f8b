"""Approving through the portal against a live dev registry: the code path and every answer
the registry can give, each in plain words, with the local state and the audit following."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from reviews.audit.trail import Action
from reviews.decide import decisions
from reviews.mirror.registry import IpNotAllowed, RateLimited
from reviews.models import AuditEvent, StagedVersion, WebAuthChallenge
from tests.decide.conftest import Registry, approve, client_for, link, url
from tests.personas import World

pytestmark = pytest.mark.django_db

State = StagedVersion.State


def actions(stage: StagedVersion) -> list[str]:
    return list(
        AuditEvent.objects.filter(stage=stage).order_by("id").values_list("action", flat=True)
    )


def last_event(stage: StagedVersion) -> AuditEvent:
    event = AuditEvent.objects.filter(stage=stage).order_by("-id").first()
    assert event is not None
    return event


def test_the_first_press_asks_the_registry_which_factor_it_wants(registry: Registry, world: World):
    stage = registry.stage()
    link(world.approver, registry.alice)

    response = approve(client_for(world.approver), stage)

    assert response.status_code == 200
    body = response.content.decode()
    # The dev registry offers a security key (and accepts a typed code too).
    challenge = WebAuthChallenge.objects.get(stage=stage, user=world.approver)
    assert challenge.auth_url in body
    assert 'name="otp"' in body
    assert registry.traffic.approvals(with_factor=False) == 1
    assert registry.still_staged(stage)
    stage.refresh_from_db()
    assert stage.state == State.PENDING
    assert stage.decision_claimed_at is None
    event = last_event(stage)
    assert event.action == Action.DECISION_CHALLENGED
    assert event.registry_status == 401
    assert event.npm_user == "alice"


def test_approve_with_a_right_code(registry: Registry, world: World):
    stage = registry.stage()
    link(world.approver, registry.alice)
    client = client_for(world.approver)

    response = approve(client, stage, otp=registry.alice.code(), reason="looks good")

    assert response.status_code == 303
    assert response["Location"] == url("stage", stage)
    stage.refresh_from_db()
    assert stage.state == State.APPROVED
    assert stage.decided_by == world.approver
    assert stage.decided_npm_user == "alice"
    assert stage.decided_in_portal
    assert stage.decided_at is not None
    assert stage.decision_reason == "looks good"
    assert stage.decision_claimed_at is None
    assert not registry.still_staged(stage)
    assert registry.packument("@acme/widget")["dist-tags"]["latest"] == "1.0.0"
    assert registry.traffic.approvals() == 1
    event = last_event(stage)
    assert event.action == Action.STAGE_APPROVED
    assert event.registry_status == 201
    assert event.payload == {"decision": "approve", "factor": "code", "reason": "looks good"}

    page = client.get(url("stage", stage)).content.decode()
    assert "Approved in Greenroom by" in page
    assert "approver" in page
    assert "was approved and published by the registry, as npm user alice" in page


def test_a_wrong_code_asks_again_and_keeps_nothing_then_a_right_one_works(
    registry: Registry, world: World
):
    stage = registry.stage()
    link(world.approver, registry.alice)
    client = client_for(world.approver)
    wrong = registry.alice.wrong_code()

    response = approve(client, stage, otp=wrong, reason="ship it")

    assert response.status_code == 200
    body = response.content.decode()
    assert "did not accept that code (wrong, already used, or too many attempts" in body
    assert 'name="otp"' in body
    assert wrong not in body  # the form keeps nothing secret
    assert "ship it" in body  # but keeps what is not
    # The registry's npm-notice is shown too.
    assert "authenticator app" in body
    stage.refresh_from_db()
    assert stage.state == State.PENDING
    assert stage.decision_claimed_at is None
    assert last_event(stage).action == Action.DECISION_WRONG_CODE

    response = approve(client, stage, otp=registry.alice.code(), reason="ship it")

    assert response.status_code == 303
    stage.refresh_from_db()
    assert stage.state == State.APPROVED
    assert registry.traffic.approvals(with_factor=True) == 2
    assert actions(stage)[-2:] == [Action.DECISION_WRONG_CODE, Action.STAGE_APPROVED]


def test_a_malformed_code_is_refused_before_the_registry(registry: Registry, world: World):
    stage = registry.stage()
    link(world.approver, registry.alice)

    response = approve(client_for(world.approver), stage, otp="12ab56")

    assert response.status_code == 400
    assert "Type the 6 to 8 digits from your authenticator app, or a recovery code" in (
        response.content.decode()
    )
    assert registry.traffic.approvals() == 0


def test_without_a_linked_token_nothing_is_sent(registry: Registry, world: World):
    stage = registry.stage()
    client = client_for(world.approver)

    form = client.get(url("stage-approve-form", stage)).content.decode()
    response = approve(client, stage, otp=registry.alice.code())

    assert "link your token" in form
    assert response.status_code == 200
    assert "Link your npm token on your settings page first" in response.content.decode()
    assert reverse("reviews:settings") in response.content.decode()
    assert registry.traffic.approvals() == 0
    event = last_event(stage)
    assert event.action == Action.DECISION_REFUSED
    assert event.payload["why"] == "no linked npm token"


def test_a_revoked_token_is_named_and_must_be_linked_again(registry: Registry, world: World):
    stage = registry.stage()
    link(world.approver, registry.alice)
    registry.revoke_tokens_of("alice")

    response = approve(client_for(world.approver), stage)

    body = response.content.decode()
    assert "The registry no longer accepts your linked npm token" in body
    assert "Link a new token" in body
    stage.refresh_from_db()
    assert stage.state == State.PENDING
    assert stage.decision_claimed_at is None
    event = last_event(stage)
    assert (event.action, event.registry_status) == (Action.DECISION_REFUSED, 401)


def test_a_stage_approved_elsewhere_in_between_is_refreshed(registry: Registry, world: World):
    stage = registry.stage()
    link(world.approver, registry.alice)
    registry.approve_elsewhere(stage)

    response = approve(client_for(world.approver), stage, otp=registry.alice.code())

    body = response.content.decode()
    assert "This stage was already decided elsewhere: the registry shows it approved." in body
    stage.refresh_from_db()
    assert stage.state == State.APPROVED
    assert stage.resolved_elsewhere
    assert not stage.decided_in_portal
    assert stage.published_shasum == stage.shasum
    event = last_event(stage)
    assert (event.action, event.registry_status) == (Action.DECISION_REFUSED, 404)
    assert event.payload["registry_state"] == "approved"


def test_a_version_published_meanwhile_is_a_conflict(registry: Registry, world: World):
    stage = registry.stage()
    link(world.approver, registry.alice)
    registry.publish_behind_the_stage(stage)

    response = approve(client_for(world.approver), stage, otp=registry.alice.code())

    body = response.content.decode()
    assert "already decided or changed elsewhere" in body
    assert "is already published" in body
    assert "It is still staged at the registry." in body
    stage.refresh_from_db()
    assert stage.state == State.PENDING
    assert last_event(stage).registry_status == 409


def test_a_registry_error_changes_nothing_and_is_not_retried(registry: Registry, world: World):
    stage = registry.stage()
    link(world.approver, registry.alice)
    registry.live.set_faults([{"method": "POST", "path": "/approve$", "status": 500}])

    response = approve(client_for(world.approver), stage, otp=registry.alice.code())

    body = response.content.decode()
    assert "Nothing was changed; try again." in body
    assert "500" in body
    stage.refresh_from_db()
    assert stage.state == State.PENDING
    assert stage.decision_claimed_at is None
    assert registry.still_staged(stage)
    event = last_event(stage)
    assert (event.action, event.registry_status) == (Action.DECISION_FAILED, 500)


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (IpNotAllowed("IP address refused", status=401), "IP allowlist does not include"),
        (RateLimited("slow down", retry_after=30), "try again in 30 seconds"),
    ],
)
def test_answers_the_dev_registry_cannot_give(registry, world, monkeypatch, error, words):
    stage = registry.stage()
    link(world.approver, registry.alice)

    def refuse(*args, **kwargs):
        raise error

    monkeypatch.setattr("reviews.mirror.registry.RegistryClient.approve_stage", refuse)

    response = approve(client_for(world.approver), stage, otp=registry.alice.code())

    assert words in response.content.decode()
    stage.refresh_from_db()
    assert (stage.state, stage.decision_claimed_at) == (State.PENDING, None)


def test_a_decided_stage_offers_nothing(registry: Registry, world: World):
    stage = registry.stage()
    link(world.approver, registry.alice)
    client = client_for(world.approver)
    approve(client, stage, otp=registry.alice.code())

    form = client.get(url("stage-approve-form", stage)).content.decode()
    again = approve(client, stage, otp=registry.alice.code())

    assert "nothing left to decide" in form
    assert 'id="decide-form"' not in form
    assert "already approved in Greenroom by approver" in again.content.decode()
    assert registry.traffic.approvals() == 1
    refused = last_event(stage)
    assert refused.action == Action.DECISION_REFUSED
    assert refused.payload["why"] == "already approved"


@pytest.mark.django_db
def test_already_decided_names_who_or_where(world: World):
    stage = world.acme_stage
    stage.state = State.APPROVED
    stage.decided_in_portal, stage.decided_by = True, None  # the person was deleted since

    assert decisions.already_decided(stage) == (
        "This stage was already approved in Greenroom by a former user."
    )
    stage.state, stage.decided_in_portal = State.REJECTED, False
    assert decisions.already_decided(stage) == "This stage was already rejected outside Greenroom."


def test_a_viewer_may_not_approve(registry: Registry, world: World):
    stage = registry.stage()
    link(world.viewer, registry.alice)

    response = approve(client_for(world.viewer), stage, otp=registry.alice.code())

    assert response.status_code == 403
    assert registry.traffic.approvals() == 0


def test_a_stage_another_request_is_deciding_sends_nothing_and_says_so(
    registry: Registry, world: World
):
    stage = registry.stage()
    link(world.approver, registry.alice)
    StagedVersion.objects.filter(stage_id=stage.stage_id).update(decision_claimed_at=timezone.now())

    response = approve(client_for(world.approver), stage, otp=registry.alice.code())

    assert (
        "Someone is sending a decision about this stage right now. Nothing was sent; "
        "look at the stage again in a moment."
    ) in response.content.decode()
    assert registry.traffic.approvals() == 0
    refused = last_event(stage)
    assert (refused.action, refused.payload["why"]) == (
        Action.DECISION_REFUSED,
        "another decision in progress",
    )
