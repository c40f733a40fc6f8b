"""Two clicks, two tabs or two people at once: one request reaches the registry, and the
others see its outcome. The claim is a conditional UPDATE taken before the registry call."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connections
from django.utils import timezone

from reviews.decide import decisions
from reviews.models import StagedVersion, UnansweredDecision
from tests.decide.conftest import Registry, approve, client_for, link
from tests.personas import World


@pytest.mark.django_db(transaction=True)
def test_two_people_approving_at_once_make_one_registry_call(registry: Registry, world: World):
    stage = registry.stage()
    link(world.approver, registry.alice)
    link(world.acme_admin, registry.bob)
    first, second = client_for(world.approver), client_for(world.acme_admin)
    answers: dict[str, Any] = {}

    def press(name: str, client: Any, code: str) -> None:
        try:
            answers[name] = approve(client, stage, otp=code)
        finally:
            connections.close_all()

    # The registry holds the first approval until the second person has pressed too.
    registry.traffic.hold = True
    alice = threading.Thread(target=press, args=("alice", first, registry.alice.code()))
    alice.start()
    assert registry.traffic.arrived.wait(timeout=10)
    press("bob", second, registry.bob.code())
    registry.traffic.release.set()
    alice.join(timeout=10)

    assert registry.traffic.approvals() == 1
    assert answers["alice"].status_code == 303
    busy = answers["bob"].content.decode()
    assert "Someone is sending a decision about this stage right now. Nothing was sent" in busy
    stage.refresh_from_db()
    assert stage.state == StagedVersion.State.APPROVED
    assert stage.decided_by == world.approver

    # Pressing again afterwards shows the first person's outcome.
    again = approve(second, stage, otp=registry.bob.code()).content.decode()
    assert "already approved in Greenroom by approver" in again
    assert registry.traffic.approvals() == 1


@pytest.mark.django_db
def test_a_double_click_sends_once(registry: Registry, world: World):
    stage = registry.stage()
    link(world.approver, registry.alice)
    client = client_for(world.approver)
    code = registry.alice.code()

    answers = [approve(client, stage, otp=code), approve(client, stage, otp=code)]

    assert [a.status_code for a in answers] == [303, 200]
    assert "already approved in Greenroom by approver" in answers[1].content.decode()
    assert registry.traffic.approvals() == 1


@pytest.mark.django_db
def test_a_claim_is_taken_once_and_released(world: World):
    stage = world.acme_stage

    claim = decisions.claim_decision(stage.pk)

    assert claim is not None
    assert decisions.claim_decision(stage.pk) is None
    decisions.release_decision(stage.pk, claim)
    assert decisions.claim_decision(stage.pk) is not None


@pytest.mark.django_db
def test_a_claim_left_by_a_dead_request_expires(world: World):
    stage = world.acme_stage
    StagedVersion.objects.filter(pk=stage.pk).update(
        decision_claimed_at=timezone.now() - decisions.DECISION_CLAIM_LEASE - timedelta(seconds=1)
    )

    assert decisions.claim_decision(stage.pk) is not None


@pytest.mark.django_db
def test_a_decided_stage_cannot_be_claimed(world: World):
    StagedVersion.objects.filter(pk=world.acme_stage.pk).update(state=StagedVersion.State.REJECTED)

    assert decisions.claim_decision(world.acme_stage.pk) is None


@pytest.mark.django_db
def test_a_live_claim_is_not_taken_and_only_its_owner_releases_it(world: World):
    stage, other = world.acme_stage, world.pad_stage
    StagedVersion.objects.filter(pk=stage.pk).update(
        decision_claimed_at=timezone.now() - decisions.DECISION_CLAIM_LEASE + timedelta(seconds=30)
    )
    live = StagedVersion.objects.get(pk=stage.pk).decision_claimed_at
    assert live is not None

    assert decisions.claim_decision(stage.pk) is None
    decisions.release_decision(stage.pk, live - timedelta(seconds=1))  # not its claim
    assert decisions.claim_decision(stage.pk) is None
    assert decisions.claim_decision(other.pk) is not None  # one stage's claim is its own
    decisions.release_decision(stage.pk, live)
    assert decisions.claim_decision(stage.pk) is not None


@pytest.mark.django_db
def test_a_release_gives_back_only_its_own_stage_of_a_batch_claim(world: World):
    stage, other = world.acme_stage, world.pad_stage
    claim, claimed = decisions.claim_decisions([stage.pk, other.pk])  # one instant for both
    assert claimed == {stage.pk, other.pk}

    decisions.release_decision(stage.pk, claim)  # its decision failed; the batch goes on

    assert decisions.claim_decision(stage.pk) is not None
    assert decisions.claim_decision(other.pk) is None  # still the batch's


@pytest.mark.django_db
def test_a_stage_waiting_on_an_unanswered_decision_cannot_be_claimed(world: World):
    stage = world.acme_stage
    UnansweredDecision.objects.create(
        stage=stage, user=world.approver, decision="approve", sent_at=timezone.now()
    )

    assert decisions.claim_decision(stage.pk) is None
