"""Team webhooks against a real HTTP server on loopback: Slack-compatible JSON for each event,
retries (bounded) for 5xx, 429, timeouts and refused connections, none for other answers, and
every result shown to the team admin, never with the secret URL."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.conf import LazySettings
from django.utils import timezone

from reviews.audit.trail import Actor
from reviews.models import DeliveryStatus, StagedVersion, WebhookDelivery
from reviews.notify import dispatch as notifications
from reviews.notify import webhooks
from reviews.tasks import deliver_webhook_task
from tests.notify.conftest import BASE_URL, admin_page, verified
from tests.notify.webhook_endpoints import Endpoint, Reply, serve
from tests.personas import World, make_stage

pytestmark = pytest.mark.django_db

SECRET = "/services/T000/B000/XXXXtopsekritXXXX"


@pytest.fixture
def endpoint(settings: LazySettings) -> Iterator[Endpoint]:
    settings.GREENROOM_WEBHOOK_ALLOW_PRIVATE = True  # loopback
    settings.GREENROOM_WEBHOOK_TIMEOUT = 0.5
    with serve() as ep:
        ep.url += SECRET
        yield ep


@pytest.fixture
def hooked(people: World, endpoint: Endpoint) -> Endpoint:
    webhooks.set_webhook(people.acme, webhooks.validate_url(endpoint.url), Actor())
    return endpoint


def new_stage_delivery() -> tuple[StagedVersion, WebhookDelivery]:
    stage = verified(make_stage("@acme/ui", "3.0.0"))
    notifications.stage_seen(stage)
    fanout = notifications.dispatch_events()
    assert len(fanout.delivery_ids) == 1
    return stage, WebhookDelivery.objects.get(pk=fanout.delivery_ids[0])


def assert_no_secret(delivery: WebhookDelivery, caplog: pytest.LogCaptureFixture) -> None:
    delivery.refresh_from_db()
    assert "topsekrit" not in delivery.last_error
    assert "topsekrit" not in caplog.text


def test_a_new_stage_is_posted_as_slack_compatible_json(hooked: Endpoint) -> None:
    stage, delivery = new_stage_delivery()

    assert webhooks.deliver(delivery.pk) == webhooks.DELIVERED

    [request] = hooked.received
    assert request["path"] == SECRET
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["headers"]["User-Agent"] == "Greenroom-Webhook/1"
    message = request["json"]
    url = f"{BASE_URL}/stages/{stage.stage_id}/"
    assert message["text"] == (
        f"New stage: @acme/ui@3.0.0 (latest) by ci <{url}|Review it in Greenroom>"
    )
    attachment = message["attachments"][0]
    assert attachment["title_link"] == url
    assert {"title": "Package", "value": "@acme/ui@3.0.0", "short": True} in attachment["fields"]
    assert {"title": "Tarball", "value": "Verified", "short": True} in attachment["fields"]
    facts = message["greenroom"]
    assert facts["event"] == "stage.new"
    assert (facts["package"], facts["version"], facts["tag"]) == ("@acme/ui", "3.0.0", "latest")
    assert (facts["team"], facts["url"], facts["stage_id"]) == ("acme", url, str(stage.stage_id))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("sent", 1, 200)


def test_reminders_and_decisions_are_posted_too(hooked: Endpoint, people: World) -> None:
    stage = verified(make_stage("@acme/ui", "3.0.0"))
    StagedVersion.objects.filter(pk=stage.pk).update(staged_at=timezone.now() - timedelta(days=5))
    notifications.create_reminders()
    fanout = notifications.dispatch_events()
    StagedVersion.objects.filter(pk=stage.pk).update(
        state=StagedVersion.State.APPROVED,
        decided_by=people.approver,
        decided_npm_user="alice",
        decided_in_portal=True,
        resolved_at=timezone.now(),
    )
    stage.refresh_from_db()
    notifications.stage_decided(stage)
    fanout.extend(notifications.dispatch_events())

    for delivery_id in fanout.delivery_ids:
        webhooks.deliver(delivery_id)

    texts = [r["json"]["text"].split(" <")[0] for r in hooked.received]
    assert texts == [
        "Reminder: @acme/ui@3.0.0 has been waiting 5 days for a decision",
        "@acme/ui@3.0.0 was approved by approver (npm user alice) in Greenroom",
    ]
    reminder, decided = (r["json"]["greenroom"] for r in hooked.received)
    assert (reminder["event"], reminder["reminder"], reminder["waiting_days"]) == (
        "stage.reminder",
        1,
        5,
    )
    assert (decided["event"], decided["decided_by"], decided["decided_npm_user"]) == (
        "stage.decided",
        "approver",
        "alice",
    )


def test_a_failing_endpoint_is_retried_until_it_answers(
    hooked: Endpoint, people: World, eager: None, caplog: pytest.LogCaptureFixture
) -> None:
    hooked.replies = [Reply(500, b"oops"), Reply(503, b"busy")]
    _, delivery = new_stage_delivery()

    deliver_webhook_task.apply(args=(delivery.pk,))

    assert len(hooked.received) == 3
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("sent", 3, 200)
    page = admin_page(people)
    assert "delivered" in page
    assert "New stage: @acme/ui@3.0.0" in page
    assert_no_secret(delivery, caplog)


def test_retries_are_bounded_and_the_failure_is_shown(
    hooked: Endpoint, people: World, eager: None, caplog: pytest.LogCaptureFixture
) -> None:
    hooked.replies = [Reply(502, b"bad gateway")] * (webhooks.MAX_ATTEMPTS + 5)
    _, delivery = new_stage_delivery()

    deliver_webhook_task.apply(args=(delivery.pk,))

    assert len(hooked.received) == webhooks.MAX_ATTEMPTS
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, webhooks.MAX_ATTEMPTS)
    # The endpoint is on loopback: its reply is not kept (tests/notify/test_webhook_destinations).
    assert delivery.last_error == "502 (the reply of a private address is not kept)"
    assert "bad gateway" not in delivery.last_error
    page = admin_page(people)
    assert "failed" in page
    assert "HTTP 502 502 (the reply of a private address is not kept)" in page
    assert "topsekrit" not in page
    assert_no_secret(delivery, caplog)
    later = timezone.now() + timedelta(days=1)
    assert delivery.pk not in webhooks.stale_deliveries(now=later)


def test_a_refusal_is_not_retried(hooked: Endpoint, eager: None) -> None:
    hooked.replies = [Reply(404, b"no_service")]
    _, delivery = new_stage_delivery()

    deliver_webhook_task.apply(args=(delivery.pk,))

    assert len(hooked.received) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_error) == (
        "failed",
        "404 (the reply of a private address is not kept)",
    )


@pytest.mark.parametrize("location", ["file:///etc/passwd", "/elsewhere", "{url}/again"])
@pytest.mark.parametrize("status", [302, 307])
def test_a_redirect_is_not_followed(hooked: Endpoint, location: str, status: int) -> None:
    hooked.replies = [Reply(status, b"", {"Location": location.format(url=hooked.url)})]
    _, delivery = new_stage_delivery()

    assert webhooks.deliver(delivery.pk) == webhooks.FAILED

    assert [(r["method"], r["path"]) for r in hooked.received] == [("POST", SECRET)]
    delivery.refresh_from_db()
    assert delivery.last_status_code == status
    assert "redirects are not followed" in delivery.last_error


def test_busy_endpoints_say_when_to_come_back(hooked: Endpoint) -> None:
    hooked.replies = [Reply(429, b"slow down", {"Retry-After": "42"})]
    _, delivery = new_stage_delivery()

    with pytest.raises(webhooks.RetryDelivery) as retry:
        webhooks.deliver(delivery.pk)

    assert retry.value.retry_in == 42
    delivery.refresh_from_db()
    assert (delivery.status, delivery.claimed_at) == ("pending", None)
    assert delivery.next_attempt_at >= timezone.now() + timedelta(seconds=40)


def test_a_slow_endpoint_times_out_and_is_retried(
    hooked: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    hooked.replies = [Reply(200, b"ok", delay=1.5)]
    _, delivery = new_stage_delivery()

    with pytest.raises(webhooks.RetryDelivery):
        webhooks.deliver(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.last_error == "the endpoint did not answer in time"
    assert_no_secret(delivery, caplog)


def test_an_endpoint_that_is_down_is_retried_and_the_url_is_not_logged(
    hooked: Endpoint, people: World, caplog: pytest.LogCaptureFixture, settings: LazySettings
) -> None:
    # Point the webhook at a port nobody listens on (the server's own port, once closed).
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    webhooks.set_webhook(people.acme, f"http://127.0.0.1:{port}{SECRET}", Actor())
    _, delivery = new_stage_delivery()

    with caplog.at_level(logging.DEBUG), pytest.raises(webhooks.RetryDelivery):
        webhooks.deliver(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.last_error == "could not connect to the endpoint"
    assert_no_secret(delivery, caplog)


def test_an_unreadable_url_fails_with_words_for_the_admin(
    hooked: Endpoint, settings: LazySettings
) -> None:
    _, delivery = new_stage_delivery()
    settings.GREENROOM_TOKEN_KEYS = ["A" * 43 + "="]  # another key: the stored URL is unreadable

    assert webhooks.deliver(delivery.pk) == webhooks.FAILED

    delivery.refresh_from_db()
    assert delivery.last_error == "the webhook URL can no longer be read; set it again"
    assert hooked.received == []


def test_a_delivery_is_posted_once_however_often_its_task_runs(
    hooked: Endpoint, eager: None
) -> None:
    _, delivery = new_stage_delivery()

    for _ in range(3):
        deliver_webhook_task.apply(args=(delivery.pk,))

    assert len(hooked.received) == 1


def test_stored_urls_survive_a_key_rotation(
    people: World, endpoint: Endpoint, settings: LazySettings
) -> None:
    from io import StringIO

    from cryptography.fernet import Fernet
    from django.core.management import call_command

    from reviews.decide import npm_tokens
    from reviews.models import TeamNotificationSettings

    webhooks.set_webhook(people.acme, endpoint.url, Actor())
    settings.GREENROOM_TOKEN_KEYS = [Fernet.generate_key().decode(), *settings.GREENROOM_TOKEN_KEYS]

    out = StringIO()
    call_command("rotate_token_keys", stdout=out)  # the one command rotates both
    assert "Re-encrypted 1 team webhook URLs" in out.getvalue()

    settings.GREENROOM_TOKEN_KEYS = settings.GREENROOM_TOKEN_KEYS[:1]  # the old key dropped
    row = TeamNotificationSettings.objects.get(team=people.acme)
    assert npm_tokens.decrypt(row.webhook_url_encrypted) == endpoint.url
