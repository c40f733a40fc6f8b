"""The 2FA step offers what the person will use: the code field first (and focused) when the
registry asks for a code, the security key first only when the registry opened a web
challenge, and whichever the person used last remembered. "Check now" says what it found and
keeps the typed note."""

from __future__ import annotations

import re

import pytest

from reviews.models import Profile, SecondFactor, StagedVersion, WebAuthChallenge
from tests.decide.conftest import Registry, approve, client_for, link, poll, url
from tests.personas import World

pytestmark = pytest.mark.django_db

code_only = pytest.mark.parametrize("registry", ["other"], indirect=True)


def otp_input(page: str) -> str:
    found = re.search(r"<input[^>]*name=\"otp\"[^>]*>", page)
    assert found, "no code field"
    return found.group(0)


def before(page: str, first: str, second: str) -> bool:
    return page.index(first) < page.index(second)


def remembered(world: World) -> str:
    return Profile.objects.get(user=world.approver).last_second_factor


@code_only
def test_a_registry_asking_for_a_code_gets_the_code_field_first_and_focused(
    registry: Registry, world: World
):
    stage = registry.stage()
    link(world.approver, registry.alice)

    page = approve(client_for(world.approver), stage, reason="looks fine").content.decode()

    assert "autofocus" in otp_input(page)
    assert before(page, 'name="otp"', 'name="reason"')
    assert 'id="security-key"' not in page
    assert "looks fine" in page  # the note stays


def test_a_web_challenge_puts_the_security_key_first(registry: Registry, world: World):
    stage = registry.stage()
    link(world.approver, registry.alice)

    page = approve(client_for(world.approver), stage).content.decode()

    assert before(page, 'id="security-key"', 'id="decide-form"')
    assert "Or type a code" in page
    assert "autofocus" not in otp_input(page)
    assert re.search(r'id="open-security-key"[^>]*autofocus', page)


def test_a_code_used_last_time_leads_and_shows_before_the_first_click(
    registry: Registry, world: World
):
    link(world.approver, registry.alice)
    client = client_for(world.approver)
    first = registry.stage("@acme/widget", "1.0.0")
    approve(client, first)
    assert approve(client, first, otp=registry.alice.code()).status_code == 303
    assert remembered(world) == SecondFactor.CODE

    second = registry.stage("@acme/widget", "1.1.0")
    form = client.get(url("stage-approve-form", second)).content.decode()
    assert "autofocus" in otp_input(form)  # no round trip to be asked for it
    challenged = approve(client, second).content.decode()  # the registry opens a web challenge

    assert before(challenged, 'id="decide-form"', 'id="security-key"')
    assert "Or confirm with your security key" in challenged
    assert "autofocus" in otp_input(challenged)
    assert "Or type a code" not in challenged


def test_a_security_key_used_last_time_is_remembered(registry: Registry, world: World):
    link(world.approver, registry.alice)
    client = client_for(world.approver)
    stage = registry.stage()
    approve(client, stage)
    challenge = WebAuthChallenge.objects.get(stage=stage)
    registry.live.complete_web_auth(challenge.auth_url)

    assert poll(client, stage, htmx=False).status_code == 303

    assert remembered(world) == SecondFactor.SECURITY_KEY
    later = registry.stage("@acme/widget", "1.1.0")
    assert 'name="otp"' not in client.get(url("stage-approve-form", later)).content.decode()


def test_check_now_says_what_it_found_and_keeps_the_edited_note(registry: Registry, world: World):
    link(world.approver, registry.alice)
    client = client_for(world.approver)
    stage = registry.stage()
    approve(client, stage, reason="first words")

    checked = client.post(url("stage-security-key-poll", stage), {"reason": "better words"})

    assert checked.status_code == 303
    page = client.get(checked["Location"]).content.decode()
    assert "the registry has not seen your security key yet" in page
    assert ">\nbetter words</textarea>" in page
    challenge = WebAuthChallenge.objects.get(stage=stage)
    registry.live.complete_web_auth(challenge.auth_url)
    WebAuthChallenge.objects.filter(pk=challenge.pk).update(next_poll_at=challenge.created_at)
    assert poll(client, stage, htmx=False).status_code == 303
    stage.refresh_from_db()
    assert stage.state == StagedVersion.State.APPROVED
    assert stage.decision_reason == "better words"


def test_check_now_is_part_of_the_decision_form(registry: Registry, world: World):
    """Without it the button would post no note (and a reload would lose what was typed)."""
    link(world.approver, registry.alice)
    stage = registry.stage()
    page = approve(client_for(world.approver), stage).content.decode()

    button = re.search(r"<button[^>]*id=\"check-key-button\"[^>]*>", page)
    assert button
    assert 'form="decide-form"' in button.group(0)
    assert "formnovalidate" in button.group(0)
