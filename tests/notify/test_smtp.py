"""End to end through a real SMTP server (aiosmtpd) on loopback: the sweep dispatches, the
send task goes through Django's SMTP backend, and the delivered message has the headers, both
bodies and a link that works."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage as ParsedMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.conf import LazySettings
from django.test import Client

from reviews.models import Notification, NotificationMode, NotificationPreference
from reviews.notify import dispatch as notifications
from reviews.tasks import notifications_sweep_task
from tests.notify.conftest import BASE_URL, verified
from tests.personas import World, make_stage

pytestmark = pytest.mark.django_db

SENDER = "greenroom@example.test"


@dataclass
class Inbox:
    """An SMTP server's handler: keeps what it accepts; answers the queued refusals first."""

    envelopes: list[Any] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refusals:
            return self.refusals.pop(0)
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def parsed(self) -> list[ParsedMessage]:
        return [
            message_from_bytes(e.original_content, policy=policy.default) for e in self.envelopes
        ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp(settings: LazySettings) -> Iterator[Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), ready_timeout=5)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = SENDER
    yield inbox
    controller.stop()


def only_the_viewer_hears(world: World) -> None:
    for user in (world.approver, world.acme_admin):
        NotificationPreference.objects.create(user=user, team=world.acme, mode="off")


def body(message: ParsedMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None
    return str(part.get_content())


def test_a_new_stage_email_as_delivered_by_smtp(
    people: World, smtp: Inbox, eager: None, django_capture_on_commit_callbacks
) -> None:
    only_the_viewer_hears(people)
    stage = verified(make_stage("@acme/ui", "3.0.0"))
    notifications.stage_seen(stage)

    with django_capture_on_commit_callbacks(execute=True) as queued:
        notifications_sweep_task.apply()

    assert len(queued) == 1  # one send task, enqueued on commit, by id
    [envelope] = smtp.envelopes
    assert envelope.mail_from == SENDER
    assert envelope.rcpt_tos == ["viewer@example.test"]
    [message] = smtp.parsed()
    notification = Notification.objects.get()
    assert message["Subject"] == "[Greenroom] New stage: @acme/ui@3.0.0 (latest)"
    assert message["From"] == SENDER
    assert message["To"] == "viewer@example.test"
    assert message["Message-ID"] == notifications.message_id(notification.key)
    assert message["Message-ID"] == notification.message_id
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    text, html = body(message, "plain"), body(message, "html")
    stage_url = f"{BASE_URL}/stages/{stage.stage_id}/"
    assert f"Review it: {stage_url}" in text
    assert "Staged by: ci" in text
    assert f'<a href="{stage_url}"' in html
    assert "<strong>@acme/ui@3.0.0</strong> was staged by ci" in html

    # The unsubscribe link, as delivered, works from outside any session.
    found = re.search(r"Stop these emails: (\S+)", text)
    assert found is not None
    assert message["List-Unsubscribe"].strip() == f"<{found.group(1)}>"  # folded: long
    assert found.group(1) in html
    path = found.group(1).removeprefix(BASE_URL)
    assert Client(enforce_csrf_checks=True).post(path).status_code == 200
    preference = NotificationPreference.objects.get(user=people.viewer, team=people.acme)
    assert preference.mode == NotificationMode.OFF


def test_a_server_that_says_try_later_gets_the_email_once_it_takes_it(
    people: World, smtp: Inbox, eager: None, django_capture_on_commit_callbacks
) -> None:
    only_the_viewer_hears(people)
    smtp.refusals = ["451 4.3.0 Try again later", "421 4.7.0 Too busy"]
    notifications.stage_seen(verified(make_stage("@acme/ui", "3.0.0")))

    with django_capture_on_commit_callbacks(execute=True):
        notifications_sweep_task.apply()
        notifications_sweep_task.apply()  # a second sweep finds nothing more to do

    assert len(smtp.envelopes) == 1
    notification = Notification.objects.get()
    assert (notification.status, notification.attempts) == ("sent", 3)


def test_a_server_that_refuses_for_good_is_not_asked_again(
    people: World, smtp: Inbox, eager: None, django_capture_on_commit_callbacks
) -> None:
    only_the_viewer_hears(people)
    smtp.refusals = ["554 5.7.1 Message rejected"]
    notifications.stage_seen(verified(make_stage("@acme/ui", "3.0.0")))

    with django_capture_on_commit_callbacks(execute=True):
        notifications_sweep_task.apply()

    notification = Notification.objects.get()
    assert (notification.status, notification.attempts) == ("failed", 1)
    assert notification.last_error == "the mail server answered 554 5.7.1 Message rejected"
    assert smtp.envelopes == []
