from __future__ import annotations

import time
import uuid
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from reviews.mirror.registry import RegistryError, sync_client
from reviews.models import Analysis, StagedVersion
from reviews.review import analysis


class Command(BaseCommand):
    help = (
        "Choose the baseline of a stage (or of every pending stage that needs it), fetch it, "
        "analyse the pair here and now, and print one line per stage."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("stage_id", nargs="?", help="the stage's id (a UUID)")
        parser.add_argument(
            "--all-pending",
            action="store_true",
            help="every pending stage whose analysis never ran or was abandoned",
        )
        parser.add_argument("--against", help="compare with this published version instead")
        parser.add_argument(
            "--again",
            action="store_true",
            help="choose the baseline again; re-run a failed or refused analysis",
        )

    def handle(
        self,
        *args: Any,
        stage_id: str | None = None,
        all_pending: bool = False,
        against: str | None = None,
        again: bool = False,
        **options: Any,
    ) -> None:
        if bool(stage_id) == all_pending:
            raise CommandError("give a stage id or --all-pending (not both)")
        if stage_id:
            try:
                wanted = uuid.UUID(stage_id)
            except ValueError:
                raise CommandError(f"not a stage id: {stage_id!r}") from None
            ids = list(StagedVersion.objects.filter(stage_id=wanted).values_list("id", flat=True))
            if not ids:
                raise CommandError(f"no stage {wanted} is known here")
        else:
            ids = analysis.stages_needing_analysis()
        failed = 0
        with sync_client() as client:
            for staged_version_id in ids:
                stage = StagedVersion.objects.get(id=staged_version_id)
                started = time.monotonic()
                try:
                    outcome = analysis.analyse_stage(
                        staged_version_id, against=against, client=client, again=again
                    )
                except RegistryError as e:
                    failed += 1
                    self.stdout.write(f"{stage}: the registry did not answer ({e})")
                    continue
                self.stdout.write(
                    f"{stage}: {describe(outcome)} ({time.monotonic() - started:.1f} s)"
                )
                failed += outcome.status in (Analysis.Status.FAILED, analysis.UNKNOWN_VERSION)
        if failed:
            raise CommandError(f"{failed} of {len(ids)} stages could not be analysed")


def describe(outcome: analysis.Outcome) -> str:
    if outcome.analysis_id is None:
        return f"{outcome.status}: {outcome.message}"
    found = Analysis.objects.get(id=outcome.analysis_id)
    if found.status == Analysis.Status.DONE:
        return (
            f"{found.file_count} files: {found.files_added} added, {found.files_removed} "
            f"removed, {found.files_modified} modified, {found.files_renamed} renamed, "
            f"{found.files_unchanged} unchanged"
        )
    if found.status == Analysis.Status.REFUSED:
        return f"refused ({found.refusal_side} tarball): {found.refusal_message}"
    if found.status == Analysis.Status.FAILED:
        return f"failed: {found.error}"
    return f"{found.get_status_display().lower()} (another worker has it)"
