"""A real Celery worker on Redis runs the sync task and the download tasks it enqueues."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.integration.conftest import SharedDatabase, Worker, wait_for
from tests.mirror.live import Registry

pytestmark = pytest.mark.integration

SYNC_TASK = "reviews.tasks.sync_stages_task"


def test_a_worker_syncs_verifies_and_resolves(
    registry: Registry, shared_db: SharedDatabase, worker: Worker
) -> None:
    good = [registry.stage(f"pkg-{n}") for n in range(4)]
    liar = registry.stage("liar")
    registry.tamper_stage(liar, shasum="0" * 40)

    worker.send(SYNC_TASK)

    def all_checked() -> bool:
        stages = shared_db.stages()
        return len(stages) == 5 and all(s["integrity"] != "pending" for s in stages.values())

    wait_for(all_checked, 60, "the worker to check every tarball", worker.output)
    stages = shared_db.stages()
    assert {stages[i]["integrity"] for i in good} == {"verified"}
    assert stages[liar]["integrity"] == "mismatch"
    assert "0" * 40 in stages[liar]["integrity_reason"]
    assert all(s["tarball_id"] is not None for s in stages.values())
    assert all(s["download_claimed_at"] is None for s in stages.values())
    # The liar's tarball twice: a mismatch counts once a second download says the same.
    assert registry.tarball_requests() == 6
    assert len(list(worker.log.parent.joinpath("tarballs").rglob("*.tgz"))) == 5

    registry.approve(good[0])
    registry.reject(good[1])
    worker.send(SYNC_TASK)

    def both_resolved() -> bool:
        stages = shared_db.stages()
        return {stages[good[0]]["state"], stages[good[1]]["state"]}.isdisjoint({"pending"})

    wait_for(
        both_resolved,
        30,
        "the next pass to resolve",
        worker.output,
    )
    stages = shared_db.stages()
    assert stages[good[0]]["state"] == "approved"
    assert stages[good[1]]["state"] == "rejected"
    assert stages[good[0]]["published_shasum_matches"] in (True, 1)
    assert {stages[i]["state"] for i in (*good[2:], liar)} == {"pending"}
    assert registry.tarball_requests() == 6, "no tarball is downloaded again"


class Beat:
    """Sends the sync task at most once a second, as Celery beat would (only more often)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.last = float("-inf")

    def tick(self) -> None:
        if time.monotonic() - self.last >= 1:
            self.worker.send(SYNC_TASK)
            self.last = time.monotonic()


def as_datetime(value: Any) -> datetime:
    """A timestamp as PostgreSQL (datetime) or SQLite (ISO text) hands it back."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def test_a_killed_workers_download_is_taken_over_once_its_short_lease_ends(
    registry: Registry, shared_db: SharedDatabase, start_worker: Callable[..., Worker]
) -> None:
    stage_id = registry.stage("left-pad")
    # The first download hangs (a registry that stalls); its worker is killed while it waits.
    registry.set_faults([{"method": "GET", "path": "/tarball$", "delay": 30, "times": 1}])
    short_lease = {"GREENROOM_CLAIM_LEASE": "2", "GREENROOM_REGISTRY_TIMEOUT": "60"}
    doomed = start_worker(**short_lease)
    doomed.send(SYNC_TASK)

    def row() -> dict[str, Any]:
        return shared_db.stages().get(stage_id, {})

    wait_for(lambda: bool(row().get("download_claim")), 60, "the download to start", doomed.output)
    claimed = row()

    def kept_alive_past_the_lease() -> bool:
        now = row()
        fresh = as_datetime(now["download_claimed_at"]) - as_datetime(
            claimed["download_claimed_at"]
        )
        return now["download_claim"] == claimed["download_claim"] and fresh > timedelta(seconds=2)

    wait_for(kept_alive_past_the_lease, 30, "the heartbeat to refresh the claim", doomed.output)
    doomed.kill()
    registry.clear_faults()
    assert row()["integrity"] == "pending"
    assert row()["download_claim"] == claimed["download_claim"], "the dead worker's claim stays"

    # Its message died with it; a new worker's sync pass finds the claim expired and re-queues.
    restarted = start_worker(**short_lease)
    beat = Beat(restarted)

    def verified() -> bool:
        beat.tick()
        return bool(row()["integrity"] == "verified")

    wait_for(verified, 60, "the restarted worker to verify the tarball", restarted.output)
    final = row()
    assert final["download_attempts"] == 2
    assert (final["download_claim"], final["download_claimed_at"]) == ("", None)
    assert final["tarball_id"] is not None


def test_a_download_the_registry_fails_once_is_retried_by_the_worker(
    registry: Registry, shared_db: SharedDatabase, worker: Worker
) -> None:
    # The download task's own retry (Celery's `self.retry` with a countdown), through Redis:
    # the first tarball request answers 503, the retried message downloads and verifies.
    stage_id = registry.stage("left-pad")
    registry.set_faults([{"method": "GET", "path": "/tarball$", "status": 503, "times": 1}])

    worker.send(SYNC_TASK)

    def verified() -> bool:
        return shared_db.stages().get(stage_id, {}).get("integrity") == "verified"

    wait_for(verified, 60, "the retried download to verify the tarball", worker.output)
    assert registry.tarball_requests() == 2
    assert "Retry in" in worker.log.read_text()
    row = shared_db.stages()[stage_id]
    assert row["tarball_id"] is not None
    assert row["download_claimed_at"] is None
