from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from reviews.decide import outcomes
from reviews.mirror import sync
from reviews.mirror.registry import sync_client
from reviews.models import StagedVersion
from reviews.tasks import download_stage_tarball_task, verify_published_digest_task

VERDICTS = (
    StagedVersion.Integrity.VERIFIED,
    StagedVersion.Integrity.MISMATCH,
    StagedVersion.Integrity.UNAVAILABLE,
)


class Command(BaseCommand):
    help = (
        "Run one sync pass against the registry (GREENROOM_REGISTRY_URL, GREENROOM_SYNC_TOKEN), "
        "download the tarballs it needs, and print one line saying what happened."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help="hand the tarball downloads to the Celery workers instead of doing them here",
        )

    def handle(self, *args: Any, enqueue: bool = False, **options: Any) -> None:
        try:
            client = sync_client()
        except ImproperlyConfigured as e:
            raise CommandError(str(e)) from None
        with client:
            settled = outcomes.settle_unanswered(client)
            for settlement in settled:
                if settlement.approved_here:
                    verify_published_digest_task.delay_on_commit(settlement.stage_pk)
            summary = sync.sync_stages(client)
            if enqueue:
                for staged_version_id in summary.to_download:
                    download_stage_tarball_task.delay_on_commit(staged_version_id)
                tarballs = f"{len(summary.to_download)} tarball downloads enqueued"
            else:
                verdicts = sync.download_stages(summary.to_download, client)
                tarballs = "tarballs: " + ", ".join(
                    f"{verdicts[verdict]} {verdict}" for verdict in (*VERDICTS, sync.DEFERRED)
                )
        unanswered = f"; {len(settled)} unanswered decisions settled" if settled else ""
        self.stdout.write(f"Sync: {summary}; {tarballs}{unanswered}")
        if not summary.complete:
            raise CommandError(f"the stage listing did not complete: {summary.error}")
