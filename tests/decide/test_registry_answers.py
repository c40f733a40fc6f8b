"""Registries answer differently where the spec is silent (issue 14): npm's, and another
open-source one (`compat="other"`: 404 for people who may not publish, the code checked before
the stage, 403 for a revoked token, one challenge for every refused code, recovery codes).
Every test here runs against both, and asserts the portal's words and audit entries."""

from __future__ import annotations

import pytest

from reviews.audit.trail import Action, Actor
from reviews.decide import npm_tokens
from reviews.models import AuditEvent, NpmToken, StagedVersion
from tests.decide.conftest import Registry, approve, both_modes, client_for, link, reject
from tests.personas import World

pytestmark = [pytest.mark.django_db, both_modes]

State = StagedVersion.State
NOT_ACCEPTED = (
    "The registry did not accept that code (wrong, already used, or too many attempts: wait a "
    "few minutes)."
)


def last_event(stage: StagedVersion) -> AuditEvent:
    event = AuditEvent.objects.filter(stage=stage).order_by("-id").first()
    assert event is not None
    return event


def a_wrong_code(registry: Registry) -> str:
    return registry.alice.wrong_code()


def test_an_account_that_may_not_publish_is_told_it_cannot_see_the_package(
    registry: Registry, world: World
):
    stage = registry.stage()
    link(world.approver, registry.mallory)

    body = approve(client_for(world.approver), stage).content.decode()

    assert "Your npm account (mallory) cannot see or decide @acme/widget" in body
    assert "still staged" in body
    assert "one-time code" not in body  # no second factor is asked for
    assert registry.traffic.approvals() == 0
    stage.refresh_from_db()
    assert (stage.state, stage.decision_claimed_at) == (State.PENDING, None)
    event = last_event(stage)
    assert (event.action, event.registry_status, event.npm_user) == (
        Action.DECISION_REFUSED,
        404,
        "mallory",
    )
    assert event.payload["why"] == "stage not visible to this npm account"


def test_a_stage_decided_elsewhere_is_found_before_a_factor_is_asked(
    registry: Registry, world: World
):
    stage = registry.stage()
    link(world.approver, registry.alice)
    registry.reject_elsewhere(stage)

    body = approve(client_for(world.approver), stage).content.decode()

    assert "This stage was already decided elsewhere: the registry no longer has it" in body
    assert registry.traffic.approvals() == 0
    stage.refresh_from_db()
    assert (stage.state, stage.resolved_elsewhere) == (State.REJECTED, True)
    event = last_event(stage)
    assert (event.action, event.registry_status) == (Action.DECISION_REFUSED, 404)
    assert (event.payload["why"], event.payload["registry_state"]) == (
        "already decided elsewhere",
        "rejected",
    )


def test_a_code_is_never_spent_on_a_stage_that_vanished(registry: Registry, world: World):
    first, second = registry.stage("@acme/widget", "1.0.0"), registry.stage("@acme/widget", "2.0.0")
    link(world.approver, registry.alice)
    client = client_for(world.approver)
    assert 'name="otp"' in approve(client, first).content.decode()  # asked for a code
    registry.approve_elsewhere(first)
    code = registry.alice.code(1)  # a code no one has used: one-time in "other"

    body = approve(client, first, otp=code).content.decode()

    assert "already decided elsewhere: the registry shows it approved" in body
    assert registry.traffic.approvals(with_factor=True) == 0
    # The code was not spent: it still decides another stage.
    assert approve(client, second, otp=code).status_code == 303
    second.refresh_from_db()
    assert second.state == State.APPROVED


def test_a_revoked_token_must_be_replaced(registry: Registry, world: World):
    stage = registry.stage()
    link(world.approver, registry.alice)
    registry.revoke_tokens_of("alice")

    body = approve(client_for(world.approver), stage).content.decode()

    assert "The registry no longer accepts your linked npm token (revoked or expired" in body
    assert "Link a new token on your settings page" in body
    assert registry.traffic.count("GET", "/-/whoami") == 2  # when linked, and to tell now
    assert registry.traffic.approvals() == 0
    event = last_event(stage)
    assert event.action == Action.DECISION_REFUSED
    assert event.registry_status == (403 if registry.other_mode else 401)
    assert event.payload["why"] == "token revoked or expired"


