"""The stage page's "Check the tarball again": who sees it and may use it, what it records,
and a check it queues, through the download task, to a verified and analysed tarball."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from reviews.models import AuditEvent, Role, StageBaseline, StagedVersion
from tests.personas import World, member_of
from tests.review.support import Registry

pytestmark = pytest.mark.django_db

Integrity = StagedVersion.Integrity
BUTTON = "Check the tarball again"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def recheck_url(stage: StagedVersion) -> str:
    return reverse("reviews:stage-recheck", args=[stage.stage_id])


def stage_page(client: Client, stage: StagedVersion) -> str:
    response = client.get(reverse("reviews:stage", args=[stage.stage_id]))
    assert response.status_code == 200
    return response.content.decode()


def set_integrity(stage: StagedVersion, integrity: str, **fields: object) -> StagedVersion:
    StagedVersion.objects.filter(pk=stage.pk).update(
        integrity=integrity, integrity_reason="registry answered 503", **fields
    )
    return StagedVersion.objects.get(pk=stage.pk)


def requests_recorded() -> int:
    return AuditEvent.objects.filter(action="tarball.recheck_requested").count()


@pytest.mark.parametrize("integrity", [Integrity.UNAVAILABLE, Integrity.MISMATCH])
def test_an_approver_is_offered_the_button(world: World, integrity: str) -> None:
    stage = set_integrity(world.acme_stage, integrity)

    body = stage_page(signed_in(world.approver), stage)

    form = re.search(
        r'<form class="recheck" method="post" action="([^"]+)">(.*?)</form>', body, re.S
    )
    assert form is not None
    assert form.group(1) == recheck_url(stage)
    assert 'name="csrfmiddlewaretoken"' in form.group(2)
    assert BUTTON in form.group(2)


def test_the_button_is_not_offered_below_approver_or_without_a_bad_verdict(world: World) -> None:
    stage = set_integrity(world.acme_stage, Integrity.UNAVAILABLE)
    assert BUTTON not in stage_page(signed_in(world.viewer), stage)

    for integrity in (Integrity.VERIFIED, Integrity.PENDING):
        stage = set_integrity(world.acme_stage, integrity)
        assert BUTTON not in stage_page(signed_in(world.approver), stage)

    decided = set_integrity(world.acme_stage, Integrity.MISMATCH, state="rejected")
    assert BUTTON not in stage_page(signed_in(world.approver), decided)


def test_the_page_says_when_the_next_check_is_due(world: World) -> None:
    client = signed_in(world.viewer)
    due = timezone.now() + timedelta(minutes=15, seconds=30)
    stage = set_integrity(world.acme_stage, Integrity.UNAVAILABLE, next_check_at=due)

    body = stage_page(client, stage)
    assert "Next automatic check in 15\xa0minutes" in body
    assert f'<time datetime="{due.isoformat()}">' in body

    stage = set_integrity(stage, Integrity.UNAVAILABLE, next_check_at=timezone.now())
    assert "A new check is due now" in stage_page(client, stage)

    stage = set_integrity(stage, Integrity.UNAVAILABLE, next_check_at=None)
    assert "No automatic check is planned." in stage_page(client, stage)


# -- Who may ask ---------------------------------------------------------------------------------


def test_anonymous_is_sent_to_login(world: World) -> None:
    stage = set_integrity(world.acme_stage, Integrity.UNAVAILABLE)

    response = Client().post(recheck_url(stage))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert requests_recorded() == 0


def test_an_outsider_gets_404(world: World) -> None:
    stage = set_integrity(world.acme_stage, Integrity.UNAVAILABLE)

    assert signed_in(world.outsider).post(recheck_url(stage)).status_code == 404
    assert requests_recorded() == 0


def test_below_approver_gets_403(world: World) -> None:
    stage = set_integrity(world.acme_stage, Integrity.UNAVAILABLE)
    reviewer = member_of(world.acme, "reviewer", Role.REVIEWER)

    for user in (world.viewer, reviewer):
        assert signed_in(user).post(recheck_url(stage)).status_code == 403

    assert requests_recorded() == 0
    assert StagedVersion.objects.get(pk=stage.pk).next_check_at is None


def test_get_is_refused(world: World) -> None:
    stage = set_integrity(world.acme_stage, Integrity.UNAVAILABLE)

    assert signed_in(world.approver).get(recheck_url(stage)).status_code == 405
    assert requests_recorded() == 0


def test_the_request_needs_its_csrf_token(world: World) -> None:
    stage = set_integrity(world.acme_stage, Integrity.UNAVAILABLE)
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.approver)

    assert client.post(recheck_url(stage)).status_code == 403
    assert requests_recorded() == 0

    body = stage_page(client, stage)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body)
    assert token is not None
    response = client.post(recheck_url(stage), {"csrfmiddlewaretoken": token.group(1)})
    assert response.status_code == 303
    assert requests_recorded() == 1


def test_an_approver_makes_the_check_due_and_it_is_audited(world: World) -> None:
    stage = set_integrity(world.acme_stage, Integrity.MISMATCH, failed_checks=4)
    client = signed_in(world.approver)
    before = timezone.now()

    response = client.post(
        recheck_url(stage), REMOTE_ADDR="198.51.100.4", HTTP_USER_AGENT="Firefox/140", follow=True
    )

    assert response.redirect_chain == [(reverse("reviews:stage", args=[stage.stage_id]), 303)]
    assert "will be downloaded and checked again" in response.content.decode()
    stage.refresh_from_db()
    assert stage.next_check_at is not None
    assert stage.next_check_at >= before
    assert (stage.integrity, stage.failed_checks) == (Integrity.MISMATCH, 0)
    event = AuditEvent.objects.get(action="tarball.recheck_requested")
    assert (event.stage_id, event.username) == (stage.pk, "approver")
    assert (event.ip, event.user_agent) == ("198.51.100.4", "Firefox/140")
    assert event.payload == {"integrity": "mismatch", "reason": "registry answered 503"}

    # A second press while the check is due changes nothing and records nothing.
    again = client.post(recheck_url(stage), follow=True)
    assert "Nothing to check again" in again.content.decode()
    assert requests_recorded() == 1


# -- The check it queues ---------------------------------------------------------------------------


def test_the_queued_check_verifies_and_analyses_the_tarball(
    registry: Registry, world: World, eager: None, django_capture_on_commit_callbacks
) -> None:
    registry.live.set_faults([{"method": "GET", "path": "/tarball$", "status": 403}])
    stage = registry.stage("@acme/kit", "1.0.0", {"index.js": "exports.a = 1;\n"}, analyse=False)
    assert stage.integrity == Integrity.UNAVAILABLE
    registry.live.clear_faults()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = signed_in(world.approver).post(recheck_url(stage))

    assert response.status_code == 303
    assert len(callbacks) == 1, "one download queued, on commit"
    stage.refresh_from_db()
    assert stage.integrity == Integrity.VERIFIED
    assert stage.next_check_at is None
    baseline = StageBaseline.objects.select_related("analysis").get(stage=stage)
    assert baseline.staged_tarball_id == stage.tarball_id
    assert baseline.analysis is not None
    assert baseline.analysis.status == "done"
    body = stage_page(signed_in(world.approver), stage)
    assert "Integrity: Verified" in body
    assert BUTTON not in body
