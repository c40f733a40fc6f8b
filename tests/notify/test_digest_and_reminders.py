"""The daily digest (what arrived, what was decided, what is still waiting, per team) and the
reminders to approvers about stages waiting too long, at a bounded rate."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.conf import LazySettings
from django.utils import timezone

from reviews.audit.trail import Actor
from reviews.models import (
    Notification,
    NotificationEvent,
    NotificationMode,
    StagedVersion,
    TeamNotificationSettings,
)
from reviews.notify import dispatch as notifications
from tests.notify.conftest import (
    BASE_URL,
    html_of,
    recipients_of,
    run_outbox,
    send_pending,
)
from tests.personas import World, make_stage

pytestmark = pytest.mark.django_db

State = StagedVersion.State
APPROVERS = ["acme-admin@example.test", "approver@example.test"]


def at(hour: int, days: int = 0) -> datetime:
    today = timezone.now().replace(hour=hour, minute=0, second=0, microsecond=0)
    return today + timedelta(days=days)


def stage(
    name: str, version: str, *, seen: datetime, staged: datetime | None = None
) -> StagedVersion:
    created = make_stage(name, version)
    StagedVersion.objects.filter(pk=created.pk).update(first_seen_at=seen, staged_at=staged or seen)
    created.refresh_from_db()
    return created


@pytest.fixture(autouse=True)
def only_this_tests_stages(people: World) -> None:
    """The world's stages were seen just now; these tests place their own in time."""
    StagedVersion.objects.all().delete()


def digest_for(world: World) -> None:
    notifications.set_preference(
        world.viewer, world.acme, NotificationMode.DIGEST, Actor(user=world.viewer)
    )


# -- The digest -----------------------------------------------------------------------------------


def test_the_digest_lists_what_arrived_what_was_decided_and_what_still_waits(
    people: World,
) -> None:
    digest_for(people)
    now = at(9)
    old = stage("@acme/old", "1.0.0", seen=now - timedelta(days=5))
    fresh = stage("@acme/fresh", "2.0.0", seen=now - timedelta(hours=3))
    done = stage("@acme/done", "1.1.0", seen=now - timedelta(days=2))
    StagedVersion.objects.filter(pk=done.pk).update(
        state=State.APPROVED, resolved_at=now - timedelta(hours=1)
    )
    stage("left-pad", "9.9.9", seen=now - timedelta(hours=1))  # not the viewer's team

    created = notifications.create_digests(now)
    sent = send_pending()

    assert len(created) == 1
    assert recipients_of(sent) == ["viewer@example.test"]
    message = sent[0]
    assert message.subject == "[Greenroom] Daily digest: 1 new, 1 still waiting, 1 decided"
    body = message.body
    assert "== Acme ==" in body
    assert f"New (1):\n  - @acme/fresh@2.0.0 (latest) by ci, pending: {BASE_URL}/stages/" in body
    assert "Decided:\n  - @acme/done@1.1.0: approved" in body
    assert "Still waiting:\n  - @acme/old@1.0.0, staged" in body
    assert "left-pad" not in body
    html = html_of(message)
    assert f'<a href="{BASE_URL}/stages/{fresh.stage_id}/">@acme/fresh@2.0.0</a>' in html
    assert f'<a href="{BASE_URL}/stages/{old.stage_id}/">@acme/old@1.0.0</a>' in html


def test_one_digest_a_day_after_the_digest_hour(people: World) -> None:
    digest_for(people)
    stage("@acme/fresh", "2.0.0", seen=at(7))

    assert notifications.create_digests(at(7)) == []
    assert len(notifications.create_digests(at(8))) == 1
    assert notifications.create_digests(at(15)) == []  # sent already: nothing pending
    assert len(send_pending()) == 1
    notifications.create_digests(at(20))

    assert Notification.objects.filter(kind="digest").count() == 1
    assert send_pending() == []


def test_the_next_digest_starts_where_the_last_one_ended(people: World) -> None:
    digest_for(people)
    notifications.create_digests(at(8))
    send_pending()
    stage("@acme/later", "1.0.0", seen=at(12))

    notifications.create_digests(at(8, days=1))
    sent = send_pending()

    today, tomorrow = Notification.objects.filter(kind="digest").order_by("id")
    assert tomorrow.window_start == today.window_end
    assert "New (1):\n  - @acme/later@1.0.0" in sent[0].body


