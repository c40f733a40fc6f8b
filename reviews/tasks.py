"""Every Celery task, in one place: thin wrappers that give the rooms' functions their schedule
and retry policy, and the only module that chains work across rooms (download, then analyse).

Tasks take ids, never model instances, and are enqueued on commit. Every one is idempotent (a
pass can run twice; downloads, analyses, emails and deliveries are claimed and recorded once),
which is what makes `acks_late` safe: a worker killed mid-task gets its message redelivered, and
the redelivery does no harm. Retries are bounded and only for transient failures.

Beat runs four of them (settings.CELERY_BEAT_SCHEDULE): the sync pass every
GREENROOM_SYNC_INTERVAL seconds, the notification sweep every GREENROOM_NOTIFY_INTERVAL seconds
(dispatches due events, resends what lost its task), and reminders and digests hourly.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.contrib.django.task import DjangoTask
from django.conf import settings

from reviews.decide import decisions, outcomes
from reviews.decide.decisions import DigestVerdict
from reviews.mirror import sync
from reviews.mirror.registry import RegistryError
from reviews.notify import dispatch as notifications
from reviews.notify import webhooks
from reviews.notify.dispatch import Fanout
from reviews.review import analysis

logger = logging.getLogger(__name__)

DOWNLOAD_RETRY_BACKOFF = 2.0  # seconds before the first retry, doubled each time
DOWNLOAD_RETRY_CAP = 300.0
ANALYSIS_RETRIES = 5
ANALYSIS_RETRY_BACKOFF = 5.0


@shared_task(
    bind=True,
    base=DjangoTask,
    acks_late=True,
    ignore_result=True,
    # Passes queued while the workers were down are not worth running one after the other.
    expires=float(settings.GREENROOM_SYNC_INTERVAL),
)
def sync_stages_task(self: DjangoTask[Any, Any]) -> None:
    """One sync pass, then a download task for every stage that still needs its tarball and an
    analysis task for every analysis still to run, each queued once (`enqueue_pending_work`).

    Not retried: the in-pass reads retry transient errors themselves, and beat runs the next
    pass in GREENROOM_SYNC_INTERVAL seconds anyway.
    """
    # Decisions that got no answer first: their stages are read with the decision in mind.
    for settled in outcomes.settle_unanswered():
        if settled.approved_here:
            verify_published_digest_task.delay_on_commit(settled.stage_pk)
    sync.sync_stages()
    enqueue_pending_work()


def enqueue_pending_work() -> tuple[int, int]:
    """A message for each download and each analysis that needs one and was not queued within
    a lease (marked as queued first), so a pass never multiplies the queue: how many of each.
    Analyses are queued here when they never ran or were abandoned (a download queues its own).
    """
    downloads = sync.downloads_to_queue()
    for staged_version_id in downloads:
        download_stage_tarball_task.delay_on_commit(staged_version_id)
    analyses = analysis.analyses_to_queue()
    for staged_version_id in analyses:
        analyse_stage_task.delay_on_commit(staged_version_id)
    return len(downloads), len(analyses)


@shared_task(
    bind=True,
    base=DjangoTask,
    acks_late=True,
    ignore_result=True,
    max_retries=sync.MAX_DOWNLOAD_ATTEMPTS,
)
def download_stage_tarball_task(self: DjangoTask[Any, Any], staged_version_id: int) -> str:
    """Download, verify and store one stage's tarball, then queue its analysis. Transient
    registry errors are retried with backoff; `download_stage` records a verdict once its
    attempts are spent, and later sync passes queue this task again when a check is due."""
    try:
        outcome = sync.download_stage(staged_version_id)
    except RegistryError as e:
        if not e.transient:
            raise
        countdown = sync.backoff_delay(
            self.request.retries + 1, e, base=DOWNLOAD_RETRY_BACKOFF, cap=DOWNLOAD_RETRY_CAP
        )
        sync.mark_download_queued(staged_version_id)  # the retry is its message: no other
        raise self.retry(exc=e, countdown=countdown) from None
    if outcome != sync.SKIPPED:
        # download_stage committed its verdict already (a task runs in autocommit): the
        # analysis can be queued now, and finds the tarball.
        analysis.mark_queued([staged_version_id])
        analyse_stage_task.delay(staged_version_id)
    return outcome


@shared_task(
    bind=True,
    base=DjangoTask,
    acks_late=True,
    ignore_result=True,
    max_retries=ANALYSIS_RETRIES,
)
def analyse_stage_task(
    self: DjangoTask[Any, Any], staged_version_id: int, against: str | None = None
) -> str:
    """Choose the stage's baseline (or compare with `against`), fetch it and analyse the pair.

    Idempotent (the pair is claimed, finished work is found done). Only transient registry
    errors are retried, with backoff; after the last one a comparison the reviewer asked for
    records why it could not be made, and a default baseline is left for the next sync pass.
    """
    try:
        return analysis.analyse_stage(staged_version_id, against=against).status
    except RegistryError as e:
        if not e.transient:
            raise
        if self.request.retries < ANALYSIS_RETRIES:
            countdown = sync.backoff_delay(
                self.request.retries + 1, e, base=ANALYSIS_RETRY_BACKOFF, cap=DOWNLOAD_RETRY_CAP
            )
            raise self.retry(exc=e, countdown=countdown) from None
        analysis.give_up(staged_version_id, against, str(e))
        return analysis.NO_BASELINE


# -- Notifications (reviews.notify) --


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


# -- After an approval (reviews.decide) --


@shared_task(
    bind=True,
    base=DjangoTask,
    acks_late=True,
    ignore_result=True,
    max_retries=decisions.DIGEST_CHECK_ATTEMPTS,
)
def verify_published_digest_task(self: DjangoTask[Any, Any], staged_version_id: int) -> str:
    """Idempotent (recorded once), so acks_late is safe. Retries while the registry is down or
    the version has not reached the packument yet; gives up loudly after the last attempt."""
    try:
        verdict = decisions.check_published_digest(staged_version_id)
    except RegistryError as e:
        if not e.transient or self.request.retries >= decisions.DIGEST_CHECK_ATTEMPTS:
            decisions.record_digest_unavailable(staged_version_id, f"the registry answered {e}")
            return "unavailable"
        raise self.retry(exc=e, countdown=_digest_backoff(self.request.retries, e)) from None
    if verdict == DigestVerdict.NOT_PUBLISHED:
        if self.request.retries >= decisions.DIGEST_CHECK_ATTEMPTS:
            decisions.record_digest_unavailable(
                staged_version_id, "the version never reached the packument"
            )
            return "unavailable"
        raise self.retry(countdown=_digest_backoff(self.request.retries, None))
    return str(verdict)


def _digest_backoff(retries: int, error: RegistryError | None) -> float:
    return sync.backoff_delay(
        retries + 1, error, base=decisions.DIGEST_RETRY_BACKOFF, cap=decisions.DIGEST_RETRY_CAP
    )
