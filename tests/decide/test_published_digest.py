"""After a portal approval a Celery task compares what the registry published with what was
reviewed; a difference is a critical, audited, loud alert on the stage page."""

from __future__ import annotations

import logging

import pytest

from reviews.audit.trail import Action
from reviews.decide import decisions
from reviews.decide.decisions import DigestVerdict
from reviews.models import AuditEvent, StagedVersion
from reviews.tasks import verify_published_digest_task
from tests.decide.conftest import Registry, approve, client_for, link, url
from tests.personas import World

pytestmark = pytest.mark.django_db


def approved_stage(
    registry: Registry, world: World, capture, *, run_queued: bool = True
) -> StagedVersion:
    stage = registry.stage()
    link(world.approver, registry.alice)
    with capture(execute=run_queued):
        response = approve(client_for(world.approver), stage, otp=registry.alice.code())
    assert response.status_code == 303
    stage.refresh_from_db()
    assert stage.tarball is not None
    return stage


def test_the_check_is_queued_on_commit_by_id_and_verifies(
    registry: Registry, world: World, django_capture_on_commit_callbacks, eager
):
    stage = approved_stage(registry, world, django_capture_on_commit_callbacks)

    reviewed = stage.tarball
    assert reviewed is not None
    assert stage.published_checked_at is not None
    assert stage.published_shasum == reviewed.sha1
    assert stage.published_shasum_matches is True
    assert stage.published_integrity == reviewed.integrity
    assert stage.published_integrity_matches is True
    event = AuditEvent.objects.filter(stage=stage).order_by("-id").first()
    assert event is not None
    assert event.action == Action.PUBLISHED_DIGEST_CHECKED
    assert event.payload["verdict"] == "match"
    page = client_for(world.viewer).get(url("stage", stage)).content.decode()
    assert "Published digest verified" in page
    assert "Critical" not in page


def test_nothing_is_queued_before_the_commit(
    registry: Registry, world: World, django_capture_on_commit_callbacks
):
    stage = registry.stage()
    link(world.approver, registry.alice)

    with django_capture_on_commit_callbacks() as callbacks:
        approve(client_for(world.approver), stage, otp=registry.alice.code())

    assert len(callbacks) == 1
    queued = callbacks[0]
    assert queued.func == verify_published_digest_task.delay
    assert queued.args == (stage.pk,)


def test_a_published_tarball_that_differs_is_a_critical_alert(
    registry: Registry, world: World, django_capture_on_commit_callbacks, caplog
):
    stage = approved_stage(registry, world, django_capture_on_commit_callbacks, run_queued=False)
    registry.tamper_published_dist(
        stage.package_name, stage.version, shasum="f" * 40, integrity="sha512-AAAA"
    )

    with caplog.at_level(logging.CRITICAL, logger="reviews.decide.decisions"):
        verdict = decisions.check_published_digest(stage.pk)

    assert verdict == DigestVerdict.MISMATCH
    stage.refresh_from_db()
    assert stage.published_shasum_matches is False
    assert stage.published_integrity_matches is False
    assert any(r.levelno == logging.CRITICAL and "f" * 40 in r.getMessage() for r in caplog.records)
    event = AuditEvent.objects.filter(stage=stage).order_by("-id").first()
    assert event is not None
    assert event.action == Action.PUBLISHED_DIGEST_MISMATCH
    assert event.payload["published_shasum"] == "f" * 40
    assert stage.tarball is not None
    assert event.payload["reviewed_sha1"] == stage.tarball.sha1
    page = client_for(world.viewer).get(url("stage", stage)).content.decode()
    assert 'class="integrity integrity-mismatch digest-alert" role="alert"' in page
    assert "Critical: the published tarball is not the one that was reviewed" in page
    assert "f" * 40 in page


def test_only_the_integrity_differing_is_a_mismatch_too(
    registry: Registry, world: World, django_capture_on_commit_callbacks
):
    stage = approved_stage(registry, world, django_capture_on_commit_callbacks, run_queued=False)
    registry.tamper_published_dist(stage.package_name, stage.version, integrity="sha512-BBBB")

    assert decisions.check_published_digest(stage.pk) == DigestVerdict.MISMATCH
    stage.refresh_from_db()
    assert (stage.published_shasum_matches, stage.published_integrity_matches) == (True, False)


def test_the_check_is_recorded_once(
    registry: Registry, world: World, django_capture_on_commit_callbacks
):
    stage = approved_stage(registry, world, django_capture_on_commit_callbacks, run_queued=False)

    assert decisions.check_published_digest(stage.pk) == DigestVerdict.MATCH
    assert decisions.check_published_digest(stage.pk) == DigestVerdict.SKIPPED
    assert (
        AuditEvent.objects.filter(stage=stage, action=Action.PUBLISHED_DIGEST_CHECKED).count() == 1
    )


def test_a_version_that_never_reaches_the_packument_is_reported(
    registry: Registry, world: World, eager
):
    stage = registry.stage()
    # Approved in the portal's records, but the registry never published it.
    StagedVersion.objects.filter(pk=stage.pk).update(state=StagedVersion.State.APPROVED)

    verify_published_digest_task.apply(args=(stage.pk,))

    stage.refresh_from_db()
    assert stage.published_checked_at is not None
    assert stage.published_shasum_matches is None
    event = AuditEvent.objects.filter(stage=stage).order_by("-id").first()
    assert event is not None
    assert event.payload == {
        "verdict": "unavailable",
        "why": "the version never reached the packument",
    }
