"""Who hears about reviews, line comments, replies, resolutions and policy changes: the stager
and the people already in the conversation (approvers too, for a verdict), never the author,
each by their choice for the team."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.mail import EmailMessage

from reviews.audit.trail import Actor
from reviews.models import LineComment, NotificationMode, NotificationPreference, NpmToken, Role
from reviews.review import discussion
from reviews.teams import policy
from tests.notify.conftest import run_outbox
from tests.personas import World, member_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def bob(people: World) -> User:
    user = member_of(people.acme, "bob", Role.REVIEWER)
    user.email = "bob@example.test"
    user.save(update_fields=["email"])
    return user


def to(emails: list[EmailMessage]) -> list[str]:
    return sorted(address for message in emails for address in message.to)


def stager_is_viewer(world: World) -> None:
    """The Acme stage was staged by `ci`, the viewer's CI npm user."""
    NpmToken.objects.create(user=world.viewer, npm_user="ci", encrypted="x")


def test_a_review_reaches_the_stager_and_the_approvers_not_its_author(people: World, bob):
    stager_is_viewer(people)
    discussion.submit_review(
        people.acme_stage, bob, "request_changes", "Line 4 sends the token.", Actor(user=bob)
    )

    sent = run_outbox()

    assert to(sent) == [
        "acme-admin@example.test",
        "approver@example.test",
        "viewer@example.test",
    ]
    message = sent[0]
    assert "bob requested changes on @acme/ui@2.0.0" in message.subject
    assert "Line 4 sends the token." in message.body
    assert f"/stages/{people.acme_stage.stage_id}/#reviews" in message.body


def test_a_reply_reaches_the_thread_and_earlier_reviewers(people: World, bob):
    stager_is_viewer(people)
    stage = people.acme_stage
    discussion.submit_review(stage, people.approver, "comment", "Looking.", Actor())
    thread = LineComment.objects.create(
        stage=stage, author=bob, author_name="bob", path="a.js", side="new", line=4, body="Why?"
    )
    run_outbox()

    discussion.reply(thread, people.acme_admin, "<b>Telemetry</b>", Actor(user=people.acme_admin))
    sent = run_outbox()

    assert to(sent) == ["approver@example.test", "bob@example.test", "viewer@example.test"]
    assert "acme-admin replied on a.js line 4 of @acme/ui@2.0.0" in sent[0].subject
    html = getattr(sent[0], "alternatives", [])[0][0]
    assert "&lt;b&gt;Telemetry&lt;/b&gt;" in str(html)


def test_a_resolution_reaches_the_thread_not_the_resolver(people: World, bob):
    stage = people.acme_stage
    thread = LineComment.objects.create(
        stage=stage, author=bob, author_name="bob", path="a.js", side="new", line=4, body="Why?"
    )

    discussion.set_resolved(thread, people.acme_admin, True, Actor(user=people.acme_admin))
    sent = run_outbox()

    assert to(sent) == ["bob@example.test"]
    assert "acme-admin resolved the thread on a.js line 4" in sent[0].subject


def test_preferences_apply(people: World, bob):
    stager_is_viewer(people)
    NotificationPreference.objects.create(
        user=people.viewer, team=people.acme, mode=NotificationMode.OFF
    )
    NotificationPreference.objects.create(
        user=people.approver, team=people.acme, mode=NotificationMode.DIGEST
    )

    discussion.submit_review(people.acme_stage, bob, "approve", "", Actor(user=bob))

    assert to(run_outbox()) == ["acme-admin@example.test"]


def test_an_outsider_hears_nothing(people: World, bob):
    NpmToken.objects.create(user=people.outsider, npm_user="ci", encrypted="x")

    discussion.submit_review(people.acme_stage, bob, "approve", "", Actor(user=bob))

    assert "outsider@example.test" not in to(run_outbox())


def test_a_policy_change_reaches_every_member(people: World):
    policy.set_policy(
        people.acme,
        Actor(user=people.acme_admin),
        required_approvals=2,
        no_self_approval=True,
        acknowledge_findings=True,
    )

    sent = run_outbox()

    assert to(sent) == [
        "acme-admin@example.test",
        "approver@example.test",
        "viewer@example.test",
    ]
    assert "The review policy of Acme changed" in sent[0].subject
    assert "approving reviews before the final approve: 2" in sent[0].body
