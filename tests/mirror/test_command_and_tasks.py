"""`manage.py sync_stages` and the Celery tasks, against a live dev registry."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from io import StringIO

import pytest
from django.conf import LazySettings
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command

from reviews.mirror import sync
from reviews.models import StagedVersion
from reviews.review import analysis
from reviews.tasks import download_stage_tarball_task, sync_stages_task
from tests.mirror.live import Registry

pytestmark = pytest.mark.django_db

Integrity = StagedVersion.Integrity
CaptureCallbacks = Callable[..., AbstractContextManager[list[Callable[[], object]]]]


def run_command(*args: str) -> str:
    out = StringIO()
    call_command("sync_stages", *args, stdout=out)
    return out.getvalue()


def test_the_command_prints_one_line(registry: Registry) -> None:
    registry.stage("left-pad")
    fake = registry.stage("right-pad")
    registry.tamper_stage(fake, shasum="0" * 40)

    output = run_command()

    assert output == (
        "Sync: 2 staged versions listed: 2 new, 0 updated, 0 resolved, 0 failed; "
        "tarballs: 1 verified, 1 mismatch, 0 unavailable, 0 deferred; analyses: 2 done\n"
    )
    # Run from cron with no worker, every stage it handled is analysed: no page waits.
    assert analysis.stages_needing_analysis() == []
    assert run_command().endswith("; no analysis needed\n")


def test_the_command_fails_when_the_listing_does(registry: Registry) -> None:
    registry.set_faults([{"path": "^/-/stage$", "status": 503}])
    out = StringIO()

    with pytest.raises(CommandError, match="did not complete"):
        call_command("sync_stages", stdout=out)

    assert out.getvalue().count("\n") == 1
    assert "listing incomplete, nothing resolved (503:" in out.getvalue()


def test_the_command_needs_a_registry(settings: LazySettings) -> None:
    settings.GREENROOM_REGISTRY_URL = ""
    with pytest.raises(CommandError, match="GREENROOM_REGISTRY_URL is not set"):
        run_command()


def test_the_command_can_leave_downloads_to_the_workers(
    registry: Registry, eager: None, django_capture_on_commit_callbacks: CaptureCallbacks
) -> None:
    registry.stage("left-pad")
    registry.stage("right-pad")

    with django_capture_on_commit_callbacks() as callbacks:
        output = run_command("--enqueue")

    assert output.endswith("; 2 tarball downloads enqueued; 0 analyses enqueued\n")
    assert len(callbacks) == 2, "enqueued on commit, one per stage"
    assert registry.tarball_requests() == 0
    for callback in callbacks:
        callback()
    assert set(StagedVersion.objects.values_list("integrity", flat=True)) == {Integrity.VERIFIED}


def test_the_beat_schedule_runs_the_sync_task() -> None:
    entry = django_settings.CELERY_BEAT_SCHEDULE["sync-stages"]
    assert entry["task"] == sync_stages_task.name == "reviews.tasks.sync_stages_task"
    assert entry["schedule"] == float(django_settings.GREENROOM_SYNC_INTERVAL)
    assert sync_stages_task.acks_late
    assert download_stage_tarball_task.acks_late


def test_the_sync_task_enqueues_one_download_per_new_stage(
    registry: Registry, eager: None, django_capture_on_commit_callbacks: CaptureCallbacks
) -> None:
    ids = [registry.stage(f"pkg-{n}") for n in range(3)]

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        sync_stages_task.delay()

    assert len(callbacks) == 3
    assert registry.tarball_requests() == 3
    for stage_id in ids:
        assert StagedVersion.objects.get(stage_id=stage_id).integrity == Integrity.VERIFIED


def test_the_download_task_retries_transient_errors(registry: Registry, eager: None) -> None:
    registry.stage("left-pad")
    registry.set_faults([{"path": "/tarball$", "status": 502, "times": 2}])
    staged_version_id = sync.sync_stages().to_download[0]

    outcome = download_stage_tarball_task.delay(staged_version_id).get()

    sv = StagedVersion.objects.get()
    assert outcome == Integrity.VERIFIED == sv.integrity
    assert sv.download_attempts == 3
    assert registry.tarball_requests() == 3


def test_the_download_task_gives_up_with_a_verdict(registry: Registry, eager: None) -> None:
    registry.stage("left-pad")
    registry.set_faults([{"path": "/tarball$", "status": 500}])
    staged_version_id = sync.sync_stages().to_download[0]

    outcome = download_stage_tarball_task.delay(staged_version_id).get()

    sv = StagedVersion.objects.get()
    assert outcome == Integrity.UNAVAILABLE == sv.integrity
    assert sv.download_attempts == sync.MAX_DOWNLOAD_ATTEMPTS
    assert registry.tarball_requests() == sync.MAX_DOWNLOAD_ATTEMPTS


def test_the_download_task_does_not_retry_a_refusal(registry: Registry, eager: None) -> None:
    registry.stage("left-pad")
    registry.set_faults([{"path": "/tarball$", "status": 403}])
    staged_version_id = sync.sync_stages().to_download[0]

    outcome = download_stage_tarball_task.delay(staged_version_id).get()

    assert outcome == Integrity.UNAVAILABLE
    assert registry.tarball_requests() == 1


def test_a_redelivered_download_task_does_nothing(registry: Registry, eager: None) -> None:
    registry.stage("left-pad")
    staged_version_id = sync.sync_stages().to_download[0]

    first = download_stage_tarball_task.delay(staged_version_id).get()
    again = download_stage_tarball_task.delay(staged_version_id).get()

    assert (first, again) == (Integrity.VERIFIED, sync.SKIPPED)
    assert registry.tarball_requests() == 1
