"""Celery tasks for notifications: thin wrappers that give reviews.notify.dispatch and
reviews.notify.webhooks their schedule and retry policy.

Tasks take ids, never model instances. Every one is idempotent (events are claimed once,
emails and deliveries are claimed and recorded once), which is what makes `acks_late` safe:
a redelivered message finds the work done or claimed and does nothing. Retries are bounded
and only for transient failures (a mail server or endpoint that is down, slow or busy).

Beat runs three of them (settings.CELERY_BEAT_SCHEDULE): the sweep every
GREENROOM_NOTIFY_INTERVAL seconds (dispatches due events, resends what lost its task), and
reminders and digests hourly.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.contrib.django.task import DjangoTask
from django.conf import settings

from reviews.notify import dispatch as notifications
from reviews.notify import webhooks
from reviews.notify.dispatch import Fanout

logger = logging.getLogger(__name__)


def enqueue(fanout: Fanout) -> None:
    """One task per email and per webhook delivery, by id, once the rows are committed."""
    for notification_id in fanout.notification_ids:
        send_notification_task.delay_on_commit(notification_id)
    for delivery_id in fanout.delivery_ids:
        deliver_webhook_task.delay_on_commit(delivery_id)


@shared_task(
    bind=True,
    base=DjangoTask,
    acks_late=True,
    ignore_result=True,
    # Sweeps queued while the workers were down are not worth running one after the other.
    expires=float(settings.GREENROOM_NOTIFY_INTERVAL),
)
def notifications_sweep_task(self: DjangoTask[Any, Any]) -> None:
    """Dispatch the events that are due, and resend what lost its task."""
    enqueue(notifications.dispatch_events())
    enqueue(Fanout(notifications.stale_notifications(), webhooks.stale_deliveries()))


@shared_task(bind=True, base=DjangoTask, acks_late=True, ignore_result=True, expires=3600.0)
def reminders_task(self: DjangoTask[Any, Any]) -> None:
    """Reminder events for stages waiting too long, dispatched at once."""
    fanout = Fanout()
    for event in notifications.create_reminders():
        fanout.extend(notifications.dispatch_event(event.pk))
    enqueue(fanout)


@shared_task(bind=True, base=DjangoTask, acks_late=True, ignore_result=True, expires=3600.0)
def digests_task(self: DjangoTask[Any, Any]) -> None:
    """Today's digests, once the digest hour has come (a later run the same day adds none)."""
    enqueue(Fanout(notifications.create_digests()))


@shared_task(
    bind=True,
    base=DjangoTask,
    acks_late=True,
    ignore_result=True,
    max_retries=notifications.MAX_SEND_ATTEMPTS,
)
def send_notification_task(self: DjangoTask[Any, Any], notification_id: int) -> str:
    """Send one email once; a mail server that is down or says 4xx is tried again later
    (send_notification records FAILED once its attempts are spent)."""
    try:
        return notifications.send_notification(notification_id)
    except notifications.TransientSendError as e:
        raise self.retry(countdown=e.retry_in) from None


@shared_task(
    bind=True,
    base=DjangoTask,
    acks_late=True,
    ignore_result=True,
    max_retries=webhooks.MAX_ATTEMPTS,
)
def deliver_webhook_task(self: DjangoTask[Any, Any], delivery_id: int) -> str:
    """Post one webhook delivery; timeouts, 429 and 5xx are tried again later, a bounded
    number of times (deliver records FAILED once its attempts are spent)."""
    try:
        return webhooks.deliver(delivery_id)
    except webhooks.RetryDelivery as e:
        raise self.retry(countdown=e.retry_in) from None
