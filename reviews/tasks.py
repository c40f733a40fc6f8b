"""Celery tasks: thin wrappers that give the sync functions their retry policy.

Tasks take ids, never model instances, and are enqueued on commit. Both are idempotent (a pass
can run twice, a download is claimed), which is what makes `acks_late` safe: a worker killed
mid-task gets its message redelivered, and the redelivery does no harm.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.contrib.django.task import DjangoTask
from django.conf import settings

from reviews.mirror import sync
from reviews.mirror.registry import RegistryError
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
    """One sync pass, then a download task for every stage that still needs its tarball.

    Not retried: the in-pass reads retry transient errors themselves, and beat runs the next
    pass in GREENROOM_SYNC_INTERVAL seconds anyway.
    """
    summary = sync.sync_stages()
    for staged_version_id in summary.to_download:
        download_stage_tarball_task.delay_on_commit(staged_version_id)
    # Stages whose analysis never ran or was abandoned (enqueued after download otherwise).
    for staged_version_id in analysis.stages_needing_analysis():
        analyse_stage_task.delay_on_commit(staged_version_id)


@shared_task(
    bind=True,
    base=DjangoTask,
    acks_late=True,
    ignore_result=True,
    max_retries=sync.MAX_DOWNLOAD_ATTEMPTS,
)
def download_stage_tarball_task(self: DjangoTask[Any, Any], staged_version_id: int) -> str:
    """Download, verify and store one stage's tarball. Transient registry errors are retried
    with backoff; `download_stage` records a verdict once its attempts are spent."""
    try:
        outcome = sync.download_stage(staged_version_id)
    except RegistryError as e:
        if not e.transient:
            raise
        countdown = sync.backoff_delay(
            self.request.retries + 1, e, base=DOWNLOAD_RETRY_BACKOFF, cap=DOWNLOAD_RETRY_CAP
        )
        raise self.retry(exc=e, countdown=countdown) from None
    if outcome != sync.SKIPPED:
        # download_stage committed its verdict already (a task runs in autocommit): the
        # analysis can be queued now, and finds the tarball.
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
