"""The signed unsubscribe link (no login; a tampered link is refused), a person's choice per
team on their own page, and the team admin's reminder and webhook settings."""

from __future__ import annotations

import re

import pytest
from django.conf import LazySettings
from django.core import signing
from django.test import Client
from django.urls import reverse

from reviews.audit.trail import Action
from reviews.decide import npm_tokens
from reviews.models import (
    AuditEvent,
    NotificationMode,
    NotificationPreference,
    TeamNotificationSettings,
    WebhookDelivery,
)
from reviews.notify import dispatch as notifications
from reviews.tasks import deliver_webhook_task
from tests.notify.conftest import run_outbox, verified
from tests.notify.webhook_endpoints import Dns
from tests.personas import World, make_stage

pytestmark = pytest.mark.django_db

SECRET_PATH = "/services/T000/B000/very-secret-part"


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def mode(world: World, user) -> str:
    row = NotificationPreference.objects.filter(user=user, team=world.acme).first()
    return row.mode if row else NotificationMode.IMMEDIATE


def emailed_link(world: World) -> str:
    """The unsubscribe link of the viewer's new-stage email, as a path."""
    notifications.stage_seen(verified(make_stage("@acme/ui", "3.0.0")))
    message = next(m for m in run_outbox() if m.to == ["viewer@example.test"])
    found = re.search(r"Stop these emails: (\S+)", str(message.body))
    assert found is not None
    assert found.group(1) == message.extra_headers["List-Unsubscribe"][1:-1]
    return found.group(1).removeprefix("https://greenroom.example.test")


# -- Unsubscribing --------------------------------------------------------------------------------


def test_the_link_asks_first_then_stops_the_teams_emails_without_a_login(people: World) -> None:
    link = emailed_link(people)
    anonymous = Client(enforce_csrf_checks=True)

    page = anonymous.get(link)
    assert page.status_code == 200
    assert "Stop every email to <strong>viewer</strong> about\n  Acme?" in page.content.decode()
    assert mode(people, people.viewer) == NotificationMode.IMMEDIATE

    done = anonymous.post(link)
    assert done.status_code == 200
    assert "gets no more emails about\n  Acme." in done.content.decode()
    assert mode(people, people.viewer) == NotificationMode.OFF
    event = AuditEvent.objects.get(action=Action.NOTIFICATION_PREFERENCE_SET)
    assert (event.username, event.target) == ("viewer", "team:acme")
    assert event.payload == {
        "person": "viewer",
        "old": "immediate",
        "new": "off",
        "via": "unsubscribe link",
    }


def test_mail_clients_one_click_post_works(people: World) -> None:
    link = emailed_link(people)

    response = Client(enforce_csrf_checks=True).post(
        link, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 200
    assert mode(people, people.viewer) == NotificationMode.OFF


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),  # signature changed
        lambda token: token.split(":")[0] + ":" + token.split(":", 1)[1][2:],  # cut short
        lambda token: signing.dumps({"u": 1, "t": [1]}),  # signed, but not for this purpose
        lambda token: "not-a-token",
    ],
    ids=["signature", "truncated", "other-salt", "garbage"],
)
def test_a_tampered_link_is_refused_and_changes_nothing(people: World, tamper) -> None:
    token = emailed_link(people).split("/")[-2]
    bad = reverse("reviews:notifications-unsubscribe", args=[tamper(token)])

    for response in (Client().get(bad), Client().post(bad)):
        assert response.status_code == 400
        assert "This link is not valid" in response.content.decode()
    assert mode(people, people.viewer) == NotificationMode.IMMEDIATE
    assert not AuditEvent.objects.filter(action=Action.NOTIFICATION_PREFERENCE_SET).exists()


def test_a_link_for_another_person_cannot_be_forged_from_ones_own(people: World) -> None:
    token = emailed_link(people).split("/")[-2]
    payload, rest = token.split(":", 1)
    forged_payload = signing.b64_encode(b'{"u":1,"t":[1]}').decode()
    forged = reverse("reviews:notifications-unsubscribe", args=[f"{forged_payload}:{rest}"])

    assert payload != forged_payload
    assert Client().post(forged).status_code == 400
    assert mode(people, people.approver) == NotificationMode.IMMEDIATE


