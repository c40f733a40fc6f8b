from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from reviews.mirror import sync
from reviews.mirror.registry import sync_client
from reviews.models import StagedVersion
from reviews.tasks import download_stage_tarball_task

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
            summary = sync.sync_stages(client)
            if enqueue:
                for staged_version_id in summary.to_download:
                    download_stage_tarball_task.delay_on_commit(staged_version_id)
                tarballs = f"{len(summary.to_download)} tarball downloads enqueued"
            else:
                outcomes = sync.download_stages(summary.to_download, client)
                tarballs = "tarballs: " + ", ".join(
                    f"{outcomes[outcome]} {outcome}" for outcome in (*VERDICTS, sync.DEFERRED)
                )
        self.stdout.write(f"Sync: {summary}; {tarballs}")
        if not summary.complete:
            raise CommandError(f"the stage listing did not complete: {summary.error}")
