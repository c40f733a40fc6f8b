"""API tokens: only their digest is stored; revoked, expired, unknown and malformed tokens are
refused with a reason; the settings page shows a new token once; the command prints one;
making and revoking are audited."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from reviews.api import tokens
from reviews.audit.trail import SYSTEM, Actor
from reviews.models import ApiToken, AuditEvent
from tests.api.conftest import ApiClient, error_of
from tests.personas import World

pytestmark = pytest.mark.django_db


def test_a_token_is_stored_as_its_sha256_only(world: World):
    new = tokens.create(world.viewer, "ci", SYSTEM)

    assert new.secret.startswith("grn_")
    assert len(new.secret) == len("grn_") + 43  # 32 random bytes, url-safe base64
    row = ApiToken.objects.get(pk=new.record.pk)
    assert row.digest == hashlib.sha256(new.secret.encode()).hexdigest()
    stored = " ".join(str(value) for value in ApiToken.objects.values().get(pk=row.pk).values())
    assert new.secret not in stored
    assert row.hint == new.secret[:12]


def test_two_tokens_never_share_a_secret(world: World):
    secrets = {tokens.create(world.viewer, "ci", SYSTEM).secret for _ in range(20)}
    assert len(secrets) == 20


def test_a_live_token_authenticates_as_its_owner_and_records_its_use(world: World):
    new = tokens.create(world.viewer, "ci", SYSTEM)
    assert new.record.last_used_at is None

    response = ApiClient(new.secret).get("/stages")

    assert response.status_code == 200
    new.record.refresh_from_db()
    assert new.record.last_used_at is not None


def test_last_used_is_written_at_most_once_a_minute(world: World):
    new = tokens.create(world.viewer, "ci", SYSTEM)
    first = timezone.now()
    tokens.authenticate(new.secret, now=first)
    tokens.authenticate(new.secret, now=first + timedelta(seconds=30))
    new.record.refresh_from_db()
    assert new.record.last_used_at == first
    later = first + timedelta(minutes=2)
    tokens.authenticate(new.secret, now=later)
    new.record.refresh_from_db()
    assert new.record.last_used_at == later


@pytest.mark.parametrize(
    ("secret", "code"),
    [
        ("grn_" + "A" * 43, "invalid_token"),  # well-formed, never issued
        ("not-ours-at-all", "invalid_token"),
        ("grn_" + "A" * 400, "invalid_token"),
    ],
)
def test_unknown_tokens_are_401(world: World, secret: str, code: str):
    response = ApiClient(secret).get("/stages")
    assert response.status_code == 401
    assert error_of(response)["code"] == code


def test_a_revoked_token_is_refused_at_once(world: World):
    new = tokens.create(world.viewer, "ci", SYSTEM)
    client = ApiClient(new.secret)
    assert client.get("/stages").status_code == 200

    assert tokens.revoke(new.record, Actor(user=world.viewer))

    response = client.get("/stages")
    assert response.status_code == 401
    error = error_of(response)
    assert error["code"] == "token_revoked"
    assert error["message"].startswith("This API token was revoked on ")


def test_an_expired_token_is_refused(world: World):
    new = tokens.create(world.viewer, "ci", SYSTEM, expires_in_days=1)
    client = ApiClient(new.secret)
    assert client.get("/stages").status_code == 200

    ApiToken.objects.filter(pk=new.record.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    response = client.get("/stages")
    assert response.status_code == 401
    assert error_of(response)["code"] == "token_expired"


def test_a_token_expires_at_the_end_of_its_days(world: World):
    now = timezone.now()
    new = tokens.create(world.viewer, "ci", SYSTEM, expires_in_days=30, now=now)
    assert new.record.expires_at == now + timedelta(days=30)
    tokens.authenticate(new.secret, now=now + timedelta(days=29))
    with pytest.raises(tokens.TokenRefused):
        tokens.authenticate(new.secret, now=now + timedelta(days=30))


def test_a_deactivated_owners_token_is_refused(world: World):
    secret = tokens.create(world.viewer, "ci", SYSTEM).secret
    world.viewer.is_active = False
    world.viewer.save()

    response = ApiClient(secret).get("/stages")

    assert response.status_code == 401
    assert error_of(response)["code"] == "account_inactive"


def test_another_scheme_is_no_token(world: World):
    secret = tokens.create(world.viewer, "ci", SYSTEM).secret
    client = Client()
    for header in (f"Token {secret}", f"Basic {secret}", secret, "Bearer "):
        response = client.get("/api/v1/stages", headers={"Authorization": header})
        assert response.status_code == 401
        assert error_of(response)["code"] == "unauthenticated"


def test_making_and_revoking_are_audited_without_the_secret(world: World):
    actor = Actor(user=world.viewer, ip="192.0.2.7")
    new = tokens.create(world.viewer, "release job", actor, expires_in_days=7)
    tokens.revoke(new.record, actor)
    assert not tokens.revoke(new.record, actor)  # once only

    made, revoked = AuditEvent.objects.filter(target=f"api-token:{new.record.pk}").order_by("id")
    assert made.action == "api_token.created"
    assert revoked.action == "api_token.revoked"
    assert AuditEvent.objects.filter(action="api_token.revoked").count() == 1
    for event in (made, revoked):
        assert event.username == "viewer"
        assert event.ip == "192.0.2.7"
        assert event.payload["name"] == "release job"
        assert event.payload["hint"] == new.secret[:12]
        assert new.secret not in str(event.payload)
    assert new.record.expires_at is not None
    assert made.payload["expires_at"] == new.record.expires_at.isoformat()


# -- The settings page ----------------------------------------------------------------------------


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_settings_page_makes_a_token_and_shows_it_once(world: World):
    client = signed_in(world.viewer)

    response = client.post(
        reverse("reviews:api-token-create"), {"name": "release job", "expires_in_days": "30"}
    )

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    body = response.content.decode()
    row = ApiToken.objects.get(user=world.viewer)
    shown = body.split('class="wrap api-token-secret">')[1].split("<")[0]
    assert shown.startswith("grn_")
    assert hashlib.sha256(shown.encode()).hexdigest() == row.digest
    assert "Copy it now: it is not shown again." in body
    # It works, and the page never shows it again.
    assert ApiClient(shown).get("/stages").status_code == 200
    again = client.get(reverse("reviews:settings")).content.decode()
    assert shown not in again
    assert row.hint in again
    assert "release job" in again


def test_a_token_without_a_name_is_not_made(world: World):
    client = signed_in(world.viewer)
    response = client.post(reverse("reviews:api-token-create"), {"name": "  "})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not ApiToken.objects.exists()


def test_revoking_on_the_settings_page(world: World):
    new = tokens.create(world.viewer, "ci", SYSTEM)
    client = signed_in(world.viewer)

    response = client.post(reverse("reviews:api-token-revoke", args=[new.record.pk]))

    assert response.status_code == 302
    assert ApiClient(new.secret).get("/stages").status_code == 401
    page = client.get(reverse("reviews:settings")).content.decode()
    assert "revoked" in page


def test_nobody_revokes_someone_elses_token(world: World):
    new = tokens.create(world.viewer, "ci", SYSTEM)
    response = signed_in(world.staff).post(
        reverse("reviews:api-token-revoke", args=[new.record.pk])
    )
    assert response.status_code == 404
    assert ApiClient(new.secret).get("/stages").status_code == 200


# -- The command ----------------------------------------------------------------------------------


def test_the_command_prints_a_working_token(world: World):
    out, err = StringIO(), StringIO()
    call_command(
        "create_api_token", "viewer", "--name", "GitHub Actions", "--expires-days", "90",
        stdout=out, stderr=err,
    )  # fmt: skip

    secret = out.getvalue().strip()
    assert secret.startswith("grn_")
    assert "not shown again" in err.getvalue()
    row = ApiToken.objects.get(user=world.viewer)
    assert (row.name, row.digest) == ("GitHub Actions", hashlib.sha256(secret.encode()).hexdigest())
    assert row.expires_at is not None
    assert ApiClient(secret).get("/stages").status_code == 200
    event = AuditEvent.objects.get(action="api_token.created")
    assert event.payload["owner"] == "viewer"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody"], "There is no user 'nobody'."),
        (["viewer", "--expires-days", "0"], "A token expires after 1 to 3650 days, or never."),
        (["viewer", "--name", " "], "--name must be 1 to 100 characters."),
    ],
)
def test_the_command_refuses_clearly(world: World, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_api_token", *args, stdout=StringIO(), stderr=StringIO())
    assert not ApiToken.objects.exists()
