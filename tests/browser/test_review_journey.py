"""The review in a real Chromium: open a stage, filter the tree, open a file's diff (htmx),
switch to side by side, expand hidden lines, and follow the shared link in another browser."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.personas import World
from tests.review.support import reviewed
from tests.support.packages import build_tarball

pytestmark = pytest.mark.django_db(transaction=True)

LINES = "".join(f"const line{n} = {n};\n" for n in range(1, 61))


def test_a_reviewer_filters_opens_a_diff_and_shares_it(live_server, new_page, world: World):
    stage = world.acme_stage
    old: dict[str, bytes | str] = {
        "lib/middle.js": LINES,
        "lib/other.js": "a\n",
        "README.md": "# ui\n",
    }
    new: dict[str, bytes | str] = {
        "lib/middle.js": LINES.replace("line30 = 30", "line30 = 'thirty'"),
        "lib/other.js": "b\n",
        "README.md": "# ui\n",
        "lib/added.js": "export {};\n",
    }
    reviewed(
        stage,
        build_tarball(stage.package_name, stage.version, new),
        build_tarball(stage.package_name, "1.0.0", old),
    )
    page = new_page()
    log_in(page, live_server.url, "viewer", "viewer-password")
    stage_url = f"{live_server.url}/stages/{stage.stage_id}/"

    page.goto(stage_url)
    expect(page.locator("#baseline-sentence")).to_contain_text("Compared with 1.0.0")
    files = page.locator("#tree li.gr-file")
    expect(files).to_have_count(4)  # changed only: README.md is not listed

    page.fill("#tree-q", "middle")
    expect(files).to_have_count(1)
    page.click("#tree a.gr-file-link")

    middle_url = re.compile(rf"/stages/{stage.stage_id}/files/lib/middle\.js")
    expect(page).to_have_url(middle_url)  # pushed: the address names the file
    expect(page.locator("#diff .gr-unified")).to_contain_text("thirty")
    expect(page.locator("#tree-q")).to_have_value("middle")  # only the pane was swapped

    page.click("#diff .layout-toggle >> text=Side by side")
    split = page.locator("#diff .gr-side-by-side")
    expect(split).to_be_visible()
    rows = split.locator("tr.gr-row")
    expect(rows).to_have_count(7)  # three lines of context either side of the change
    page.click("#diff tr.gr-gap >> nth=0")  # the 26 unchanged lines above
    expect(rows).to_have_count(7 + 26)
    shared = page.url
    assert "layout=split" in shared

    other = new_page()
    log_in(other, live_server.url, "approver", "approver-password")
    other.goto(shared)
    expect(other.locator("#diff .gr-side-by-side")).to_contain_text("thirty")
    expect(other.locator('#tree a[aria-current="page"]')).to_have_text("middle.js")
