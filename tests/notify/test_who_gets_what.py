"""Who gets which email for each event, and how each person's choice per team changes it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from reviews.audit.trail import Actor
from reviews.models import (
    Membership,
    Notification,
    NotificationEvent,
    NotificationMode,
    PackagePattern,
    Role,
    StagedVersion,
    Team,
)
from reviews.notify import dispatch as notifications
from tests.notify.conftest import recipients_of, run_outbox, verified
from tests.personas import World, make_stage

pytestmark = pytest.mark.django_db

State = StagedVersion.State
ACME = ["acme-admin@example.test", "approver@example.test", "viewer@example.test"]


def choose(user: User, team: Team, mode: NotificationMode) -> None:
    notifications.set_preference(user, team, mode, Actor(user=user))


def new_stage(name: str = "@acme/ui", version: str = "3.0.0") -> StagedVersion:
    stage = make_stage(name, version)
    notifications.stage_seen(stage)
    return verified(stage)


def decide_elsewhere(stage: StagedVersion, state: State) -> None:
    StagedVersion.objects.filter(pk=stage.pk).update(state=state, resolved_at=timezone.now())
    stage.refresh_from_db()
    notifications.stage_decided(stage)


def decide_in_portal(stage: StagedVersion, user: User, npm_user: str = "alice") -> None:
    now = timezone.now()
    StagedVersion.objects.filter(pk=stage.pk).update(
        state=State.APPROVED,
        decided_by=user,
        decided_npm_user=npm_user,
        decided_at=now,
        decided_in_portal=True,
        resolved_at=now,
    )
    stage.refresh_from_db()
    notifications.stage_decided(stage)


def test_a_new_stage_reaches_every_member_of_the_owning_team(people: World) -> None:
    new_stage()

    sent = run_outbox()

    assert recipients_of(sent) == ACME
    assert {m.subject for m in sent} == {"[Greenroom] New stage: @acme/ui@3.0.0 (latest)"}


def test_other_teams_staff_and_unowned_packages_hear_nothing(people: World) -> None:
    new_stage("left-pad", "1.4.0")
    new_stage("nobody-owns-this", "0.2.0")

    sent = run_outbox()

    assert recipients_of(sent) == ["outsider@example.test"]


def test_digest_and_none_get_no_immediate_email(people: World) -> None:
    choose(people.viewer, people.acme, NotificationMode.DIGEST)
    choose(people.approver, people.acme, NotificationMode.OFF)
    new_stage()

    sent = run_outbox()

    assert recipients_of(sent) == ["acme-admin@example.test"]


def test_a_person_in_two_owning_teams_gets_one_email_for_the_team_that_wants_it(
    people: World,
) -> None:
    ui = Team.objects.create(name="Acme UI", slug="acme-ui")
    PackagePattern.objects.create(team=ui, pattern="@acme/ui")
    Membership.objects.create(team=ui, user=people.viewer, role=Role.VIEWER)
    choose(people.viewer, people.acme, NotificationMode.OFF)
    new_stage()

    sent = run_outbox()

    assert recipients_of(sent) == ACME
    to_viewer = Notification.objects.get(user=people.viewer)
    assert to_viewer.team == ui
    viewer_mail = next(m for m in sent if m.to == ["viewer@example.test"])
    assert "You get this because you are in Acme UI on Greenroom." in viewer_mail.body


def test_people_without_an_address_or_an_active_account_are_skipped(people: World) -> None:
    User.objects.filter(pk=people.viewer.pk).update(email="")
    User.objects.filter(pk=people.approver.pk).update(is_active=False)
    new_stage()

    assert recipients_of(run_outbox()) == ["acme-admin@example.test"]


def test_a_decision_elsewhere_reaches_the_whole_team(people: World) -> None:
    stage = new_stage()
    run_outbox()
    decide_elsewhere(stage, State.REJECTED)

    sent = run_outbox()

    assert recipients_of(sent) == ACME
    assert sent[0].subject == ("[Greenroom] @acme/ui@3.0.0 rejected or withdrawn outside Greenroom")


def test_a_portal_decision_names_who_and_skips_the_decider(people: World) -> None:
    stage = new_stage()
    run_outbox()
    decide_in_portal(stage, people.approver)

    sent = run_outbox()

    assert recipients_of(sent) == ["acme-admin@example.test", "viewer@example.test"]
    assert sent[0].subject == (
        "[Greenroom] @acme/ui@3.0.0 approved by approver (npm user alice) in Greenroom"
    )
    assert "was approved by approver (npm user alice) in Greenroom." in sent[0].body


def test_a_stage_decided_before_it_was_announced_is_only_announced_decided(
    people: World,
) -> None:
    stage = new_stage()
    decide_elsewhere(stage, State.APPROVED)

    sent = run_outbox()

    subject = "[Greenroom] @acme/ui@3.0.0 approved outside Greenroom"
    assert [m.subject for m in sent] == [subject] * 3
    assert NotificationEvent.objects.filter(dispatched_at__isnull=False).count() == 2


def test_choosing_none_after_dispatch_still_stops_the_email(people: World) -> None:
    new_stage()
    fanout = notifications.dispatch_events()
    choose(people.viewer, people.acme, NotificationMode.OFF)

    outcomes = {notifications.send_notification(pk) for pk in fanout.notification_ids}

    assert outcomes == {notifications.SENT, notifications.SKIPPED}
    skipped = Notification.objects.get(user=people.viewer)
    assert skipped.status == "skipped"


def test_leaving_the_team_after_dispatch_stops_the_email(people: World) -> None:
    new_stage()
    fanout = notifications.dispatch_events()
    Membership.objects.filter(user=people.viewer).delete()

    for pk in fanout.notification_ids:
        notifications.send_notification(pk)

    assert Notification.objects.get(user=people.viewer).status == "skipped"
