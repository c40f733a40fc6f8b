"""The key journeys in a real Chromium against live_server and a live dev registry: link a
token, approve with a TOTP code (then `npm install` the version), and approve with a security
key while the page waits through htmx polling. (tests/decisions has the rest of issue 7.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.decide import conftest as decisions
from tests.decide.conftest import Registry
from tests.personas import World
from tests.support.npm import run_npm

# The registry side of tests/decisions, for these journeys (Playwright's fixtures live here).
traffic = decisions.traffic
registry = decisions.registry

pytestmark = pytest.mark.django_db(transaction=True)


def link_token_in_the_page(page, base_url: str, token: str) -> None:
    page.goto(f"{base_url}/settings/")
    page.fill("input[name=token]", token)
    page.click("form.link-token button[type=submit]")
    expect(page.locator(".npm-user")).to_have_text("alice")
    assert token not in page.content()


@pytest.mark.npm
def test_approve_with_a_code_then_npm_installs_it(
    live_server, new_page, world: World, registry: Registry, npm_env, tmp_path: Path, eager
):
    stage = registry.stage("@acme/widget", "1.0.0")
    page = new_page()
    log_in(page, live_server.url, "approver", "approver-password")
    link_token_in_the_page(page, live_server.url, registry.alice.token)

    page.goto(f"{live_server.url}/stages/{stage.stage_id}/")
    page.click("#approve-link")  # in the panel htmx loaded
    expect(page.locator(".tag-move")).to_contain_text("→ 1.0.0")
    page.click("#decide-button")
    page.fill("input[name=otp]", registry.alice.code())
    page.click("#decide-button")

    page.wait_for_url(f"{live_server.url}/stages/{stage.stage_id}/")
    expect(page.locator(".decided")).to_contain_text("Approved in Greenroom by approver")
    expect(page.locator(".digest-ok")).to_contain_text("Published digest verified")

    project = tmp_path / "app"
    project.mkdir()
    (project / "package.json").write_text('{"name": "app", "version": "1.0.0", "private": true}')
    result = run_npm(["install", "@acme/widget@1.0.0"], npm_env(registry.live, None), project)
    assert result.returncode == 0, result.stderr
    installed = project / "node_modules" / "@acme" / "widget" / "package.json"
    assert json.loads(installed.read_text())["version"] == "1.0.0"


def test_approve_with_a_security_key_while_the_page_waits(
    live_server, new_page, world: World, registry: Registry
):
    stage = registry.stage("@acme/widget", "1.0.0")
    page = new_page()
    log_in(page, live_server.url, "approver", "approver-password")
    link_token_in_the_page(page, live_server.url, registry.alice.token)

    page.goto(f"{live_server.url}/stages/{stage.stage_id}/approve/")
    page.click("#decide-button")
    with page.context.expect_page() as opened:
        page.click("#open-security-key")
    key_page = opened.value
    key_page.click("text=Use my security key")
    expect(key_page.locator("body")).to_contain_text("Security key accepted")

    # No click here: the waiting page polls, and the portal re-sends the approval itself.
    page.wait_for_url(f"{live_server.url}/stages/{stage.stage_id}/", timeout=15_000)
    expect(page.locator(".decided")).to_contain_text("Approved in Greenroom by approver")
    assert not registry.still_staged(stage)
