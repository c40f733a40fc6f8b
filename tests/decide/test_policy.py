"""The team policy at the moment of the click: required approving reviews, no self-approval and
the findings tick, refused by `decisions.decide()` itself and by the approve view (403 with the
reason), with nothing sent to the registry; and said before the click in the decision panel."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from reviews.audit.trail import Action, Actor
from reviews.decide import decisions
from reviews.decide.decisions import Decision, Kind
from reviews.models import (
    Analysis,
    AuditEvent,
    Profile,
    Review,
    Role,
    StageBaseline,
    StagedVersion,
    Team,
)
from reviews.review import discussion
from tests.decide.conftest import Registry, approve, client_for, link, url
from tests.personas import World, member_of

pytestmark = pytest.mark.django_db


def two_approvals_policy(world: World) -> None:
    Team.objects.filter(pk=world.acme.pk).update(required_approvals=2, no_self_approval=True)


def reviewers(world: World) -> tuple[User, User]:
    return member_of(world.acme, "rita", Role.REVIEWER), member_of(
        world.acme, "ravi", Role.REVIEWER
    )


def review(stage: StagedVersion, user, verdict: str = "approve", text: str = "") -> Review:
    stage.refresh_from_db()
    return discussion.submit_review(stage, user, verdict, text or "fine", Actor(user=user))


def decide(stage: StagedVersion, user, otp: str | None = None):
    stage.refresh_from_db()
    return decisions.decide(stage, user, Decision.APPROVE, Actor(user=user), otp=otp)


def refusal(stage: StagedVersion) -> AuditEvent:
    event = AuditEvent.objects.filter(stage=stage, action=Action.DECISION_REFUSED).last()
    assert event is not None
    return event


# -- decisions.decide() itself --------------------------------------------------------------------


def test_decide_refuses_without_the_required_approvals(registry: Registry, world: World):
    two_approvals_policy(world)
    stage = registry.stage()
    link(world.approver, registry.alice)
    rita, _ = reviewers(world)
    review(stage, rita)

    outcome = decide(stage, world.approver, otp=registry.alice.code())

    assert outcome.kind == Kind.POLICY
    assert "1 more approving review (2 required, 1 so far)" in outcome.message
    assert registry.traffic.approvals() == 0
    assert registry.still_staged(stage)
    assert refusal(stage).payload["why"] == "team policy"
    assert refusal(stage).payload["approving_reviews"] == ["rita"]


def test_decide_sends_once_two_distinct_reviewers_approved(registry: Registry, world: World):
    two_approvals_policy(world)
    stage = registry.stage()
    link(world.approver, registry.alice)
    rita, ravi = reviewers(world)
    review(stage, rita)
    review(stage, rita)  # the same person twice is one approval
    assert decide(stage, world.approver, otp=registry.alice.code()).kind == Kind.POLICY
    review(stage, ravi)

    outcome = decide(stage, world.approver, otp=registry.alice.code())

    assert outcome.kind == Kind.DONE
    assert registry.traffic.approvals() == 1
    approved = AuditEvent.objects.get(stage=stage, action=Action.STAGE_APPROVED)
    assert approved.payload["approving_reviews"] == ["rita", "ravi"]
    assert approved.payload["required_approvals"] == 2


def test_outstanding_request_changes_blocks_the_approve(registry: Registry, world: World):
    two_approvals_policy(world)
    stage = registry.stage()
    link(world.approver, registry.alice)
    rita, ravi = reviewers(world)
    review(stage, rita)
    review(stage, ravi)
    review(stage, world.acme_admin, "request_changes", "Line 4 sends the token out.")

    outcome = decide(stage, world.approver, otp=registry.alice.code())

    assert outcome.kind == Kind.POLICY
    assert "changes requested by acme-admin" in outcome.message
    assert registry.traffic.approvals() == 0
    # A later approving review by the same person settles it.
    review(stage, world.acme_admin)
    assert decide(stage, world.approver, otp=registry.alice.code()).kind == Kind.DONE


def test_a_later_comment_does_not_replace_a_standing_verdict(registry: Registry, world: World):
    Team.objects.filter(pk=world.acme.pk).update(required_approvals=1)
    stage = registry.stage()
    link(world.approver, registry.alice)
    rita, _ = reviewers(world)
    review(stage, rita, "request_changes", "no")
    review(stage, rita, "comment", "still thinking")

    assert "changes requested by rita" in decide(stage, world.approver).message


def test_approvals_of_an_earlier_tarball_do_not_count(registry: Registry, world: World):
    Team.objects.filter(pk=world.acme.pk).update(required_approvals=1)
    stage = registry.stage()
    link(world.approver, registry.alice)
    rita, _ = reviewers(world)
    review(stage, rita)
    StagedVersion.objects.filter(pk=stage.pk).update(shasum="f" * 40)  # the registry changed it

    outcome = decide(stage, world.approver, otp=registry.alice.code())

    assert outcome.kind == Kind.POLICY
    assert registry.traffic.approvals() == 0


def test_a_reviewer_who_lost_the_role_no_longer_counts(registry: Registry, world: World):
    Team.objects.filter(pk=world.acme.pk).update(required_approvals=1)
    stage = registry.stage()
    link(world.approver, registry.alice)
    rita, _ = reviewers(world)
    review(stage, rita)
    rita.memberships.update(role=Role.VIEWER)

    assert decide(stage, world.approver).kind == Kind.POLICY


def test_the_stager_may_not_approve_their_own_stage(registry: Registry, world: World):
    stage = registry.stage()
    StagedVersion.objects.filter(pk=stage.pk).update(actor="alice")
    link(world.approver, registry.alice)

    outcome = decide(stage, world.approver, otp=registry.alice.code())

    assert outcome.kind == Kind.POLICY
    assert "You staged this version (npm user alice)" in outcome.message
    assert registry.traffic.approvals() == 0


def test_the_stager_is_known_by_the_ci_npm_user_on_their_profile(registry: Registry, world: World):
    stage = registry.stage()  # staged by `ci`
    link(world.approver, registry.alice)
    Profile.objects.create(user=world.approver, staging_npm_user="ci")

    assert decide(stage, world.approver, otp=registry.alice.code()).kind == Kind.POLICY
    assert registry.traffic.approvals() == 0


def test_the_stager_approves_their_own_stage_where_the_policy_allows_it(
    registry: Registry, world: World
):
    Team.objects.filter(pk=world.acme.pk).update(no_self_approval=False)
    stage = registry.stage()
    StagedVersion.objects.filter(pk=stage.pk).update(actor="alice")
    link(world.approver, registry.alice)

    assert decide(stage, world.approver, otp=registry.alice.code()).kind == Kind.DONE


def test_the_stagers_approving_review_does_not_count(registry: Registry, world: World):
    Team.objects.filter(pk=world.acme.pk).update(required_approvals=1)
    stage = registry.stage()
    rita, _ = reviewers(world)
    link(rita, registry.bob)
    StagedVersion.objects.filter(pk=stage.pk).update(actor="bob")
    review(stage, rita)
    link(world.approver, registry.alice)

    outcome = decide(stage, world.approver, otp=registry.alice.code())

    assert outcome.kind == Kind.POLICY
    assert "1 more approving review" in outcome.message


def test_the_strictest_policy_of_the_owning_teams_wins(registry: Registry, world: World):
    lenient = Team.objects.create(name="Widgets", slug="widgets", no_self_approval=False)
    lenient.patterns.create(pattern="@acme/widget")
    Team.objects.filter(pk=world.acme.pk).update(required_approvals=1, no_self_approval=False)
    stage = registry.stage()
    link(world.approver, registry.alice)

    outcome = decide(stage, world.approver, otp=registry.alice.code())

    assert outcome.kind == Kind.POLICY
    assert registry.traffic.approvals() == 0


def with_severe_findings(stage: StagedVersion, count: int = 2) -> None:
    assert stage.tarball is not None
    analysis = Analysis.objects.create(
        staged=stage.tarball,
        status=Analysis.Status.DONE,
        risk_findings=[
            {"severity": "high", "rule": "code.network", "path": "x.js", "status": "new"}
            for _ in range(count)
        ]
        + [{"severity": "critical", "rule": "code.eval", "path": "y.js", "status": "existing"}],
    )
    StageBaseline.objects.create(
        stage=stage, staged_tarball=stage.tarball, rule="none", analysis=analysis
    )


def test_new_severe_findings_must_be_ticked(registry: Registry, world: World):
    stage = registry.stage()
    with_severe_findings(stage)
    link(world.approver, registry.alice)

    outcome = decide(stage, world.approver, otp=registry.alice.code())

    assert outcome.kind == Kind.POLICY
    assert "I have read the 2 critical/high findings" in outcome.message
    assert registry.traffic.approvals() == 0


def test_the_tick_is_asked_on_the_form_and_recorded_with_the_approval(
    registry: Registry, world: World
):
    stage = registry.stage()
    with_severe_findings(stage)
    link(world.approver, registry.alice)
    client = client_for(world.approver)

    form = client.get(url("stage-approve-form", stage)).content.decode()
    unticked = approve(client, stage, otp=registry.alice.code())
    ticked = approve(client, stage, otp=registry.alice.code(), acknowledge_findings="on")

    assert "I have read the 2 critical/high findings" in form
    assert unticked.status_code == 400
    assert "Tick this once you have read the findings." in unticked.content.decode()
    assert ticked.status_code == 303
    assert registry.traffic.approvals() == 1
    approved = AuditEvent.objects.get(stage=stage, action=Action.STAGE_APPROVED)
    assert approved.payload["findings_acknowledged"] == 2
    assert AuditEvent.objects.filter(
        stage=stage, action=Action.FINDINGS_ACKNOWLEDGED, payload__count=2
    ).exists()


def test_no_tick_is_asked_where_no_team_wants_it(registry: Registry, world: World):
    Team.objects.filter(pk=world.acme.pk).update(acknowledge_findings=False)
    stage = registry.stage()
    with_severe_findings(stage)
    link(world.approver, registry.alice)

    assert decide(stage, world.approver, otp=registry.alice.code()).kind == Kind.DONE


def test_rejecting_is_not_held_by_the_policy(registry: Registry, world: World):
    two_approvals_policy(world)
    stage = registry.stage()
    StagedVersion.objects.filter(pk=stage.pk).update(actor="alice")
    link(world.approver, registry.alice)
    stage.refresh_from_db()

    outcome = decisions.decide(
        stage,
        world.approver,
        Decision.REJECT,
        Actor(user=world.approver),
        otp=registry.alice.code(),
        reason="broken",
    )

    assert outcome.kind == Kind.DONE


# -- The approve view -----------------------------------------------------------------------------


def test_the_approve_view_answers_403_with_the_reason(registry: Registry, world: World):
    two_approvals_policy(world)
    stage = registry.stage()
    link(world.approver, registry.alice)

    response = approve(client_for(world.approver), stage, otp=registry.alice.code())

    assert response.status_code == 403
    body = response.content.decode()
    assert "2 more approving reviews (2 required, 0 so far)" in body
    assert "Nothing was sent to the registry" in body
    assert registry.traffic.approvals() == 0
    assert refusal(stage).username == "approver"


def test_the_approve_view_refuses_before_the_decision_function(
    registry: Registry, world: World, monkeypatch: pytest.MonkeyPatch
):
    """The view's own check, not only decide()'s: a fault injected at decide() is never hit."""
    two_approvals_policy(world)
    stage = registry.stage()
    link(world.approver, registry.alice)

    def must_not_run(*args, **kwargs):
        raise AssertionError("decide() was called although the policy is not met")

    monkeypatch.setattr(decisions, "decide", must_not_run)
    response = approve(client_for(world.approver), stage, otp=registry.alice.code())

    assert response.status_code == 403


def test_the_approve_form_says_why_and_disables_the_button(registry: Registry, world: World):
    stage = registry.stage()
    StagedVersion.objects.filter(pk=stage.pk).update(actor="alice")
    link(world.approver, registry.alice)

    body = client_for(world.approver).get(url("stage-approve-form", stage)).content.decode()

    assert "You staged this version (npm user alice)" in body
    assert 'id="decide-button" disabled' in body


# -- The decision panel, before the click ---------------------------------------------------------


def panel(user, stage: StagedVersion) -> str:
    response = client_for(user).get(url("stage-decision-panel", stage))
    assert response.status_code == 200
    return response.content.decode()


def test_the_panel_disables_approve_with_what_is_missing(registry: Registry, world: World):
    two_approvals_policy(world)
    stage = registry.stage()
    link(world.approver, registry.alice)

    body = panel(world.approver, stage)

    assert 'id="approve-blocked" disabled' in body
    assert 'id="approve-link"' not in body
    assert "2 more approving reviews (2 required, 0 so far)" in body
    assert 'id="reject-link"' in body  # rejecting is never held back


def test_the_panel_says_who_is_not_a_maintainer(registry: Registry, world: World):
    stage = registry.stage()
    assert stage.tarball is not None
    StageBaseline.objects.create(
        stage=stage, staged_tarball=stage.tarball, rule="none", maintainers=["alice", "bob"]
    )
    link(world.approver, registry.mallory)

    body = panel(world.approver, stage)

    assert "npm user mallory is not a maintainer of @acme/widget" in body
    assert 'id="approve-blocked" disabled' in body


def test_the_panel_offers_approve_to_a_maintainer_once_the_policy_is_met(
    registry: Registry, world: World
):
    Team.objects.filter(pk=world.acme.pk).update(required_approvals=1)
    stage = registry.stage()
    assert stage.tarball is not None
    StageBaseline.objects.create(
        stage=stage, staged_tarball=stage.tarball, rule="none", maintainers=["alice", "bob"]
    )
    link(world.approver, registry.alice)
    rita, _ = reviewers(world)
    assert 'id="approve-link"' not in panel(world.approver, stage)

    review(stage, rita)
    body = panel(world.approver, stage)

    assert 'id="approve-link"' in body
    assert "a maintainer of @acme/widget" in body


def test_a_viewer_sees_a_disabled_approve(world: World):
    body = panel(world.viewer, world.acme_stage)

    assert 'id="approve-blocked" disabled' in body
    assert "need the approver role" in body
