from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from reviews.decide import outcomes
from reviews.mirror import sync
from reviews.mirror.registry import RegistryClient, RegistryError, sync_client
from reviews.models import StagedVersion
from reviews.review import analysis
from reviews.tasks import enqueue_pending_work, verify_published_digest_task

VERDICTS = (
    StagedVersion.Integrity.VERIFIED,
    StagedVersion.Integrity.MISMATCH,
    StagedVersion.Integrity.UNAVAILABLE,
)


class Command(BaseCommand):
    help = (
        "Run one sync pass against the registry (GREENROOM_REGISTRY_URL, GREENROOM_SYNC_TOKEN), "
        "download the tarballs it needs, analyse every stage that needs it, and print one line "
        "saying what happened."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--enqueue",
            action="store_true",
            help="hand the downloads and analyses to the Celery workers instead of doing them here",
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
                # Each queued once: what is already waiting in the queue is not sent again.
                downloads, waiting = enqueue_pending_work()
                tarballs = f"{downloads} tarball downloads enqueued"
                analyses = f"{waiting} analyses enqueued"
            else:
                verdicts = sync.download_stages(summary.to_download, client)
                tarballs = "tarballs: " + ", ".join(
                    f"{verdicts[verdict]} {verdict}" for verdict in (*VERDICTS, sync.DEFERRED)
                )
                analyses = self.analyse_all(client)
        unanswered = f"; {len(settled)} unanswered decisions settled" if settled else ""
        self.stdout.write(f"Sync: {summary}; {tarballs}; {analyses}{unanswered}")
        if not summary.complete:
            raise CommandError(f"the stage listing did not complete: {summary.error}")

    def analyse_all(self, client: RegistryClient) -> str:
        """Analyse here every stage that needs it, so no page waits for a worker that is not
        there (a cron job without beat); one stage's registry error does not stop the rest."""
        done: dict[str, int] = {}
        for staged_version_id in analysis.stages_needing_analysis():
            try:
                status = analysis.analyse_stage(staged_version_id, client=client).status
            except RegistryError as e:
                self.stderr.write(f"analysis of stage {staged_version_id} deferred: {e}")
                status = "deferred"
            done[status] = done.get(status, 0) + 1
        if not done:
            return "no analysis needed"
        return "analyses: " + ", ".join(
            f"{count} {status}" for status, count in sorted(done.items())
        )
