"""Linking a person's own npm token: checked with whoami, encrypted at rest with rotatable
keys, shown only as the npm user name, deleted on unlink, audited without the token."""

from __future__ import annotations

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.urls import reverse

from portal import settings as portal_settings
from reviews.audit.trail import Action
from reviews.decide import npm_tokens
from reviews.models import AuditEvent, NpmToken
from tests.decide.conftest import Registry, approve, both_modes, client_for, link
from tests.personas import World
from tests.portal.test_settings import PRODUCTION_ENV, manage

pytestmark = pytest.mark.django_db

SETTINGS = reverse("reviews:settings")
LINK = reverse("reviews:npm-token-link")
UNLINK = reverse("reviews:npm-token-unlink")


def test_link_checks_the_token_and_shows_only_the_npm_user(registry: Registry, world: World):
    client = client_for(world.approver)
    token = registry.alice.token

    response = client.post(LINK, {"token": token})

    assert response.status_code == 302
    assert registry.traffic.count("GET", "/-/whoami") == 1
    record = NpmToken.objects.get(user=world.approver)
    assert record.npm_user == "alice"
    assert token not in record.encrypted
    assert npm_tokens.decrypt(record.encrypted) == token
    page = client.get(SETTINGS).content.decode()
    assert "Linked: the registry knows this token as alice." in page
    assert '<strong class="npm-user">alice</strong>' in page
    assert "<dt>Last used</dt><dd>never</dd>" in page
    assert token not in page
    event = AuditEvent.objects.get(action=Action.NPM_ACCOUNT_LINKED)
    assert (event.username, event.npm_user, event.payload) == (
        "approver",
        "alice",
        {"replaced": False},
    )


def test_a_token_the_registry_refuses_is_not_kept(registry: Registry, world: World):
    response = client_for(world.approver).post(LINK, {"token": "npm_" + "0" * 36})

    assert response.status_code == 400
    assert "The registry did not accept this token" in response.content.decode()
    assert "npm_" + "0" * 36 not in response.content.decode()
    assert not NpmToken.objects.exists()
    assert not AuditEvent.objects.filter(action=Action.NPM_ACCOUNT_LINKED).exists()


@pytest.mark.parametrize("token", ["has spaces in it", "npm_\nx-injected: 1", "short"])
def test_something_that_is_not_a_token_never_reaches_the_registry(
    registry: Registry, world: World, token: str
):
    response = client_for(world.approver).post(LINK, {"token": token})

    assert response.status_code == 400
    assert "does not look like an npm token" in response.content.decode()
    assert registry.traffic.count("GET", "/-/whoami") == 0


def test_a_registry_that_is_down_links_nothing(registry: Registry, world: World):
    registry.live.set_faults([{"path": "^/-/whoami$", "status": 503}])

    response = client_for(world.approver).post(LINK, {"token": registry.alice.token})

    assert response.status_code == 400
    assert "could not check the token" in response.content.decode()
    assert not NpmToken.objects.exists()


def test_linking_again_replaces_the_token(registry: Registry, world: World):
    link(world.approver, registry.alice)

    client_for(world.approver).post(LINK, {"token": registry.bob.token})

    assert NpmToken.objects.get(user=world.approver).npm_user == "bob"
    latest = AuditEvent.objects.filter(action=Action.NPM_ACCOUNT_LINKED).first()
    assert latest is not None
    assert latest.payload == {"replaced": True}


def test_unlink_deletes_the_token(registry: Registry, world: World):
    link(world.approver, registry.alice)
    client = client_for(world.approver)

    response = client.post(UNLINK)

    assert response.status_code == 302
    assert not NpmToken.objects.exists()
    assert "was unlinked and deleted" in client.get(SETTINGS).content.decode()
    event = AuditEvent.objects.get(action=Action.NPM_ACCOUNT_UNLINKED)
    assert (event.username, event.npm_user) == ("approver", "alice")


