"""What `decide()` returns when nothing is sent, or when the registry says no: the kind the
views and the batch runner branch on (a notice or an error, redirect or not, stop the batch or
go on) and the words the person reads. The page tests check the words; these check the kind."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from reviews.audit.trail import Actor
from reviews.decide import decisions
from reviews.decide.decisions import Decision, Kind, Outcome
from reviews.mirror.registry import RegistryClient
from reviews.models import NpmToken, StagedVersion, UnansweredDecision
from tests.decide.conftest import Registry, link
from tests.personas import World

pytestmark = pytest.mark.django_db

State = StagedVersion.State


def decide(stage: StagedVersion, user: Any, decision: Decision, **options: Any) -> Outcome:
    return decisions.decide(stage, user, decision, Actor(user=user), **options)


def test_a_decided_stage_is_a_notice_not_an_error(registry: Registry, world: World):
    stage = registry.stage()
    link(world.approver, registry.alice)
    done = decide(stage, world.approver, Decision.REJECT, otp=registry.alice.code(), reason="no")
    assert done.kind == Kind.DONE

    again = decide(stage, world.approver, Decision.REJECT, otp=registry.alice.code(1))

    assert again.kind == Kind.DECIDED
    assert not again.is_error
    assert again.message == "This stage was already rejected in Greenroom by approver."
    assert registry.traffic.rejections() == 1


def test_without_a_linked_token_the_person_is_sent_to_link_one(world: World):
    outcome = decide(world.acme_stage, world.approver, Decision.REJECT, reason="no")

    assert outcome.kind == Kind.NOT_LINKED  # a batch stops on it
    assert outcome.is_error
    assert outcome.message == (
        "Link your npm token on your settings page first: the registry decides as you."
    )


def test_an_unanswered_decision_is_being_checked_and_nothing_is_sent(
    registry: Registry, world: World
):
    stage = registry.stage()
    link(world.approver, registry.alice)
    unanswered = UnansweredDecision.objects.create(
        stage=stage,
        user=world.acme_admin,
        npm_user="bob",
        decision=Decision.APPROVE,
        sent_at=timezone.now(),
    )

    outcome = decide(stage, world.approver, Decision.REJECT, otp=registry.alice.code())

    assert outcome.kind == Kind.UNKNOWN  # the page polls "Check now" on it
    assert outcome.message == decisions.checking_words(unanswered)
    assert outcome.message.startswith(
        "We did not hear back from the registry; it may have approved. Greenroom is checking…"
    )
    assert "(approve sent by acme-admin at " in outcome.message
    assert registry.traffic.rejections() == 0


def test_a_stage_claimed_by_another_request_is_busy(registry: Registry, world: World):
    stage = registry.stage()
    link(world.approver, registry.alice)
    assert decisions.claim_decision(stage.pk) is not None  # another request is sending

    outcome = decide(stage, world.approver, Decision.REJECT, otp=registry.alice.code())

    assert outcome.kind == Kind.BUSY
    assert outcome.message == (
        "Someone is sending a decision about this stage right now. Nothing was sent; look at "
        "the stage again in a moment."
    )
    assert registry.traffic.rejections() == 0


@pytest.mark.parametrize("registry", ["other"], indirect=True)
def test_a_registry_without_security_keys_asks_for_a_code_not_a_wrong_one(
    registry: Registry, world: World
):
    stage = registry.stage()
    link(world.approver, registry.alice)

    outcome = decide(stage, world.approver, Decision.APPROVE)  # the first attempt: no factor

    assert outcome.kind == Kind.CODE_NEEDED
    assert outcome.message == (
        "The registry asks for a one-time code from your authenticator app (or one of your "
        "recovery codes)."
    )
    assert NpmToken.objects.get(user=world.approver).code_failures == 0  # nothing was refused


def test_a_stage_rejected_between_the_read_and_the_approve_is_decided_elsewhere(
    registry: Registry, world: World, monkeypatch: pytest.MonkeyPatch
):
    stage = registry.stage()
    link(world.approver, registry.alice)
    approve_stage = RegistryClient.approve_stage

    def rejected_first(client: RegistryClient, stage_id: Any, **options: Any) -> Any:
        registry.reject_elsewhere(stage)  # after the portal's read, before its approve
        return approve_stage(client, stage_id, **options)

    monkeypatch.setattr(RegistryClient, "approve_stage", rejected_first)

    outcome = decide(stage, world.approver, Decision.APPROVE, otp=registry.alice.code())

    assert outcome.kind == Kind.DECIDED
    assert outcome.message == (
        "This stage was already decided elsewhere: the registry no longer has it, and its "
        "version is not published: it was rejected or withdrawn."
    )
    stage.refresh_from_db()
    assert (stage.state, stage.resolved_elsewhere) == (State.REJECTED, True)
