"""A batch of five in a real Chromium: tick the stages on the dashboard, start a batch, approve
it with one code and watch the progress fill in (htmx polling) while the request sends; the
registry refuses the code after three uses, the page waits for a fresh one and goes on."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import log_in
from tests.browser.test_decision_journeys import link_token_in_the_page
from tests.decide import conftest as decisions
from tests.decide.conftest import Registry
from tests.personas import World

traffic = decisions.traffic
registry = decisions.registry

pytestmark = pytest.mark.django_db(transaction=True)

# Each approve waits this long at the registry, so the page has time to show progress.
APPROVE_DELAY = 0.8


def watch_progress(page: Page, until: str, timeout: float = 20.0) -> list[tuple[str, int]]:
    """What the page showed, every 100 ms: the batch's state and how many stages are done."""
    seen: list[tuple[str, int]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = page.locator("#batch-progress .batch-state").inner_text()
        seen.append((state, page.locator("#batch-progress .batch-item-done").count()))
        if until in state:
            return seen
        page.wait_for_timeout(100)
    raise AssertionError(f"the page never said {until!r}: {seen[-5:]}")


def test_a_batch_of_five_with_live_progress(
    live_server, new_page, world: World, registry: Registry
):
    stages = [registry.stage(f"@acme/part{i}", "1.0.0") for i in range(5)]
    registry.live.set_faults([{"path": "/approve$", "delay": APPROVE_DELAY}])
    registry.live.set_otp_max_uses(3)
    page = new_page()
    log_in(page, live_server.url, "approver", "approver-password")
    link_token_in_the_page(page, live_server.url, registry.alice.token)

    page.goto(f"{live_server.url}/")
    for stage in stages:
        page.check(f"input[type=checkbox][value='{stage.stage_id}']")
    page.click("#batch-select button[type=submit]")
    expect(page.locator("h1")).to_contain_text("Batch #")
    expect(page.locator(".batch-stages tbody tr")).to_have_count(5)

    page.fill("#batch-otp", registry.alice.code())
    page.click("#batch-approve-button")

    # While the approve request is still sending, the polled progress fills in; then the
    # registry refuses the code on the fourth stage and the page asks for a fresh one.
    seen = watch_progress(page, until="Waiting for a code")
    assert any(state.startswith("Sending") and 0 < done < 3 for state, done in seen), seen
    done = page.locator("#batch-progress .batch-item-done")
    expect(done).to_have_count(3)
    expect(page.locator("#batch-progress .item-state").nth(3)).to_have_text("Waiting for a code")

    page.reload()  # resumable: the page shows where it stands
    expect(page.locator("#batch-approve-button")).to_have_text("Go on with this code")
    page.fill("#batch-otp", registry.alice.code(1))
    page.click("#batch-approve-button")

    expect(page.locator(".batch-state")).to_contain_text("Finished", timeout=15_000)
    expect(done).to_have_count(5)
    expect(page.locator(".batch-state")).to_contain_text("5 done, 0 to send, 0 failed")
    assert registry.traffic.approvals(with_factor=True) == 6  # five, and the refused one
