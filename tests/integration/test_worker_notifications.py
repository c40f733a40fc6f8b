"""The notification tasks on a real Celery worker on Redis: a webhook delivery the endpoint
refuses once is retried by the worker (the task's own `self.retry`) and then delivered."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.integration.conftest import (
    ROOT,
    SUBPROCESS_TIMEOUT,
    Portal,
    SharedDatabase,
    Worker,
    wait_for,
)
from tests.notify.webhook_endpoints import Reply, serve

pytestmark = pytest.mark.integration

DELIVER_TASK = "reviews.tasks.deliver_webhook_task"

# Run in the portal's environment, on the shared database: a team whose webhook is the
# endpoint given, and one test message for it. Prints the delivery's id.
QUEUE_TEST_MESSAGE = """
import sys
from reviews.audit.trail import SYSTEM
from reviews.models import Team
from reviews.notify import webhooks
team = Team.objects.create(name="Acme", slug="acme")
webhooks.set_webhook(team, webhooks.validate_url(sys.argv[1]), SYSTEM)
print(webhooks.queue_test(Team.objects.get(pk=team.pk)).pk)
"""


def queue_test_message(portal: Portal, url: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup()\n{QUEUE_TEST_MESSAGE}", url],
        cwd=ROOT,
        env={**portal.env, "GREENROOM_WEBHOOK_ALLOW_PRIVATE": "1"},
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip().splitlines()[-1])


def test_a_webhook_the_endpoint_refuses_once_is_retried_by_the_worker_and_delivered(
    portal: Portal, shared_db: SharedDatabase, start_worker: Callable[..., Worker]
) -> None:
    with serve() as endpoint:
        endpoint.replies.append(Reply(status=503, body=b"busy"))
        delivery_id = queue_test_message(portal, f"{endpoint.url}/hook")
        worker = start_worker(GREENROOM_WEBHOOK_ALLOW_PRIVATE="1")

        worker.send(DELIVER_TASK, delivery_id)

        def delivery() -> dict[str, object]:
            rows = shared_db.rows(
                "SELECT status, attempts, last_status_code FROM reviews_webhookdelivery "
                "WHERE id = %s",
                (delivery_id,),
            )
            return rows[0]

        wait_for(lambda: delivery()["status"] == "sent", 60, "the delivery", worker.output)
        assert delivery() == {"status": "sent", "attempts": 2, "last_status_code": 200}
        assert len(endpoint.received) == 2  # the refused post and the retried one
        assert "Retry in" in worker.log.read_text()