def test_a_link_of_a_deactivated_account_is_refused(people: World) -> None:
    link = emailed_link(people)
    people.viewer.is_active = False
    people.viewer.save()

    assert Client().post(link).status_code == 400


# -- A person's own choice ------------------------------------------------------------------------


def test_the_own_page_shows_and_changes_the_choice_per_team(people: World) -> None:
    client = client_for(people.viewer)

    page = client.get(reverse("reviews:me")).content.decode()
    assert '<option value="immediate" selected>Every email</option>' in page
    response = client.post(
        reverse("reviews:notification-preference", args=["acme"]), {"mode": "digest"}
    )

    assert response.status_code == 302
    assert mode(people, people.viewer) == NotificationMode.DIGEST
    page = client.get(reverse("reviews:me")).content.decode()
    assert '<option value="digest" selected>Daily digest</option>' in page
    assert "Acme: daily digest from now on." in page
    event = AuditEvent.objects.get(action=Action.NOTIFICATION_PREFERENCE_SET)
    assert event.payload["via"] == "page"


def test_an_unknown_choice_is_refused(people: World) -> None:
    client = client_for(people.viewer)

    client.post(reverse("reviews:notification-preference", args=["acme"]), {"mode": "hourly"})

    assert mode(people, people.viewer) == NotificationMode.IMMEDIATE
    assert "Choose every email" in client.get(reverse("reviews:me")).content.decode()


def test_staff_who_are_not_members_have_no_choice_to_make(people: World) -> None:
    response = client_for(people.staff).post(
        reverse("reviews:notification-preference", args=["acme"]), {"mode": "off"}
    )

    assert response.status_code == 404


# -- The team admin's settings --------------------------------------------------------------------


def team_url(name: str = "team") -> str:
    return reverse(f"reviews:{name}", args=["acme"])


def save(client: Client, **data: str):
    form = {"reminder_after_days": "3", "reminder_every_days": "1", **data}
    return client.post(team_url("team-notifications"), form)


@pytest.fixture
def public_host(dns: Dns) -> None:
    """hooks.example.test resolves to a public address (no DNS in tests)."""
    dns.answer("hooks.example.test", ["8.8.8.8"])


def test_only_team_admins_see_the_settings_form_and_deliveries(people: World) -> None:
    admin_page = client_for(people.acme_admin).get(team_url()).content.decode()
    viewer_page = client_for(people.viewer).get(team_url()).content.decode()

    assert "Save notification settings" in admin_page
    assert "Webhook deliveries" in admin_page
    assert "Save notification settings" not in viewer_page
    assert "Webhook deliveries" not in viewer_page
    assert "Approvers are reminded of stages pending longer than 3 days" in viewer_page


def test_the_reminder_rate_is_saved_and_audited(people: World) -> None:
    response = save(client_for(people.acme_admin), reminder_after_days="5", reminder_every_days="2")

    assert response.status_code == 302
    row = TeamNotificationSettings.objects.get(team=people.acme)
    assert (row.reminder_after_days, row.reminder_every_days) == (5, 2)
    event = AuditEvent.objects.get(action=Action.TEAM_NOTIFICATIONS_CHANGED)
    assert event.target == "team:acme"
    assert event.payload["reminder_after_days"] == {"old": 3, "new": 5}


@pytest.mark.parametrize(
    ("after", "every"), [("-1", "1"), ("91", "1"), ("3", "0"), ("3", "31"), ("x", "1")]
)
def test_a_reminder_rate_out_of_bounds_is_refused(people: World, after: str, every: str) -> None:
    response = save(
        client_for(people.acme_admin), reminder_after_days=after, reminder_every_days=every
    )

    assert response.status_code == 400
    assert not TeamNotificationSettings.objects.exists()