def test_using_the_token_is_shown_as_last_used(registry: Registry, world: World):
    stage = registry.stage()
    link(world.approver, registry.alice)
    client = client_for(world.approver)

    approve(client, stage, otp=registry.alice.code())

    assert NpmToken.objects.get(user=world.approver).last_used_at is not None
    assert "<dt>Last used</dt><dd>never</dd>" not in client.get(SETTINGS).content.decode()


def test_keys_rotate(registry: Registry, world: World, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.GREENROOM_TOKEN_KEYS = [old]
    link(world.approver, registry.alice)
    settings.GREENROOM_TOKEN_KEYS = [new, old]
    out = StringIO()

    call_command("rotate_token_keys", stdout=out)

    assert out.getvalue() == (
        "Re-encrypted 1 npm tokens with the first key.\n"
        "Re-encrypted 0 team webhook URLs with the first key.\n"
    )
    settings.GREENROOM_TOKEN_KEYS = [new]
    record = NpmToken.objects.get(user=world.approver)
    assert npm_tokens.decrypt(record.encrypted) == registry.alice.token
    rotated = AuditEvent.objects.get(action=Action.NPM_KEYS_ROTATED)
    assert rotated.payload == {"rotated": 1, "unreadable": 0}


def test_a_token_no_key_can_read_is_named(registry: Registry, world: World, settings):
    link(world.approver, registry.alice)
    settings.GREENROOM_TOKEN_KEYS = [Fernet.generate_key().decode()]
    record = NpmToken.objects.get(user=world.approver)

    with pytest.raises(CommandError, match=f"NpmToken rows {record.pk}"):
        call_command("rotate_token_keys", stdout=StringIO())

    stage = registry.stage()
    outcome = approve(client_for(world.approver), stage, otp=registry.alice.code())
    assert "can no longer be read by the portal; link it again" in outcome.content.decode()
    assert registry.traffic.approvals() == 0


def test_production_refuses_to_start_without_token_keys(tmp_path):
    env = {**PRODUCTION_ENV, "GREENROOM_TOKEN_KEYS": "", "GREENROOM_VAR_DIR": str(tmp_path)}

    result = manage("check", env=env)

    assert result.returncode != 0
    assert "GREENROOM_TOKEN_KEYS must be set when DEBUG is off" in result.stderr


def test_a_malformed_key_is_named_not_shown(monkeypatch):
    monkeypatch.setenv("GREENROOM_TOKEN_KEYS", "not-a-fernet-key-at-all")

    with pytest.raises(ImproperlyConfigured, match="key 1 is not a Fernet key") as caught:
        portal_settings.token_keys()

    assert "not-a-fernet-key-at-all" not in str(caught.value)


def test_development_gets_a_fixed_key_only_with_debug(monkeypatch):
    monkeypatch.delenv("GREENROOM_TOKEN_KEYS", raising=False)
    monkeypatch.setattr(portal_settings, "DEBUG", True)

    # Fixed, so tokens linked in development still decrypt after a restart; public, so never
    # used with DEBUG off.
    assert portal_settings.token_keys() == ["m2gbaiTq5tucQBJOjgM5aoKgAsEiH4CVRm4JMIn7hoM="]
    Fernet(portal_settings.token_keys()[0])
    monkeypatch.setattr(portal_settings, "DEBUG", False)
    with pytest.raises(ImproperlyConfigured):
        portal_settings.token_keys()


@both_modes
def test_a_revoked_token_is_refused_when_linking_in_either_registry(
    registry: Registry, world: World
):
    registry.revoke_tokens_of("alice")

    response = client_for(world.approver).post(LINK, {"token": registry.alice.token})

    body = response.content.decode()
    assert response.status_code == 400
    assert "The registry did not accept this token (wrong, revoked or expired)" in body
    assert "create a new token and link that one" in body
    assert "could not check the token" not in body  # a 403 is not a registry hiccup
    assert not NpmToken.objects.exists()
