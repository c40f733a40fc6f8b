"""A sync pass never multiplies the queue: with no worker running, three passes leave one
download message per stage on a real Redis broker."""

from __future__ import annotations

import pytest

from tests.integration.conftest import BrokerQueues, Portal, SharedDatabase
from tests.mirror.live import Registry

pytestmark = pytest.mark.integration


def test_three_passes_with_the_workers_stopped_leave_one_message_per_stage(
    registry: Registry, portal: Portal, shared_db: SharedDatabase, broker_queues: BrokerQueues
) -> None:
    for n in range(5):
        registry.stage(f"pkg-{n}")
    portal.env.update(broker_queues.env)

    outputs = [portal.sync("--enqueue") for _ in range(3)]

    assert "5 tarball downloads enqueued" in outputs[0]
    assert all("0 tarball downloads enqueued" in out for out in outputs[1:])
    assert broker_queues.lengths() == (5, 0)
    marked = shared_db.rows("SELECT download_queued_at FROM reviews_stagedversion")
    assert len(marked) == 5
    assert all(row["download_queued_at"] is not None for row in marked)


def test_a_mark_older_than_a_lease_is_queued_again(
    registry: Registry, portal: Portal, shared_db: SharedDatabase, broker_queues: BrokerQueues
) -> None:
    registry.stage("left-pad")
    portal.env.update(broker_queues.env)
    portal.sync("--enqueue")

    # The message was lost (a broker that restarted empty): past the lease, a pass sends another.
    shared_db.age_queue_marks()
    assert "1 tarball downloads enqueued" in portal.sync("--enqueue")
    assert broker_queues.lengths() == (2, 0)
