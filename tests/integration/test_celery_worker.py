"""A real Celery worker on Redis runs the sync task and the download tasks it enqueues."""

from __future__ import annotations

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