def test_an_empty_digest_is_not_sent(people: World) -> None:
    digest_for(people)
    StagedVersion.objects.update(state=State.APPROVED, resolved_at=at(1, days=-3))

    notifications.create_digests(at(9))

    assert send_pending() == []
    assert Notification.objects.get(kind="digest").status == "skipped"


def test_only_people_who_chose_it_get_a_digest_and_no_immediate_email(people: World) -> None:
    digest_for(people)
    fresh = stage("@acme/fresh", "2.0.0", seen=timezone.now())
    StagedVersion.objects.filter(pk=fresh.pk).update(integrity="verified")
    notifications.stage_seen(fresh)

    immediate = run_outbox()
    notifications.create_digests(at(9, days=1))
    digests = send_pending()

    assert "viewer@example.test" not in recipients_of(immediate)
    assert recipients_of(digests) == ["viewer@example.test"]


# -- Reminders ------------------------------------------------------------------------------------


def test_a_stage_pending_longer_than_three_days_reminds_the_approvers(people: World) -> None:
    now = timezone.now()
    stage("@acme/slow", "1.0.0", seen=now - timedelta(days=4))
    stage("@acme/recent", "1.0.0", seen=now - timedelta(days=2))

    events = notifications.create_reminders(now)
    sent = run_outbox(now)

    assert [e.stage.package_name for e in events if e.stage] == ["@acme/slow"]
    assert recipients_of(sent) == APPROVERS
    assert sent[0].subject == "[Greenroom] Waiting 4 days: @acme/slow@1.0.0"
    assert "You approve Acme's packages" in sent[0].body


def test_reminders_repeat_at_most_once_a_day(people: World) -> None:
    now = timezone.now()
    stage("@acme/slow", "1.0.0", seen=now - timedelta(days=4))
    sent = []
    for hours in range(0, 49, 1):  # two days of hourly runs
        moment = now + timedelta(hours=hours)
        notifications.create_reminders(moment)
        sent += run_outbox(moment)

    numbers = list(
        NotificationEvent.objects.filter(kind="stage.reminder").values_list("number", flat=True)
    )
    assert numbers == [1, 2, 3]  # now, a day later, two days later
    assert len(sent) == 3 * len(APPROVERS)


def test_the_team_chooses_when_and_how_often(people: World) -> None:
    now = timezone.now()
    TeamNotificationSettings.objects.create(
        team=people.acme, reminder_after_days=7, reminder_every_days=3
    )
    stage("@acme/slow", "1.0.0", seen=now - timedelta(days=4))
    assert notifications.create_reminders(now) == []

    assert len(notifications.create_reminders(now + timedelta(days=3))) == 1
    assert notifications.create_reminders(now + timedelta(days=5)) == []
    assert len(notifications.create_reminders(now + timedelta(days=6))) == 1


def test_no_reminders_when_the_team_turned_them_off_or_the_stage_was_decided(
    people: World,
) -> None:
    now = timezone.now()
    slow = stage("@acme/slow", "1.0.0", seen=now - timedelta(days=10))
    stage("left-pad", "2.0.0", seen=now - timedelta(days=10))
    TeamNotificationSettings.objects.create(team=people.pad, reminder_after_days=0)

    first = notifications.create_reminders(now)
    StagedVersion.objects.filter(pk=slow.pk).update(state=State.REJECTED)
    later = notifications.create_reminders(now + timedelta(days=2))

    assert [e.stage.package_name for e in first if e.stage] == ["@acme/slow"]
    assert later == []


def test_a_reminder_for_a_stage_decided_meanwhile_is_not_sent(people: World) -> None:
    now = timezone.now()
    slow = stage("@acme/slow", "1.0.0", seen=now - timedelta(days=10))
    notifications.create_reminders(now)
    fanout = notifications.dispatch_events(now)
    StagedVersion.objects.filter(pk=slow.pk).update(state=State.APPROVED)

    outcomes = {notifications.send_notification(pk) for pk in fanout.notification_ids}

    assert outcomes == {notifications.SKIPPED}


def test_approvers_who_chose_the_digest_get_no_reminder(
    people: World, settings: LazySettings
) -> None:
    notifications.set_preference(
        people.approver, people.acme, NotificationMode.DIGEST, Actor(user=people.approver)
    )
    now = timezone.now()
    stage("@acme/slow", "1.0.0", seen=now - timedelta(days=4))

    notifications.create_reminders(now)

    assert recipients_of(run_outbox(now)) == ["acme-admin@example.test"]
