"""`manage.py sync_stages` as real processes: two at once, and one killed half-way."""

from __future__ import annotations

import os
import re
import signal

import pytest

from tests.integration.conftest import Portal, SharedDatabase, stop, wait_for
from tests.mirror.live import Registry

pytestmark = pytest.mark.integration

STAGES = 120


def counts(line: str) -> dict[str, int]:
    """'Sync: 3 staged versions listed: 3 new, ...; tarballs: 3 verified, ...' as numbers."""
    return {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", line)}


def test_two_passes_at_once_create_and_download_everything_once(
    registry: Registry, shared_db: SharedDatabase, portal: Portal
) -> None:
    for n in range(STAGES):
        registry.stage(f"pkg-{n}")
    # A slow registry keeps both passes busy at the same time, listing and downloading.
    registry.set_faults(
        [{"path": "^/-/stage$", "delay": 0.3}, {"path": "/tarball$", "delay": 0.01}]
    )

    first, second = portal.command(), portal.command()
    outputs = []
    for process in (first, second):
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        outputs.append(counts(out))
        print(out)  # both passes' summaries, shown by pytest when an assertion below fails

    assert len(shared_db.stages()) == STAGES
    assert outputs[0]["new"] + outputs[1]["new"] == STAGES
    # Each tarball is handled by one pass: downloaded, or deferred when no download slot came
    # free within the wait (the throttle both processes share; on a loaded machine it happens),
    # for a later pass. None is downloaded twice or forgotten.
    verified = outputs[0]["verified"] + outputs[1]["verified"]
    deferred = outputs[0]["deferred"] + outputs[1]["deferred"]
    assert verified + deferred == STAGES
    for _ in range(3):
        if not deferred:
            break
        later = counts(portal.sync())
        verified, deferred = verified + later["verified"], later["deferred"]
    assert verified == STAGES
    assert {s["integrity"] for s in shared_db.stages().values()} == {"verified"}
    assert registry.tarball_requests() == STAGES
    assert len(list(portal.tarball_dir.rglob("*.tgz"))) == STAGES


def test_a_pass_killed_half_way_is_completed_by_the_next(
    registry: Registry, shared_db: SharedDatabase, portal: Portal
) -> None:
    ids = [registry.stage(f"pkg-{n}") for n in range(5)]
    registry.set_faults([{"path": "/tarball$", "delay": 30}])

    doomed = portal.command()
    try:
        wait_for(
            lambda: any(s["download_claimed_at"] for s in shared_db.stages().values()),
            30,
            "the first download to start",
        )
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=10)
    finally:
        stop(doomed)

    stages = shared_db.stages()
    assert len(stages) == 5, "the listing was recorded before the kill"
    claimed = [i for i, s in stages.items() if s["download_claimed_at"]]
    assert len(claimed) == 1
    assert {s["integrity"] for s in stages.values()} == {"pending"}

    # The next pass downloads the rest and leaves the dead worker's claim alone...
    registry.clear_faults()
    assert counts(portal.sync())["verified"] == 4
    assert shared_db.stages()[claimed[0]]["integrity"] == "pending"

    # ...until its lease runs out; then the pass after that takes it over.
    shared_db.expire_download_claims()
    assert counts(portal.sync())["verified"] == 1

    stages = shared_db.stages()
    assert {stages[i]["integrity"] for i in ids} == {"verified"}
    assert stages[claimed[0]]["download_attempts"] == 2
