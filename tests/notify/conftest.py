"""Notification tests: the personas with email addresses, the portal's links at a fixed base
URL, and helpers that run the outbox the way the Celery tasks do (by calling the same plain
functions), so each test reads as: something happens, the outbox runs, who got what.

The live-registry fixtures of tests/decisions are reused for the sync and approve paths.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.conf import LazySettings
from django.core import mail
from django.core.mail import EmailMessage
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from reviews.models import DeliveryStatus, Notification, StagedVersion, WebhookDelivery
from reviews.notify import dispatch as notifications
from reviews.notify import webhooks
from tests.decide.conftest import registry, traffic  # noqa: F401 (fixtures)
from tests.notify.webhook_endpoints import dns, network  # noqa: F401 (fixtures)
from tests.personas import World

BASE_URL = "https://greenroom.example.test"


@pytest.fixture(autouse=True)
def notification_settings(settings: LazySettings) -> None:
    settings.GREENROOM_BASE_URL = BASE_URL
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    # Most tests announce at once; tests/notify/test_new_stage.py waits for analyses.
    settings.GREENROOM_NOTIFY_ANALYSIS_WAIT = 0
    settings.GREENROOM_DIGEST_HOUR = 8
    settings.GREENROOM_WEBHOOK_ALLOW_PRIVATE = False


@pytest.fixture
def people(world: World) -> World:
    """The personas, each with an email address (name@example.test)."""
    for user in (world.approver, world.viewer, world.acme_admin, world.outsider, world.staff):
        user.email = f"{user.username}@example.test"
        user.save(update_fields=["email"])
    return world


def admin_page(world: World) -> str:
    """The acme team page as its admin sees it (settings and webhook deliveries)."""
    client = Client()
    client.force_login(world.acme_admin)
    return client.get(reverse("reviews:team", args=["acme"])).content.decode()


def verified(stage: StagedVersion) -> StagedVersion:
    """The tarball verdict is in: a new stage's email need not wait for it."""
    StagedVersion.objects.filter(pk=stage.pk).update(integrity=StagedVersion.Integrity.VERIFIED)
    stage.refresh_from_db()
    return stage


def run_outbox(now: datetime | None = None) -> list[EmailMessage]:
    """Dispatch what is due and send every pending email and webhook delivery once, as the
    sweep and its tasks do; the emails sent by this call."""
    before = len(mail.outbox)
    fanout = notifications.dispatch_events(now=now)
    for notification_id in fanout.notification_ids:
        notifications.send_notification(notification_id)
    for delivery_id in fanout.delivery_ids:
        with contextlib.suppress(webhooks.RetryDelivery):
            webhooks.deliver(delivery_id)
    return list(mail.outbox[before:])


def send_pending() -> list[EmailMessage]:
    before = len(mail.outbox)
    pending = Notification.objects.filter(status=DeliveryStatus.PENDING).order_by("id")
    for notification_id in pending.values_list("id", flat=True):
        notifications.send_notification(notification_id)
    return list(mail.outbox[before:])


def recipients_of(messages: list[EmailMessage]) -> list[str]:
    return sorted(address for message in messages for address in message.to)


def html_of(message: EmailMessage) -> str:
    alternatives: list[Any] = getattr(message, "alternatives", [])
    assert len(alternatives) == 1
    content, mimetype = alternatives[0]
    assert mimetype == "text/html"
    return str(content)


def days_ago(days: float) -> datetime:
    return timezone.now() - timedelta(days=days)


def deliveries() -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.order_by("id"))
