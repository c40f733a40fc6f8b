import pytest

from tests.personas import World

from .conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_people_see_two_different_dashboards(live_server, new_page, world: World):
    approver_page = new_page()
    outsider_page = new_page()
    log_in(approver_page, live_server.url, "approver", "approver-password")
    log_in(outsider_page, live_server.url, "outsider", "outsider-password")

    approver_rows = approver_page.locator("table.stages tbody tr").all_inner_texts()
    outsider_rows = outsider_page.locator("table.stages tbody tr").all_inner_texts()

    assert len(approver_rows) == 1
    assert "@acme/ui" in approver_rows[0]
    assert len(outsider_rows) == 1
    assert "left-pad" in outsider_rows[0]

    # The outsider cannot open Acme's stage even with its URL.
    response = outsider_page.goto(f"{live_server.url}/stages/{world.acme_stage.stage_id}/")
    assert response is not None
    assert response.status == 404
