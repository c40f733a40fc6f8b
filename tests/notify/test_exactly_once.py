"""Each email goes out once per event and person: under a repeated sync pass, a repeated
dispatch, a retried or redelivered task, and a worker that died in the middle of a send."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.conf import LazySettings
from django.core import mail
from django.utils import timezone

from reviews.mirror import sync
from reviews.mirror.registry import RegistryClient
from reviews.models import DeliveryStatus, Notification, NotificationEvent, StagedVersion
from reviews.notify import dispatch as notifications
from reviews.tasks import notifications_sweep_task, send_notification_task
from tests.decide.conftest import Registry, approve, client_for, link
from tests.notify.backends import FlakyBackend
from tests.notify.conftest import recipients_of, run_outbox, verified
from tests.personas import World, make_stage
from tests.support import packages

pytestmark = pytest.mark.django_db


@pytest.fixture
def flaky(settings: LazySettings) -> Iterator[type[FlakyBackend]]:
    settings.EMAIL_BACKEND = "tests.notify.backends.FlakyBackend"
    FlakyBackend.errors = []
    FlakyBackend.calls = 0
    yield FlakyBackend
    FlakyBackend.errors = []


def one_pending(people: World) -> Notification:
    stage = verified(make_stage("@acme/ui", "3.0.0"))
    notifications.stage_seen(stage)
    notifications.dispatch_events()
    return Notification.objects.get(user=people.viewer)


def test_a_repeated_sync_announces_a_stage_once(people: World, registry: Registry) -> None:
    packages.stage(registry.url, registry.ci_token, "@acme/widget", "1.0.0")

    first, second = sync.sync_stages(), sync.sync_stages()
    sent = run_outbox() + run_outbox()

    assert (first.new, second.new) == (1, 0)
    widget = StagedVersion.objects.get(package_name="@acme/widget")
    assert NotificationEvent.objects.filter(stage=widget).count() == 1
    assert recipients_of([m for m in sent if "@acme/widget" in m.subject]) == [
        "acme-admin@example.test",
        "approver@example.test",
        "viewer@example.test",
    ]


def test_a_stage_rejected_at_the_registry_is_reported_once(
    people: World, registry: Registry
) -> None:
    stage_id = packages.stage(registry.url, registry.ci_token, "@acme/widget", "1.0.0")
    sync.sync_stages()  # also resolves the world's stages, which the registry never had
    run_outbox()
    with RegistryClient(registry.url, registry.ci_token, timeout=5) as client:
        client.reject_stage(stage_id)

    sync.sync_stages()
    sync.sync_stages()
    sent = run_outbox() + run_outbox()

    widget = StagedVersion.objects.get(package_name="@acme/widget")
    assert NotificationEvent.objects.filter(stage=widget, kind="stage.decided").count() == 1
    widget_news = [m for m in sent if "@acme/widget" in m.subject]
    assert len(widget_news) == 3
    assert {m.subject for m in widget_news} == {
        "[Greenroom] @acme/widget@1.0.0 rejected or withdrawn outside Greenroom"
    }


def test_an_approval_in_the_portal_is_reported_once_without_the_approver(
    people: World, registry: Registry, django_capture_on_commit_callbacks
) -> None:
    stage = registry.stage()
    run_outbox()
    link(people.approver, registry.alice)

    with django_capture_on_commit_callbacks():
        response = approve(client_for(people.approver), stage, otp=registry.alice.code())
    sent = run_outbox() + run_outbox()

    assert response.status_code == 303
    assert recipients_of(sent) == ["acme-admin@example.test", "viewer@example.test"]
    assert sent[0].subject == (
        "[Greenroom] @acme/widget@1.0.0 approved by approver (npm user alice) in Greenroom"
    )


def test_a_second_dispatch_creates_nothing(people: World) -> None:
    stage = verified(make_stage("@acme/ui", "3.0.0"))
    notifications.stage_seen(stage)
    notifications.stage_seen(stage)  # a hook called twice records one event

    first = notifications.dispatch_events()
    second = notifications.dispatch_event(NotificationEvent.objects.get().pk)

    assert len(first.notification_ids) == 3
    assert second.notification_ids == []
    assert Notification.objects.count() == 3


def test_a_retried_task_sends_once(people: World, eager: None) -> None:
    notification = one_pending(people)

    send_notification_task.apply(args=(notification.pk,))
    send_notification_task.apply(args=(notification.pk,))

    assert len(mail.outbox) == 1
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == (DeliveryStatus.SENT, 1)
    assert notification.message_id == notifications.message_id(notification.key)


def test_a_worker_that_died_mid_send_is_covered_once_its_lease_ends(people: World) -> None:
    notification = one_pending(people)
    # A worker claimed it and died: its redelivered task finds the claim live.
    claimed_at = timezone.now()
    Notification.objects.filter(pk=notification.pk).update(claimed_at=claimed_at, attempts=1)

    assert notifications.send_notification(notification.pk) == notifications.BUSY
    assert notification.pk not in notifications.stale_notifications()
    assert mail.outbox == []

    later = claimed_at + notifications.SEND_LEASE + notifications.STALE_AFTER + timedelta(seconds=1)
    assert notification.pk in notifications.stale_notifications(now=later)
    Notification.objects.filter(pk=notification.pk).update(
        claimed_at=claimed_at - notifications.SEND_LEASE
    )
    assert notifications.send_notification(notification.pk) == notifications.SENT
    assert notifications.send_notification(notification.pk) == notifications.BUSY

    assert len(mail.outbox) == 1
    assert mail.outbox[0].extra_headers["Message-ID"] == notifications.message_id(notification.key)
    notification.refresh_from_db()
    assert notification.attempts == 2


def test_the_sweep_resends_only_what_lost_its_task(
    people: World, django_capture_on_commit_callbacks
) -> None:
    notification = one_pending(people)
    fresh_ids = set(Notification.objects.values_list("id", flat=True))
    Notification.objects.filter(pk=notification.pk).update(
        next_attempt_at=timezone.now() - notifications.STALE_AFTER - timedelta(minutes=1)
    )

    with django_capture_on_commit_callbacks() as callbacks:
        notifications_sweep_task.apply()

    assert [c.args for c in callbacks] == [(notification.pk,)]
    assert fresh_ids - {notification.pk}  # the others still have their own tasks


def test_a_mail_server_that_is_down_is_tried_again_until_it_answers(
    people: World, eager: None, flaky: type[FlakyBackend]
) -> None:
    notification = one_pending(people)
    flaky.errors = [smtplib.SMTPServerDisconnected("gone"), ConnectionRefusedError()]

    send_notification_task.apply(args=(notification.pk,))

    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == (DeliveryStatus.SENT, 3)
    assert flaky.calls == 3
    assert len(mail.outbox) == 1


def test_retries_are_bounded(people: World, eager: None, flaky: type[FlakyBackend]) -> None:
    notification = one_pending(people)
    flaky.errors = [
        smtplib.SMTPResponseException(421, b"try later")
        for _ in range(notifications.MAX_SEND_ATTEMPTS + 3)
    ]

    send_notification_task.apply(args=(notification.pk,))

    notification.refresh_from_db()
    assert notification.status == DeliveryStatus.FAILED
    assert notification.attempts == notifications.MAX_SEND_ATTEMPTS == flaky.calls
    assert notification.last_error == "the mail server answered 421 try later"
    later = timezone.now() + timedelta(days=1)
    assert notification.pk not in notifications.stale_notifications(now=later)


def test_a_permanent_refusal_is_not_retried(
    people: World, eager: None, flaky: type[FlakyBackend]
) -> None:
    notification = one_pending(people)
    flaky.errors = [
        smtplib.SMTPRecipientsRefused({"viewer@example.test": (550, b"no such mailbox")})
    ]

    send_notification_task.apply(args=(notification.pk,))

    notification.refresh_from_db()
    assert (notification.status, notification.attempts, flaky.calls) == ("failed", 1, 1)
    assert notification.last_error == ("the mail server refused the recipient: 550 no such mailbox")


def test_the_decided_email_of_a_stage_is_one_even_if_both_paths_report_it(
    people: World,
) -> None:
    stage = verified(make_stage("@acme/ui", "3.0.0"))
    StagedVersion.objects.filter(pk=stage.pk).update(state=StagedVersion.State.APPROVED)
    notifications.stage_decided(stage)  # the sync saw it vanish
    notifications.stage_decided(stage)  # and the portal's own decision landed after

    assert len(run_outbox()) == 3


def test_beat_runs_the_sweep_reminders_and_digests_and_every_task_acks_late() -> None:
    from django.conf import settings

    from reviews import tasks

    schedule = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {
        tasks.notifications_sweep_task.name,
        tasks.reminders_task.name,
        tasks.digests_task.name,
    } <= schedule
    # Celery's autodiscovery imports reviews.tasks in every worker; a task elsewhere would be
    # unknown to a worker that never imported its module.
    assert all(str(name).startswith("reviews.tasks.") for name in schedule)
    for task in (
        tasks.notifications_sweep_task,
        tasks.reminders_task,
        tasks.digests_task,
        tasks.send_notification_task,
        tasks.deliver_webhook_task,
    ):
        assert task.acks_late
