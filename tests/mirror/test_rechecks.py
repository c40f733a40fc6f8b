"""Checking a tarball again: after an outage (on a schedule over about a day), after one wrong
download (a second one decides), and when a person asks. Time moves through the `now` the
sync pass and the downloads are given, never by sleeping."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from reviews.audit.trail import Actor
from reviews.mirror import sync
from reviews.mirror.registry import sync_client
from reviews.models import AuditEvent, StagedVersion
from tests.mirror.live import Registry

pytestmark = pytest.mark.django_db

Integrity = StagedVersion.Integrity
TARBALL = "/tarball$"


def pass_and_download(now: datetime) -> sync.SyncSummary:
    """A pass at `now`, then its downloads, the way the management command runs them."""
    summary = sync.sync_stages(now=now)
    with sync_client() as client:
        sync.download_stages(summary.to_download, client, now=now)
    return summary


def only(stage_id: str) -> StagedVersion:
    return StagedVersion.objects.select_related("tarball").get(stage_id=stage_id)


def actions(stage_id: str) -> list[str]:
    return list(
        AuditEvent.objects.filter(stage_uuid=stage_id, action__startswith="tarball.")
        .order_by("id")
        .values_list("action", flat=True)
    )


def spend_the_first_round(now: datetime) -> datetime:
    """Every attempt of the first round, a few seconds apart; when the last one was made."""
    for attempt in range(sync.MAX_DOWNLOAD_ATTEMPTS):
        at = now + timedelta(seconds=8 * attempt)
        pass_and_download(at)
    return at


def test_an_outage_longer_than_the_first_round_ends_verified(registry: Registry) -> None:
    stage_id = registry.stage("left-pad")
    registry.set_faults([{"method": "GET", "path": TARBALL, "status": 503}])
    start = timezone.now()

    gave_up = spend_the_first_round(start)

    sv = only(stage_id)
    assert sv.integrity == Integrity.UNAVAILABLE
    assert sv.next_check_at == gave_up + sync.RECHECK_DELAYS[0]
    assert sv.failed_checks == 1
    assert registry.tarball_requests() == sync.MAX_DOWNLOAD_ATTEMPTS
    # Not before it is due...
    assert pass_and_download(sv.next_check_at - timedelta(seconds=1)).to_download == []
    # ...then checked again, still down: the next check waits longer.
    pass_and_download(sv.next_check_at)
    again = only(stage_id)
    assert again.integrity == Integrity.UNAVAILABLE
    assert again.failed_checks == 2
    assert again.next_check_at == sv.next_check_at + sync.RECHECK_DELAYS[1]
    assert "still failing after 2 checks: 503" in again.integrity_reason

    registry.clear_faults()
    pass_and_download(again.next_check_at)

    back = only(stage_id)
    assert back.integrity == Integrity.VERIFIED
    assert back.tarball is not None
    assert (back.next_check_at, back.failed_checks) == (None, 0)
    assert registry.tarball_requests() == sync.MAX_DOWNLOAD_ATTEMPTS + 2
    assert actions(stage_id) == ["tarball.unavailable", "tarball.unavailable", "tarball.verified"]
    first = AuditEvent.objects.filter(stage_uuid=stage_id).order_by("id")[1]
    assert first.payload["next_check_at"] == sv.next_check_at.isoformat()


def test_the_checks_stop_after_about_a_day(registry: Registry) -> None:
    stage_id = registry.stage("left-pad")
    registry.set_faults([{"method": "GET", "path": TARBALL, "status": 502}])
    first_failure = spend_the_first_round(timezone.now())

    last_check = first_failure
    while (due := only(stage_id).next_check_at) is not None:
        assert pass_and_download(due).to_download == [only(stage_id).id]
        last_check = due

    sv = only(stage_id)
    assert sv.integrity == Integrity.UNAVAILABLE
    assert sv.failed_checks == len(sync.RECHECK_DELAYS) + 1
    assert timedelta(hours=20) < last_check - first_failure <= timedelta(hours=24)
    assert registry.tarball_requests() == sync.MAX_DOWNLOAD_ATTEMPTS + len(sync.RECHECK_DELAYS)
    assert pass_and_download(last_check + timedelta(days=30)).to_download == []


def test_a_refused_tarball_is_not_checked_again_on_its_own(registry: Registry) -> None:
    stage_id = registry.stage("left-pad")
    registry.set_faults([{"method": "GET", "path": TARBALL, "status": 403}])

    pass_and_download(timezone.now())

    sv = only(stage_id)
    assert (sv.integrity, sv.next_check_at) == (Integrity.UNAVAILABLE, None)
    assert pass_and_download(timezone.now() + timedelta(days=2)).to_download == []


def test_one_malformed_download_is_downloaded_again_and_ends_verified(
    registry: Registry,
) -> None:
    stage_id = registry.stage("left-pad")
    registry.set_faults([{"method": "GET", "path": TARBALL, "malformed": True, "times": 1}])

    pass_and_download(timezone.now())

    sv = only(stage_id)
    assert sv.integrity == Integrity.VERIFIED
    assert sv.tarball is not None
    assert sv.tarball.sha1 == sv.shasum
    assert registry.tarball_requests() == 2
    assert actions(stage_id) == ["tarball.mismatch_unconfirmed", "tarball.verified"]
    unconfirmed = AuditEvent.objects.get(stage_uuid=stage_id, action="tarball.mismatch_unconfirmed")
    assert unconfirmed.payload["sha256"] != sv.tarball.sha256, "the wrong bytes are on record"


def test_a_persistent_mismatch_ends_mismatch_after_exactly_two_downloads(
    registry: Registry,
) -> None:
    stage_id = registry.stage("left-pad")
    registry.tamper_stage(stage_id, shasum="f" * 40)

    pass_and_download(timezone.now())

    sv = only(stage_id)
    assert sv.integrity == Integrity.MISMATCH
    assert sv.integrity_reason.endswith("(downloaded twice, the same bytes both times)")
    assert registry.tarball_requests() == 2
    assert actions(stage_id) == ["tarball.mismatch_unconfirmed", "tarball.mismatch"]
    assert sv.tarball is not None
    digests = AuditEvent.objects.filter(stage_uuid=stage_id).values_list("payload", flat=True)
    assert {p["sha256"] for p in digests if "sha256" in p} == {sv.tarball.sha256}
    # No automatic check overturns it.
    assert pass_and_download(timezone.now() + timedelta(days=2)).to_download == []
    assert registry.tarball_requests() == 2


def test_two_different_wrong_downloads_are_a_mismatch(registry: Registry) -> None:
    stage_id = registry.stage("left-pad")
    registry.tamper_stage(stage_id, shasum="f" * 40)
    registry.set_faults([{"method": "GET", "path": TARBALL, "malformed": True, "times": 1}])

    pass_and_download(timezone.now())

    sv = only(stage_id)
    assert sv.integrity == Integrity.MISMATCH
    first = AuditEvent.objects.get(stage_uuid=stage_id, action="tarball.mismatch_unconfirmed")
    assert f"a first download gave other bytes, sha256 {first.payload['sha256']}" in (
        sv.integrity_reason
    )
    assert registry.tarball_requests() == 2


def test_a_mismatch_then_an_outage_is_tried_again_from_the_start(registry: Registry) -> None:
    stage_id = registry.stage("left-pad")
    registry.set_faults(
        [
            {"method": "GET", "path": TARBALL, "malformed": True, "times": 1},
            {"method": "GET", "path": TARBALL, "status": 500, "times": 1},
        ]
    )
    now = timezone.now()

    assert pass_and_download(now).to_download == [only(stage_id).id]
    assert only(stage_id).integrity == Integrity.PENDING, "deferred: no verdict from one download"
    pass_and_download(now + timedelta(seconds=5))

    assert only(stage_id).integrity == Integrity.VERIFIED
    assert registry.tarball_requests() == 3


# -- A person asks ---------------------------------------------------------------------------------


def person() -> Actor:
    return Actor(ip="192.0.2.7", user_agent="test")


def test_a_requested_check_of_an_unavailable_tarball_is_due_at_once(registry: Registry) -> None:
    stage_id = registry.stage("left-pad")
    registry.set_faults([{"method": "GET", "path": TARBALL, "status": 404}])
    pass_and_download(timezone.now())
    registry.clear_faults()
    now = timezone.now()

    assert sync.request_recheck(only(stage_id).id, person(), now)

    assert only(stage_id).next_check_at == now
    assert not sync.request_recheck(only(stage_id).id, person(), now), "already due"
    pass_and_download(now)
    assert only(stage_id).integrity == Integrity.VERIFIED
    assert actions(stage_id) == [
        "tarball.unavailable",
        "tarball.recheck_requested",
        "tarball.verified",
    ]


def test_a_requested_check_starts_the_schedule_over(registry: Registry) -> None:
    stage_id = registry.stage("left-pad")
    registry.set_faults([{"method": "GET", "path": TARBALL, "status": 503}])
    spend_the_first_round(timezone.now())
    StagedVersion.objects.update(failed_checks=len(sync.RECHECK_DELAYS) + 1, next_check_at=None)
    now = timezone.now() + timedelta(days=3)

    assert sync.request_recheck(only(stage_id).id, person(), now)
    pass_and_download(now)

    sv = only(stage_id)
    assert (sv.integrity, sv.failed_checks) == (Integrity.UNAVAILABLE, 1)
    assert sv.next_check_at == now + sync.RECHECK_DELAYS[0]


def test_a_requested_check_can_overturn_a_mismatch(registry: Registry) -> None:
    stage_id = registry.stage("left-pad")
    registry.set_faults([{"method": "GET", "path": TARBALL, "malformed": True, "times": 2}])
    pass_and_download(timezone.now())
    assert only(stage_id).integrity == Integrity.MISMATCH
    now = timezone.now()

    assert sync.request_recheck(only(stage_id).id, person(), now)
    pass_and_download(now)

    sv = only(stage_id)
    assert sv.integrity == Integrity.VERIFIED
    assert sv.tarball is not None
    assert sv.tarball.sha1 == sv.shasum
    assert registry.tarball_requests() == 3


def test_a_mismatch_stands_when_its_check_gets_no_tarball(registry: Registry) -> None:
    stage_id = registry.stage("left-pad")
    registry.tamper_stage(stage_id, shasum="f" * 40)
    pass_and_download(timezone.now())
    evidence = only(stage_id).tarball
    registry.set_faults([{"method": "GET", "path": TARBALL, "status": 503}])
    now = timezone.now()

    assert sync.request_recheck(only(stage_id).id, person(), now)
    pass_and_download(now)

    sv = only(stage_id)
    assert (sv.integrity, sv.tarball, sv.next_check_at) == (Integrity.MISMATCH, evidence, None)
    kept = AuditEvent.objects.filter(stage_uuid=stage_id).order_by("-id").first()
    assert kept is not None
    assert kept.action == "tarball.unavailable"
    assert kept.payload["verdict_kept"] == "mismatch"
    assert "503" in kept.payload["reason"]


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"integrity": Integrity.VERIFIED}, id="verified"),
        pytest.param({"integrity": Integrity.PENDING}, id="not checked yet"),
        pytest.param(
            {"integrity": Integrity.UNAVAILABLE, "state": StagedVersion.State.REJECTED},
            id="decided",
        ),
    ],
)
def test_nothing_else_is_checked_again_on_request(
    registry: Registry, fields: dict[str, str]
) -> None:
    stage_id = registry.stage("left-pad")
    sync.sync_stages()
    StagedVersion.objects.update(**fields)

    assert not sync.request_recheck(only(stage_id).id, person())

    assert only(stage_id).next_check_at is None
    assert not AuditEvent.objects.filter(action="tarball.recheck_requested").exists()
