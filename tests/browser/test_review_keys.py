"""The review page as a professional reviewer uses it, in a real Chromium: all changed files
loading as they scroll into view, the keyboard, ticking a file viewed, search in the diffs, word
marks, and a layout that uses the window (no sideways page scroll, the diff at least 70 % of
the width at 1280 and 1920 px)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from reviews.models import StagedVersion
from tests.browser.conftest import log_in
from tests.personas import World
from tests.review.support import reviewed
from tests.support.packages import build_tarball

pytestmark = pytest.mark.django_db(transaction=True)

FILES = 20
LINES = "".join(f"const line{n} = {n};\n" for n in range(1, 61))
LONG = "const long = '" + "abcdefghij" * 60 + "';\n"  # 600 characters: wider than any window


def changed(n: int) -> str:
    thirty = LINES.replace("line30 = 30", f"line30 = 'thirty{n}'")
    return thirty.replace("line50 = 50", "line50 = 0")


@pytest.fixture
def stage(world: World) -> StagedVersion:
    """@acme/ui 2.0.0: twenty changed files (f01.js … f20.js), two changes each, one long line."""
    stage = world.acme_stage
    old: dict[str, bytes | str] = {f"lib/f{n:02}.js": LINES for n in range(1, FILES + 1)}
    new: dict[str, bytes | str] = {f"lib/f{n:02}.js": changed(n) for n in range(1, FILES + 1)}
    new["lib/f01.js"] = changed(1) + LONG
    reviewed(
        stage,
        build_tarball(stage.package_name, stage.version, new),
        build_tarball(stage.package_name, "1.0.0", old),
    )
    return stage


@pytest.fixture
def viewer_page(live_server, new_page: Callable[[], Page], stage: StagedVersion) -> Page:
    page = new_page()
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, live_server.url, "viewer", "viewer-password")
    return page


def file_url(live_server, stage: StagedVersion, path: str) -> str:
    return f"{live_server.url}/stages/{stage.stage_id}/files/{path}"


def test_all_files_load_as_they_scroll_into_view(live_server, viewer_page: Page, stage):
    page = viewer_page
    page.goto(f"{live_server.url}/stages/{stage.stage_id}/all-files/")

    first, last = page.locator("#pane-1"), page.locator(f"#pane-{FILES}")
    expect(first.locator(".gr-diff")).to_contain_text("thirty1")
    expect(last.locator(".all-file-placeholder")).to_be_visible()  # far below: not loaded
    assert last.locator(".gr-diff").count() == 0

    last.scroll_into_view_if_needed()
    expect(last.locator(".gr-diff")).to_contain_text(f"thirty{FILES}")

    header = page.locator("details.all-file >> nth=0").locator("summary")
    expect(header).to_contain_text("modified")
    expect(header).to_contain_text("KiB")
    page.click("details.all-file >> nth=0 >> summary .gr-badge")  # collapsible
    expect(first).to_be_hidden()


def test_keyboard_moves_between_files_and_changes(live_server, viewer_page: Page, stage):
    page = viewer_page
    page.goto(file_url(live_server, stage, "lib/f02.js"))
    expect(page.locator("#diff .gr-unified")).to_contain_text("thirty2")

    page.keyboard.press("j")
    expect(page).to_have_url(re.compile(r"/files/lib/f03\.js"))
    expect(page.locator("#diff .gr-unified")).to_contain_text("thirty3")
    page.keyboard.press("k")
    page.keyboard.press("k")
    expect(page).to_have_url(re.compile(r"/files/lib/f01\.js"))
    expect(page.locator("#diff .gr-unified")).to_contain_text("thirty1")

    page.keyboard.press("n")
    focused = page.locator("#diff tr.gr-focus")
    expect(focused).to_have_count(1)
    expect(focused).to_contain_text("line30")
    page.keyboard.press("n")
    expect(focused).to_contain_text("line50")
    page.keyboard.press("p")
    expect(focused).to_contain_text("line30")

    page.keyboard.press("t")
    expect(page.locator("#diff .gr-side-by-side")).to_be_visible()
    expect(page.locator("#diff .gr-side-by-side .gr-ins").first).to_have_text("'thirty1'")

    page.keyboard.press("/")
    expect(page.locator("#tree-q")).to_be_focused()
    page.keyboard.press("j")  # typed into the filter, not a shortcut
    expect(page.locator("#tree-q")).to_have_value("j")
    page.keyboard.press("Escape")

    page.keyboard.press("?")
    expect(page.locator("#keys-help")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#keys-help")).to_be_hidden()

    page.keyboard.press("]")
    expect(page).to_have_url(re.compile(r"/files/lib/f02\.js"))


def test_keyboard_on_the_all_files_page(live_server, viewer_page: Page, stage):
    page = viewer_page
    page.goto(f"{live_server.url}/stages/{stage.stage_id}/all-files/")
    expect(page.locator("#pane-1 .gr-diff")).to_be_visible()

    page.keyboard.press("j")
    page.keyboard.press("j")
    second = page.locator("details.all-file >> nth=1")
    expect(second).to_have_class(re.compile(r"\bgr-focus\b"))
    expect(second.locator(".gr-diff")).to_contain_text("thirty2")  # scrolled to, so loaded

    page.keyboard.press("e")  # collapse it
    expect(second.locator(".review-pane")).to_be_hidden()
    page.keyboard.press("e")
    expect(second.locator(".review-pane")).to_be_visible()


def test_a_file_is_marked_viewed_from_the_keyboard(live_server, viewer_page: Page, stage):
    page = viewer_page
    page.goto(file_url(live_server, stage, "lib/f04.js"))
    expect(page.locator("#viewed-summary")).to_contain_text("0 of 21")

    page.keyboard.press("v")

    expect(page.locator("#diff .gr-viewed")).to_contain_text("Viewed")
    expect(page.locator("#viewed-summary")).to_contain_text("1 of 21")
    expect(page.locator('#tree li[data-path="lib/f04.js"] .gr-viewed')).to_have_count(1)


def test_search_in_diffs_links_to_the_line(live_server, viewer_page: Page, stage):
    page = viewer_page
    page.goto(f"{live_server.url}/stages/{stage.stage_id}/")

    page.fill("#diff-search-q", "thirty7")
    page.press("#diff-search-q", "Enter")

    hits = page.locator("#search-results .search-hit")
    expect(hits).to_have_count(1)
    expect(hits).to_contain_text("lib/f07.js:30")
    hits.locator("a").click()
    expect(page).to_have_url(re.compile(r"/files/lib/f07\.js#L30$"))
    expect(page.locator("#diff .gr-unified")).to_contain_text("thirty7")


@pytest.mark.parametrize("width", [1280, 1920])
@pytest.mark.parametrize("layout", ["unified", "split"])
def test_the_diff_uses_the_window(live_server, viewer_page: Page, stage, width: int, layout: str):
    page = viewer_page
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(file_url(live_server, stage, "lib/f01.js") + f"?layout={layout}")
    expect(page.locator("#diff .gr-diff")).to_contain_text("abcdefghij")

    sizes = page.evaluate(
        """() => ({
            page: document.documentElement.scrollWidth,
            window: document.documentElement.clientWidth,
            diff: document.querySelector('#diff').getBoundingClientRect().width,
            inner: window.innerWidth,
        })"""
    )
    assert sizes["page"] <= sizes["window"], sizes  # no sideways scroll of the page
    assert sizes["diff"] >= 0.7 * sizes["inner"], sizes
    if layout == "split":  # the empty side next to the added long line is not green
        empty = page.locator("#diff tr.gr-added td.gr-empty").first
        background = empty.evaluate("cell => getComputedStyle(cell).backgroundColor")
        assert background != "rgb(230, 255, 236)"

    for path in ("/all-files/", "/"):
        page.goto(f"{live_server.url}/stages/{stage.stage_id}{path}")
        wide = page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
        assert wide, path
