"""The notification tasks on a real Celery worker on Redis: an email sent through a real SMTP
server, and a webhook delivery the endpoint refuses once, retried by the worker (the task's
own `self.retry`) and then delivered."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.integration.conftest import (
    ROOT,
    SUBPROCESS_TIMEOUT,
    Portal,
    SharedDatabase,
    Worker,
    wait_for,
)
from tests.notify.test_smtp import free_port
from tests.notify.webhook_endpoints import Reply, serve

pytestmark = pytest.mark.integration

DELIVER_TASK = "reviews.tasks.deliver_webhook_task"
SEND_TASK = "reviews.tasks.send_notification_task"
SENDER = "greenroom@example.test"

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


# A new stage of Acme's, seen and verified, dispatched: one email to Acme's viewer. Prints the
# notification's id.
DISPATCH_NEW_STAGE_EMAIL = """
import uuid
from django.contrib.auth.models import User
from django.utils import timezone
from reviews.models import Membership, Role, StagedVersion, Team
from reviews.notify import dispatch
team = Team.objects.create(name="Acme", slug="acme")
team.patterns.create(pattern="@acme/*")
viewer = User.objects.create_user("viewer", email="viewer@example.test")
Membership.objects.create(team=team, user=viewer, role=Role.VIEWER)
stage = StagedVersion.objects.create(
    stage_id=uuid.uuid4(), package_name="@acme/ui", version="3.0.0", tag="latest", actor="ci",
    shasum="0" * 40, staged_at=timezone.now(), integrity=StagedVersion.Integrity.VERIFIED,
)
dispatch.stage_seen(stage)
(notification_id,) = dispatch.dispatch_events().notification_ids
print(notification_id)
"""


def run_in_portal(portal: Portal, script: str, *args: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup()\n{script}", *args],
        cwd=ROOT,
        # Loopback endpoints allowed; a new stage's email goes out without its analysis.
        env={
            **portal.env,
            "GREENROOM_WEBHOOK_ALLOW_PRIVATE": "1",
            "GREENROOM_NOTIFY_ANALYSIS_WAIT": "0",
        },
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
        delivery_id = run_in_portal(portal, QUEUE_TEST_MESSAGE, f"{endpoint.url}/hook")
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


@dataclass
class Inbox:
    envelopes: list[Any] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def test_an_email_is_sent_by_the_worker_through_a_real_smtp_server(
    portal: Portal, shared_db: SharedDatabase, start_worker: Callable[..., Worker]
) -> None:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), ready_timeout=5)
    controller.start()
    try:
        notification_id = run_in_portal(portal, DISPATCH_NEW_STAGE_EMAIL)
        worker = start_worker(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(controller.port),
            DEFAULT_FROM_EMAIL=SENDER,
        )

        worker.send(SEND_TASK, notification_id)

        wait_for(lambda: bool(inbox.envelopes), 60, "the email", worker.output)
    finally:
        controller.stop()
    [envelope] = inbox.envelopes
    assert (envelope.mail_from, envelope.rcpt_tos) == (SENDER, ["viewer@example.test"])
    message = message_from_bytes(envelope.original_content, policy=policy.default)
    assert message["Subject"] == "[Greenroom] New stage: @acme/ui@3.0.0 (latest)"
    wait_for(
        lambda: (
            shared_db.rows(
                "SELECT status FROM reviews_notification WHERE id = %s", (notification_id,)
            )[0]["status"]
            == "sent"
        ),
        30,
        "the notification to be marked sent",
        worker.output,
    )
