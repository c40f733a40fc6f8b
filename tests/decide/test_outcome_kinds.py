"""What `decide()` returns when nothing is sent, or when the registry says no: the kind the
views and the batch runner branch on (a notice or an error, redirect or not, stop the batch or
go on) and the words the person reads. The page tests check the words; these check the kind."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from reviews.audit.trail import Action, Actor
from reviews.decide import decisions
from reviews.decide.decisions import Decision, Kind, Outcome
from reviews.decide.outcomes import Result, Seen, Settlement
from reviews.mirror.registry import (
    IpNotAllowed,
    RateLimited,
    RegistryClient,
    RegistryError,
    Unavailable,
)
from reviews.models import AuditEvent, NpmToken, StagedVersion, UnansweredDecision
from tests.decide.conftest import Registry, link
from tests.personas import World

pytestmark = pytest.mark.django_db

State = StagedVersion.State


def decide(stage: StagedVersion, user: Any, decision: Decision, **options: Any) -> Outcome:
    return decisions.decide(stage, user, decision, Actor(user=user), **options)


def last_event(stage: StagedVersion) -> AuditEvent:
    event = AuditEvent.objects.filter(stage=stage).order_by("-id").first()
    assert event is not None
    return event


def assert_failed_event(stage: StagedVersion, status: int | None, said: str, *, why: str) -> None:
    """The stage's last audit entry is a failed decision with the registry's answer and why."""
    event = last_event(stage)
    assert (event.action, event.registry_status, event.registry_message) == (
        Action.DECISION_FAILED,
        status,
        said,
    )
    assert event.payload["why"] == why


def answering(monkeypatch: pytest.MonkeyPatch, method: str, error: RegistryError) -> None:
    """The registry answers `method` with `error` (answers the dev registry cannot give)."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(RegistryClient, method, refuse)


def test_a_decided_stage_is_a_notice_not_an_error(registry: Registry, world: World):
    stage = registry.stage()
    link(world.approver, registry.alice)
    done = decide(stage, world.approver, Decision.REJECT, otp=registry.alice.code(), reason="no")
    assert done.kind == Kind.DONE
    assert last_event(stage).payload["factor"] == "code"  # a typed code, not a recovery code

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


@pytest.mark.parametrize(
    ("retry_after", "wait"), [(30.0, "try again in 30 seconds."), (None, "try again in a minute.")]
)
def test_a_rate_limited_decision_failed_and_says_when_to_try_again(
    registry: Registry,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    retry_after: float | None,
    wait: str,
):
    stage = registry.stage()
    link(world.approver, registry.alice)
    limited = RateLimited("slow down", retry_after=retry_after, notice="npm: too many requests")
    answering(monkeypatch, "approve_stage", limited)

    outcome = decide(stage, world.approver, Decision.APPROVE, otp=registry.alice.code())

    assert outcome.kind == Kind.FAILED
    assert outcome.message == f"The registry is limiting requests. Nothing was changed; {wait}"
    assert outcome.notice == "npm: too many requests"
    assert_failed_event(stage, 429, "slow down", why="rate limited")


@pytest.mark.parametrize(
    ("status", "said"), [(418, "418: short and stout"), (None, "no answer: short and stout")]
)
def test_any_other_refusal_of_the_decision_failed_and_changed_nothing(
    registry: Registry,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    status: int | None,
    said: str,
):
    stage = registry.stage()
    link(world.approver, registry.alice)
    refusal = RegistryError("short and stout", status=status, notice="npm: I am a teapot")
    answering(monkeypatch, "reject_stage", refusal)

    outcome = decide(stage, world.approver, Decision.REJECT, otp=registry.alice.code())

    assert outcome.kind == Kind.FAILED
    assert outcome.message == (
        f"The registry could not do it ({said}). Nothing was changed; try again."
    )
    assert outcome.notice == "npm: I am a teapot"
    assert_failed_event(stage, status, "short and stout", why="registry error")
    stage.refresh_from_db()
    assert (stage.state, stage.decision_claimed_at) == (State.PENDING, None)


def test_a_stage_that_cannot_be_read_first_is_not_decided(
    registry: Registry, world: World, monkeypatch: pytest.MonkeyPatch
):
    stage = registry.stage()
    link(world.approver, registry.alice)
    answering(monkeypatch, "get_stage", Unavailable("down", status=503, notice="npm: busy"))

    outcome = decide(stage, world.approver, Decision.APPROVE, otp=registry.alice.code())

    assert outcome.kind == Kind.FAILED
    assert outcome.message == (
        "The registry could not be asked whether this stage is still there (503: down). "
        "Nothing was sent; try again."
    )
    assert outcome.notice == "npm: busy"
    assert registry.traffic.approvals() == 0
    assert_failed_event(stage, 503, "down", why="stage could not be read first")


