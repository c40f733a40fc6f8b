"""Analysis claims: the heartbeat keeps a long analysis its own, and a dead worker's analysis
is queued again by the sync pass and finished by another once the lease has passed.

Committed (transaction=True) so that the heartbeat's thread, with a connection of its own,
sees the rows."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from reviews.mirror import leases
from reviews.models import Analysis, StageBaseline, StagedVersion
from reviews.review import analysis as review_analysis
from tests.review.support import make_stage, stored
from tests.support.packages import build_tarball

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def waiting() -> tuple[StagedVersion, Analysis]:
    """A first release whose analysis was chosen and not yet run."""
    stage = make_stage("@acme/kit", "1.0.0")
    tarball = stored(build_tarball("@acme/kit", "1.0.0", {"index.js": "exports.a = 1;\n"}))
    StagedVersion.objects.filter(pk=stage.pk).update(
        tarball=tarball, integrity=StagedVersion.Integrity.VERIFIED
    )
    analysis = review_analysis.analysis_for(None, tarball)
    StageBaseline.objects.create(stage=stage, staged_tarball=tarball, analysis=analysis)
    return stage, analysis


def claimed_at(analysis: Analysis) -> datetime | None:
    return Analysis.objects.values_list("claimed_at", flat=True).get(pk=analysis.pk)


def test_a_dead_workers_analysis_is_queued_again_and_finished_by_another(
    waiting: tuple[StagedVersion, Analysis],
) -> None:
    stage, analysis = waiting
    start = timezone.now() - leases.lease() - timedelta(seconds=5)
    dead = review_analysis.claim_analysis(analysis.pk, now=start)
    assert dead is not None

    assert review_analysis.stages_needing_analysis(now=start + timedelta(seconds=1)) == []
    assert review_analysis.stages_needing_analysis() == [stage.pk]
    assert review_analysis.run_analysis(analysis.pk) == Analysis.Status.DONE

    done = Analysis.objects.get(pk=analysis.pk)
    assert (done.attempts, done.claimed_at, done.claim_token) == (2, None, "")
    assert review_analysis.stages_needing_analysis() == []
    # The dead worker, were it back, can neither refresh nor store anything.
    assert review_analysis.bump_analysis_claim(analysis.pk, dead, timezone.now()) == 0
    assert not review_analysis._finish(analysis.pk, dead, status=Analysis.Status.FAILED)


def test_the_heartbeat_keeps_an_analysis_claim_alive(
    waiting: tuple[StagedVersion, Analysis],
) -> None:
    stage, analysis = waiting
    start = timezone.now()
    claim = review_analysis.claim_analysis(analysis.pk, now=start)
    assert claim is not None
    later = start + leases.lease() * 2
    beaten = threading.Event()

    def bump(now: datetime) -> int:
        changed = review_analysis.bump_analysis_claim(analysis.pk, claim, now)
        beaten.set()
        return changed

    with leases.Heartbeat(bump, interval=0.01, clock=lambda: later):
        assert beaten.wait(timeout=30), "no heartbeat"

    assert claimed_at(analysis) == later
    past_the_first_lease = start + leases.lease() + timedelta(seconds=1)
    assert review_analysis.stages_needing_analysis(now=past_the_first_lease) == []
    assert review_analysis.claim_analysis(analysis.pk, now=past_the_first_lease) is None
    assert review_analysis.stages_needing_analysis(now=later + leases.lease() * 2) == [stage.pk]
