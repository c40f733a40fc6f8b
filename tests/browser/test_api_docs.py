"""The API's docs page in a real browser: Swagger UI from our own static files, under the same
Content-Security-Policy as every page (the `new_page` fixture fails the test on any violation,
so the page is used, not only opened), and nothing fetched from another origin."""

import pytest
from playwright.sync_api import Request

from tests.api.conftest import token_for
from tests.personas import World

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_api_docs_work_under_the_csp_from_our_own_origin(live_server, new_page, world: World):
    page = new_page()
    fetched: list[str] = []

    def note(request: Request) -> None:
        fetched.append(request.url)

    page.on("request", note)
    response = page.goto(f"{live_server.url}/api/v1/docs")

    assert response is not None
    assert response.status == 200
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "script-src" not in policy  # scripts: our own origin only, as everywhere
    page.wait_for_selector(".opblock-summary-path", timeout=20_000)
    shown = page.locator(".opblock-summary-path").all_inner_texts()
    paths = [text.replace("\u200b", "") for text in shown]
    assert "/api/v1/stages/{stage_id}/decision" in paths

    # Use it as a person would: authorize with a token, open an operation, try it.
    page.click("button.authorize")
    page.fill(".modal-ux input", token_for(world.viewer))
    page.click(".modal-ux button.authorize")
    page.click(".modal-ux button.btn-done")
    page.locator(".opblock-summary", has_text="Staged versions you may see").click()
    page.click("button.try-out__btn")
    page.click("button.execute")
    status = page.locator(".live-responses-table tbody .response-col_status").first
    status.wait_for(timeout=20_000)
    assert status.inner_text().strip() == "200"
    assert "@acme/ui" in page.locator(".live-responses-table").inner_text()

    assert f"{live_server.url}/api/v1/openapi.json" in fetched
    assert any(url.endswith("/static/ninja/swagger-ui-bundle.js") for url in fetched)
    others = [url for url in fetched if not url.startswith((live_server.url, "data:"))]
    assert others == []