def test_a_webhook_url_is_kept_encrypted_and_never_shown_again(
    people: World, public_host: None
) -> None:
    url = f"https://hooks.example.test{SECRET_PATH}"
    client = client_for(people.acme_admin)

    response = save(client, webhook_url=url)

    assert response.status_code == 302
    row = TeamNotificationSettings.objects.get(team=people.acme)
    assert "very-secret-part" not in row.webhook_url_encrypted
    assert npm_tokens.decrypt(row.webhook_url_encrypted) == url
    assert row.webhook_url_hint == "https://hooks.example.test/…"
    page = client.get(team_url()).content.decode()
    assert "https://hooks.example.test/…" in page
    assert "very-secret-part" not in page
    event = AuditEvent.objects.get(action=Action.TEAM_WEBHOOK_SET)
    assert event.payload == {"destination": "https://hooks.example.test/…", "replaced": False}
    assert "very-secret-part" not in str(AuditEvent.objects.values_list("payload", flat=True))


def test_leaving_the_url_empty_keeps_the_webhook(people: World, public_host: None) -> None:
    client = client_for(people.acme_admin)
    save(client, webhook_url=f"https://hooks.example.test{SECRET_PATH}")
    before = TeamNotificationSettings.objects.get(team=people.acme).webhook_url_encrypted

    save(client, reminder_after_days="4")

    assert TeamNotificationSettings.objects.get(team=people.acme).webhook_url_encrypted == before


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://hooks.example.test/x", "starts with https://"),
        ("javascript:alert(1)", "starts with https://"),
        ("https:///no-host", "names a host"),
        ("https://hooks.example.test:99999/", "not a URL"),
        ("https://hooks.example.test/a b", "no spaces"),
        ("http://127.0.0.1:8000/hook", "private or local network"),
        ("http://169.254.169.254/latest/meta-data", "private or local network"),
        ("http://[::1]/hook", "private or local network"),
        ("http://10.1.2.3/hook", "private or local network"),
    ],
)
def test_webhook_urls_we_will_not_post_to_are_refused(
    people: World, public_host: None, url: str, words: str
) -> None:
    response = save(client_for(people.acme_admin), webhook_url=url)

    assert response.status_code == 400
    assert words in response.content.decode()
    assert not TeamNotificationSettings.objects.filter(webhook_url_hint__gt="").exists()
    assert not AuditEvent.objects.filter(action=Action.TEAM_WEBHOOK_SET).exists()


def test_private_addresses_are_allowed_when_the_portal_says_so(
    people: World, settings: LazySettings
) -> None:
    settings.GREENROOM_WEBHOOK_ALLOW_PRIVATE = True

    response = save(client_for(people.acme_admin), webhook_url="http://127.0.0.1:8000/hook")

    assert response.status_code == 302


def test_removing_the_webhook_drops_what_was_waiting_for_it(
    people: World, public_host: None
) -> None:
    client = client_for(people.acme_admin)
    save(client, webhook_url=f"https://hooks.example.test{SECRET_PATH}")
    notifications.stage_seen(verified(make_stage("@acme/ui", "3.0.0")))
    notifications.dispatch_events()
    waiting = WebhookDelivery.objects.get()

    save(client, remove_webhook="on")

    waiting.refresh_from_db()
    assert waiting.status == "skipped"
    assert TeamNotificationSettings.objects.get(team=people.acme).webhook_url_encrypted == ""
    assert AuditEvent.objects.filter(action=Action.TEAM_WEBHOOK_REMOVED).count() == 1


def test_the_test_button_queues_one_delivery_on_commit(
    people: World, public_host: None, django_capture_on_commit_callbacks
) -> None:
    client = client_for(people.acme_admin)
    save(client, webhook_url=f"https://hooks.example.test{SECRET_PATH}")

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(team_url("team-webhook-test"))

    assert response.status_code == 302
    delivery = WebhookDelivery.objects.get()
    assert delivery.summary == "Test message"
    assert [(c.func, c.args) for c in callbacks] == [(deliver_webhook_task.delay, (delivery.pk,))]


def test_the_test_button_without_a_webhook_says_so(people: World) -> None:
    client = client_for(people.acme_admin)

    client.post(team_url("team-webhook-test"))

    assert "Set a webhook URL first." in client.get(team_url()).content.decode()
    assert not WebhookDelivery.objects.exists()
