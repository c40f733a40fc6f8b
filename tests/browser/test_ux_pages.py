"""Pages a maintainer meets around a decision, in a real Chromium: the 2FA step offering the
code first (and focused) when the registry asks for one, the 403 page's reason in our layout,
and the audit page fitting a 1280 px window."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from reviews.audit import trail as audit
from reviews.audit.trail import Action
from reviews.models import Membership, Role
from tests.browser.conftest import log_in
from tests.decide import conftest as decisions
from tests.decide.conftest import Registry, link
from tests.personas import World

traffic = decisions.traffic
registry = decisions.registry

pytestmark = pytest.mark.django_db(transaction=True)


def no_horizontal_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


@pytest.mark.parametrize("registry", ["other"], indirect=True)
def test_the_second_factor_step_offers_the_code_first_and_focused(
    live_server, new_page, world: World, registry: Registry, eager
):
    stage = registry.stage("@acme/widget", "1.0.0")
    link(world.approver, registry.alice)
    page = new_page()
    log_in(page, live_server.url, "approver", "approver-password")

    page.goto(f"{live_server.url}/stages/{stage.stage_id}/approve/")
    page.fill("textarea[name=reason]", "diff read, all fine")
    page.click("#decide-button")  # the registry answers: a one-time code, please

    code = page.locator("input[name=otp]")
    expect(code).to_be_focused()
    code_box, note_box = code.bounding_box(), page.locator("textarea[name=reason]").bounding_box()
    assert code_box
    assert note_box
    assert code_box["y"] < note_box["y"]
    expect(page.locator("textarea[name=reason]")).to_have_value("diff read, all fine")
    expect(page.locator("#security-key")).to_have_count(0)

    page.keyboard.type(registry.alice.code())  # straight into the focused field
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/stages/{stage.stage_id}/")
    expect(page.locator(".messages .alert-success")).to_have_count(1)
    expect(page.locator(".messages")).not_to_contain_text("already approved")
    expect(page.locator(".decided")).to_contain_text("Approved in Greenroom by approver")


def test_the_403_page_says_why_in_our_layout(live_server, new_page, world: World):
    reviewer = User.objects.create_user("rita", password="rita-password")
    Membership.objects.create(team=world.acme, user=reviewer, role=Role.REVIEWER)
    page = new_page()
    log_in(page, live_server.url, "rita", "rita-password")

    response = page.goto(f"{live_server.url}/stages/{world.acme_stage.stage_id}/approve/")

    assert response is not None
    assert response.status == 403
    expect(page.locator("h1")).to_have_text("Not allowed")
    expect(page.locator(".error-reason")).to_contain_text(
        "This needs the approver role. Your role for @acme/ui is reviewer"
    )
    expect(page.locator("nav[aria-label=Main]")).to_be_visible()


def test_the_audit_page_fits_1280_px_with_details_folded(live_server, new_page, world: World):
    long_reason = "a note without spaces " + "x" * 300
    for number in range(60):
        audit.record(
            Action.STAGE_APPROVED if number % 2 else Action.TARBALL_VERIFIED,
            stage=world.acme_stage,
            payload={
                "sha256": f"{number:02d}" + "e" * 62,
                "integrity": "sha512-" + "Q" * 86 + "==",
                "reason": long_reason,
                "factor": "code",
            },
        )
    page = new_page()
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server.url, "staff", "staff-password")

    page.goto(f"{live_server.url}/audit/")

    assert no_horizontal_scroll(page)
    rows = page.locator("tr.audit-event")
    expect(rows).to_have_count(50)
    first = rows.nth(1)  # the newest after staff's own log-in
    expect(first.locator(".event-name")).to_have_text("Approved")
    expect(first.locator("dl.kv")).to_be_hidden()
    first.locator("summary").click()
    expect(first.locator("dl.kv")).to_be_visible()
    digest = first.locator(f'dd code.hash[title="{"59" + "e" * 62}"]')
    expect(digest).to_have_text("59eeeeeeeeee…")
    expect(first.locator("dd button.copy").first).to_be_visible()  # added by static/js/copy.js
    assert no_horizontal_scroll(page)


@pytest.mark.parametrize("width", [1280, 1920])
def test_pages_use_the_whole_window(live_server, new_page, world: World, width: int):
    page = new_page()
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, live_server.url, "approver", "approver-password")

    for path in ("/", "/audit/", "/teams/acme/", "/settings/"):
        page.goto(f"{live_server.url}{path}")
        box = page.locator("main").bounding_box()
        assert box
        assert box["width"] >= 0.95 * width, path
        assert no_horizontal_scroll(page), path
