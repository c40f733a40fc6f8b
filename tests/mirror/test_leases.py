"""Download claims and their heartbeat: a live claim outlives its lease, a dead one is taken
over once the lease has passed, and the heartbeat's thread stops and closes its connection.

The heartbeat writes through its `clock` seam, which the test moves; the lease is judged at
the `now` the sync is given. The heartbeat's thread has a database connection of its own, so
these tests commit (transaction=True) for it to see their rows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import pytest
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from reviews.mirror import leases, sync
from reviews.models import StagedVersion
from tests.personas import make_stage

pytestmark = pytest.mark.django_db(transaction=True)

Integrity = StagedVersion.Integrity
BEAT = 0.01  # seconds between beats here; what they write is the test's clock, not this


class Clock:
    """The time the heartbeat writes; the test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Beats:
    """A bump that counts its finished beats, remembers the connection each used, and lets the
    test wait for the beats after a point."""

    def __init__(self, bump: Callable[[datetime], int]) -> None:
        self._bump = bump
        self._done = threading.Condition()
        self.count = 0
        self.connections: list[BaseDatabaseWrapper] = []

    def __call__(self, now: datetime) -> int:
        changed = self._bump(now)
        with self._done:
            self.connections.append(connections["default"])  # this thread's own
            self.count += 1
            self._done.notify_all()
        return changed

    def wait_for_two_more(self) -> None:
        """Two finished beats from now: the second began after this call, so it wrote what the
        clock says now."""
        with self._done:
            target = self.count + 2
            assert self._done.wait_for(lambda: self.count >= target, timeout=30), "no heartbeat"


@pytest.fixture
def stage() -> StagedVersion:
    return make_stage("left-pad")


def claimed_at(stage: StagedVersion) -> datetime | None:
    return StagedVersion.objects.values_list("download_claimed_at", flat=True).get(pk=stage.pk)


def test_the_heartbeat_keeps_a_claim_alive_past_its_lease(stage: StagedVersion) -> None:
    start = timezone.now()
    claim = sync.claim_download(stage.pk, now=start)
    assert claim is not None
    clock = Clock(start)
    beats = Beats(partial(sync.bump_download_claim, stage.pk, claim))

    with leases.Heartbeat(beats, interval=BEAT, clock=clock):
        for step in range(1, 4):  # three leases' worth of a long download
            clock.now = start + leases.lease() * step
            beats.wait_for_two_more()
            past_the_first_lease = start + leases.lease() * step + timedelta(seconds=1)
            assert claimed_at(stage) == clock.now
            assert sync.stages_needing_download(past_the_first_lease) == []
            assert sync.claim_download(stage.pk, now=past_the_first_lease) is None
    beats_at_exit = beats.count

    # The work is over (here: the worker died): after one more lease, another worker takes it.
    taken_over_at = clock.now + leases.lease() + timedelta(seconds=1)
    assert sync.stages_needing_download(taken_over_at) == [stage.pk]
    other = sync.claim_download(stage.pk, now=taken_over_at)
    assert other is not None
    assert other != claim
    assert beats.count == beats_at_exit, "the heartbeat stopped with its block"
    assert not sync.record_integrity(stage.pk, claim, Integrity.VERIFIED, "late")


def test_a_dead_claim_is_taken_over_once_its_lease_has_passed(stage: StagedVersion) -> None:
    start = timezone.now()
    claim = sync.claim_download(stage.pk, now=start)
    assert claim is not None
    within = start + leases.lease() - timedelta(seconds=1)
    after = start + leases.lease() + timedelta(seconds=1)

    assert sync.stages_needing_download(within) == []
    assert sync.claim_download(stage.pk, now=within) is None
    assert sync.stages_needing_download(after) == [stage.pk]
    assert sync.claim_download(stage.pk, now=after) is not None
    # Were the first worker still alive, its heartbeat would now change nothing.
    assert sync.bump_download_claim(stage.pk, claim, after) == 0
    assert claimed_at(stage) == after


def test_the_lease_is_a_setting(stage: StagedVersion, settings: Any) -> None:
    settings.GREENROOM_CLAIM_LEASE = 30
    start = timezone.now()
    assert sync.claim_download(stage.pk, now=start) is not None

    assert sync.stages_needing_download(start + timedelta(seconds=29)) == []
    assert sync.stages_needing_download(start + timedelta(seconds=31)) == [stage.pk]
    assert leases.Heartbeat(lambda now: 1).interval == 10


def test_the_heartbeat_stops_when_its_claim_is_reset(stage: StagedVersion) -> None:
    claim = sync.claim_download(stage.pk)
    assert claim is not None
    beats = Beats(partial(sync.bump_download_claim, stage.pk, claim))

    with leases.Heartbeat(beats, interval=BEAT) as heartbeat:
        beats.wait_for_two_more()
        # A refresh resets the stage (its shasum changed) while the download runs.
        StagedVersion.objects.filter(pk=stage.pk).update(
            download_claim="", download_claimed_at=None
        )
        thread = heartbeat._thread  # the one place a test looks inside
        thread.join(timeout=30)
        assert not thread.is_alive(), "a heartbeat that lost its claim ends by itself"

    assert heartbeat.lost
    assert claimed_at(stage) is None, "and never brings the claim back"


def test_the_heartbeat_closes_its_own_connection(
    stage: StagedVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[BaseDatabaseWrapper] = []
    wrapper_class = type(connections["default"])
    close = wrapper_class.close

    def recording_close(self: BaseDatabaseWrapper) -> None:
        closed.append(self)
        close(self)

    monkeypatch.setattr(wrapper_class, "close", recording_close)
    claim = sync.claim_download(stage.pk)
    assert claim is not None
    beats = Beats(partial(sync.bump_download_claim, stage.pk, claim))

    with leases.Heartbeat(beats, interval=BEAT):
        beats.wait_for_two_more()

    used = beats.connections[0]
    assert used is not connections["default"], "a connection of the heartbeat's own"
    assert used in closed