def test_a_permission_refusal_is_not_called_a_revoked_token(registry: Registry, world: World):
    stage = registry.stage()
    read_only = registry.live.token("alice", read_only=True)
    npm_tokens.link(world.approver, read_only, Actor(user=world.approver))

    body = approve(client_for(world.approver), stage, otp=registry.alice.code(1)).content.decode()

    assert (
        "The registry refused npm user alice for this package (403: This token is read-only)"
        in body
    )
    assert "The token itself is still valid" in body
    assert "Link a new token" not in body
    event = last_event(stage)
    assert (event.action, event.registry_status, event.payload["why"]) == (
        Action.DECISION_REFUSED,
        403,
        "forbidden",
    )


def test_refused_codes_get_one_message_and_a_warning_before_a_lock_out(
    registry: Registry, world: World
):
    stage = registry.stage()
    link(world.approver, registry.alice)
    client = client_for(world.approver)
    wrong = a_wrong_code(registry)

    bodies = [approve(client, stage, otp=wrong, reason="fine").content.decode() for _ in range(3)]

    assert all(NOT_ACCEPTED in body for body in bodies)
    assert "may lock your npm account" not in bodies[1]
    assert "Two more failures may lock your npm account for a few minutes." in bodies[2]
    assert all(wrong not in body for body in bodies)
    record = NpmToken.objects.get(user=world.approver)
    assert record.code_failures == 3
    assert wrong not in repr(record.__dict__)
    event = last_event(stage)
    assert (event.action, event.payload["refused_lately"]) == (Action.DECISION_WRONG_CODE, 3)

    fourth = approve(client, stage, otp=wrong).content.decode()
    fifth = approve(client, stage, otp=wrong).content.decode()
    right = approve(client, stage, otp=registry.alice.code(1))

    assert "One more failure may lock your npm account" in fourth
    assert "your npm account may now be locked for a few minutes" in fifth
    stage.refresh_from_db()
    if registry.other_mode:
        # Locked out: even the right code gets the same answer, and the same words.
        assert NOT_ACCEPTED in right.content.decode()
        assert stage.state == State.PENDING
    else:
        assert right.status_code == 303
        assert stage.state == State.APPROVED
        record.refresh_from_db()
        assert (record.code_failures, record.code_failures_since) == (0, None)


def test_a_recovery_code_is_taken_by_the_form_and_sent(registry: Registry, world: World):
    stage = registry.stage()
    link(world.approver, registry.alice)
    recovery = registry.live.recovery_codes("alice")[0]
    client = client_for(world.approver)

    asked = approve(client, stage).content.decode()
    response = approve(client, stage, otp=recovery)

    assert "One-time code from your authenticator app, or a recovery code" in asked
    assert 'pattern="[A-Za-z0-9 \\-]*"' in asked
    assert recovery not in response.content.decode()
    stage.refresh_from_db()
    event = last_event(stage)
    assert event.payload["factor"] == "recovery code"
    if registry.other_mode:
        assert response.status_code == 303
        assert stage.state == State.APPROVED
        assert event.action == Action.STAGE_APPROVED
    else:  # npm's registry (here) takes no recovery code in npm-otp: one refusal like any
        assert NOT_ACCEPTED in response.content.decode()
        assert event.action == Action.DECISION_WRONG_CODE


@pytest.mark.parametrize(
    ("typed", "accepted"),
    [
        ("123456", True),
        ("12345678", True),
        ("0123456789abcdef", True),
        ("ABCD-1234-efgh", True),
        ("a" * 64, True),
        ("12ab56", False),  # neither six digits nor long enough for a recovery code
        ("12345", False),
        ("a" * 65, False),
        ("abcd_1234_efgh", False),
        ("abcd1234'--", False),
    ],
)
def test_the_form_takes_codes_and_recovery_codes_only(
    registry: Registry, world: World, typed: str, accepted: bool
):
    stage = registry.stage()
    link(world.approver, registry.alice)

    response = reject(
        client_for(world.approver), stage, confirm_version="1.0.0", reason="x", otp=typed
    )

    refused = "Type the 6 to 8 digits from your authenticator app, or a recovery code" in (
        response.content.decode()
    )
    assert refused is not accepted
    assert registry.traffic.rejections() == (1 if accepted else 0)
