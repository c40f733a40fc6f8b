"""Work is handed to the workers once: a stage's download and its analysis are marked as queued
and queued again only when the mark is older than a lease."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from reviews.mirror import leases, sync
from reviews.models import StagedVersion, Tarball
from reviews.review import analysis

pytestmark = pytest.mark.django_db


def a_stage(*, with_tarball: bool = False) -> StagedVersion:
    tarball = None
    if with_tarball:
        tarball = Tarball.objects.create(
            sha256=uuid.uuid4().hex * 2, sha1="b" * 40, integrity="", size=1, storage_name="x"
        )
    return StagedVersion.objects.create(
        stage_id=uuid.uuid4(),
        package_name="left-pad",
        version=f"1.0.{StagedVersion.objects.count()}",
        shasum="b" * 40,
        staged_at=timezone.now(),
        tarball=tarball,
        integrity=StagedVersion.Integrity.VERIFIED if with_tarball else "pending",
    )


def test_a_download_is_queued_once_per_lease() -> None:
    stage = a_stage()
    now = timezone.now()

    assert sync.downloads_to_queue(now) == [stage.pk]
    assert sync.downloads_to_queue(now + timedelta(seconds=1)) == []
    assert sync.downloads_to_queue(now + leases.lease() - timedelta(seconds=1)) == []
    assert sync.downloads_to_queue(now + leases.lease() + timedelta(seconds=1)) == [stage.pk]


def test_a_retried_or_requested_download_counts_as_queued() -> None:
    stage = a_stage()
    sync.mark_download_queued(stage.pk)
    assert sync.downloads_to_queue() == []


def test_an_analysis_is_queued_once_per_lease_and_the_page_knows() -> None:
    stage = a_stage(with_tarball=True)
    now = timezone.now()
    assert not analysis.is_queued(stage.pk, now)

    assert analysis.analyses_to_queue(now) == [stage.pk]
    assert analysis.analyses_to_queue(now) == []
    assert analysis.is_queued(stage.pk, now)

    later = now + leases.lease() + timedelta(seconds=1)
    assert not analysis.is_queued(stage.pk, later)
    assert analysis.analyses_to_queue(later) == [stage.pk]


def test_an_analysis_queued_after_its_download_is_not_queued_by_a_pass() -> None:
    stage = a_stage(with_tarball=True)
    analysis.mark_queued([stage.pk])
    assert analysis.analyses_to_queue() == []
    assert analysis.stages_needing_analysis() == [stage.pk], "still needed, only not re-sent"