def test_an_address_the_token_refuses_is_found_before_a_factor_is_spent(
    registry: Registry, world: World, monkeypatch: pytest.MonkeyPatch
):
    stage = registry.stage()
    link(world.approver, registry.alice)
    answering(monkeypatch, "get_stage", IpNotAllowed("IP address refused", status=401))

    outcome = decide(stage, world.approver, Decision.APPROVE, otp=registry.alice.code())

    assert outcome.kind == Kind.REFUSED
    assert "the token's IP allowlist does not include this server" in outcome.message
    assert registry.traffic.approvals() == 0
    assert last_event(stage).payload["why"] == "IP not allowed"


# -- After a decision the registry did not answer ----------------------------------------------


@pytest.fixture
def unanswered(world: World) -> UnansweredDecision:
    return UnansweredDecision.objects.create(
        stage=world.acme_stage,
        user=world.approver,
        npm_user="alice",
        decision=Decision.APPROVE,
        sent_at=timezone.now(),
    )


def settlement(unanswered: UnansweredDecision, result: Result, state: Any) -> Settlement:
    return Settlement(unanswered.stage.pk, result, state, Seen.STAGED)


@pytest.mark.parametrize("decision", [Decision.APPROVE, Decision.REJECT])
def test_an_unanswered_decision_still_unknown_is_being_checked(
    unanswered: UnansweredDecision, decision: Decision
):
    unanswered.decision = decision

    outcome = decisions.settled_outcome(
        unanswered, settlement(unanswered, Result.UNKNOWN, State.PENDING), "npm: hello"
    )

    assert outcome == Outcome(
        Kind.UNKNOWN, decision, decisions.checking_words(unanswered), "npm: hello"
    )


@pytest.mark.parametrize(
    ("decision", "state", "verb"),
    [
        (Decision.APPROVE, State.APPROVED, "approved and published"),
        (Decision.REJECT, State.REJECTED, "rejected"),
    ],
)
def test_an_unanswered_decision_the_registry_applied_is_done(
    unanswered: UnansweredDecision, decision: Decision, state: Any, verb: str
):
    unanswered.decision = decision

    outcome = decisions.settled_outcome(
        unanswered, settlement(unanswered, Result.APPLIED, state), "npm: hello"
    )

    assert outcome == Outcome(
        Kind.DONE,
        decision,
        f"@acme/ui@2.0.0 was {verb} by the registry, as npm user alice: its answer never "
        "came, but the registry now shows it.",
        "npm: hello",
    )


@pytest.mark.parametrize("decision", [Decision.APPROVE, Decision.REJECT])
def test_an_unanswered_decision_that_changed_nothing_may_be_sent_again(
    unanswered: UnansweredDecision, decision: Decision
):
    unanswered.decision = decision

    outcome = decisions.settled_outcome(
        unanswered, settlement(unanswered, Result.NOT_APPLIED, State.PENDING), "npm: hello"
    )

    assert outcome == Outcome(
        Kind.FAILED,
        decision,
        f"The registry did not {decision} it: the stage is still staged, so that request "
        "changed nothing. You may decide again.",
        "npm: hello",
    )


@pytest.mark.parametrize(
    ("decision", "state", "not_done"),
    [
        (Decision.APPROVE, State.REJECTED, "not approved"),
        (Decision.REJECT, State.APPROVED, "not rejected"),
    ],
)
def test_an_unanswered_decision_overtaken_elsewhere_is_decided(
    unanswered: UnansweredDecision, decision: Decision, state: Any, not_done: str
):
    unanswered.decision = decision
    StagedVersion.objects.filter(pk=unanswered.stage.pk).update(state=state)

    outcome = decisions.settled_outcome(
        unanswered, settlement(unanswered, Result.NOT_APPLIED, state), "npm: hello"
    )

    assert outcome == Outcome(
        Kind.DECIDED,
        decision,
        f"The registry did not answer, and now shows this stage {state} elsewhere, "
        f"{not_done} by your request.",
        "npm: hello",
    )
    assert unanswered.stage.state == state  # read again for the page


def test_check_now_on_an_unanswered_decision_shows_no_notice(registry: Registry, world: World):
    stage = registry.stage()
    UnansweredDecision.objects.create(
        stage=stage, user=world.approver, decision=Decision.APPROVE, sent_at=timezone.now()
    )

    outcome = decisions.check_unanswered(stage, Actor(user=world.approver))

    assert outcome is not None
    assert (outcome.kind, outcome.notice) == (Kind.UNKNOWN, "")
