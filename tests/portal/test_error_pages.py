"""Error pages in Greenroom's layout that say why and what to do: 400, 403 (with the reason),
404, 500 (no debug details, and it renders with the database down), CSRF failures."""

from __future__ import annotations

import pytest
from django.core.exceptions import SuspiciousOperation
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import Client
from django.urls import path, reverse

from portal import errors
from portal import urls as portal_urls
from reviews.models import Role
from tests.personas import World, member_of


def crash(request):
    raise RuntimeError("secret-detail-of-a-bug")


def database_gone(request):
    raise OperationalError("could not connect to server")


def suspicious(request):
    raise SuspiciousOperation("a malformed thing")


urlpatterns = [
    *portal_urls.urlpatterns,
    path("crash/", crash),
    path("database-gone/", database_gone),
    path("suspicious/", suspicious),
]
handler500 = portal_urls.handler500


@pytest.fixture(autouse=True)
def production_errors(settings):
    settings.DEBUG = False
    settings.ROOT_URLCONF = __name__


def in_layout(page: str) -> bool:
    return 'class="topbar"' in page and "css/design.css" in page


def test_a_reviewer_at_the_approve_page_gets_the_reason_in_the_layout(world: World):
    client = Client()
    client.force_login(member_of(world.acme, "rita", Role.REVIEWER))
    response = client.get(reverse("reviews:stage-approve-form", args=[world.acme_stage.stage_id]))
    assert response.status_code == 403
    page = response.content.decode()
    assert in_layout(page)
    assert 'aria-label="Main"' in page  # the signed-in navigation, not a bare page
    assert "This needs the approver role. Your role for @acme/ui is reviewer" in page
    assert "a team admin can change it" in page


def test_not_found_is_in_the_layout_and_names_the_address(world: World):
    client = Client()
    client.force_login(world.viewer)
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert in_layout(page)
    assert "<code>/no-such-page/</code>" in page


def test_server_error_shows_no_debug_details_and_names_the_request(world: World):
    client = Client(raise_request_exception=False)
    client.force_login(world.viewer)
    response = client.get("/crash/", HTTP_X_REQUEST_ID="req-12345678")
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong on our side" in page
    assert "css/design.css" in page
    assert "secret-detail-of-a-bug" not in page
    assert "Traceback" not in page
    assert "RuntimeError" not in page
    assert '<code class="request-id">req-12345678</code>' in page


def test_server_error_page_renders_with_the_database_down(monkeypatch):
    def refuse(self):
        raise OperationalError("the database is down")

    monkeypatch.setattr(BaseDatabaseWrapper, "ensure_connection", refuse)
    response = Client(raise_request_exception=False).get("/database-gone/")
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()


def test_the_500_handler_needs_no_database(rf):
    # No `db` fixture: pytest-django makes any query in this test raise.
    response = errors.server_error(rf.get("/"))
    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()


def test_bad_request_says_what_to_do(db):
    response = Client().get("/suspicious/")
    assert response.status_code == 400
    page = response.content.decode()
    assert in_layout(page)
    assert "could not be understood" in page
    assert "reload the page and try again" in page


def test_csrf_failure_without_a_cookie_says_to_allow_cookies(world: World):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.acme_admin)
    response = client.post(reverse("reviews:team-set-member", args=["acme"]), {})
    assert response.status_code == 403
    page = response.content.decode()
    assert in_layout(page)
    assert "This form was refused" in page
    assert "allow cookies for this site" in page


def test_csrf_failure_with_a_stale_token_says_to_reload(world: World):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.acme_admin)
    client.get(reverse("reviews:team", args=["acme"]))  # sets the CSRF cookie
    response = client.post(
        reverse("reviews:team-set-member", args=["acme"]), {"csrfmiddlewaretoken": "x" * 32}
    )
    assert response.status_code == 403
    page = response.content.decode()
    assert 'aria-label="Main"' in page  # rendered with the request: the person's navigation
    assert "reload the page" in page
    assert "allow cookies" not in page
