"""Content-Security-Policy: the header is on every page, error pages included, and no page
carries inline code the policy would block (so the policy can stay strict)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import path, reverse

from portal import urls as portal_urls
from reviews.notify.dispatch import unsubscribe_token
from tests.personas import World
from tests.review.support import reviewed
from tests.support.packages import build_tarball
from tests.teams.test_url_access import CASES

EXPECTED_POLICY = {
    "default-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}


def policy_of(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy", "")
    directives = [part.split() for part in header.split(";") if part.strip()]
    return {name: values for name, *values in directives}


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


class InlineCode(HTMLParser):
    """Collects what a strict policy blocks or what needs `'unsafe-eval'`: inline <script> and
    <style>, on* handlers, style attributes, javascript: URLs, htmx's eval-based attributes."""

    URL_ATTRIBUTES = ("href", "src", "action", "formaction", "hx-get", "hx-post")

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "script":
            self.in_script = True
            if not values.get("src"):
                self.found.append("<script> without src")
        if tag == "style":
            self.found.append("<style> block")
        for name, value in values.items():
            if name.startswith("on"):
                self.found.append(f"{name}= handler on <{tag}>")
            if name == "style":
                self.found.append(f"style= on <{tag}>")
            if name.startswith("hx-on") or (name in ("hx-vals", "hx-vars") and "js:" in value):
                self.found.append(f"{name}= (needs eval) on <{tag}>")
            cleaned = "".join(value.split()).lower()
            if name in self.URL_ATTRIBUTES and cleaned.startswith("javascript:"):
                self.found.append(f"javascript: URL in {name}= on <{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self.in_script = False

    def handle_data(self, data: str) -> None:
        if self.in_script and data.strip():
            self.found.append("inline script text")


def inline_code(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    return parser.found


def test_the_checker_finds_what_it_looks_for():
    page = (
        '<script>x()</script><script src="/s.js"></script><style>p{}</style>'
        '<a href=" JavaScript:x()" onclick="x()" style="color:red">a</a>'
        '<div hx-on:click="x()" hx-vals="js:{a: 1}"></div>'
    )
    assert inline_code(page) == [
        "<script> without src",
        "inline script text",
        "<style> block",
        "javascript: URL in href= on <a>",
        "onclick= handler on <a>",
        "style= on <a>",
        "hx-on:click= (needs eval) on <div>",
        "hx-vals= (needs eval) on <div>",
    ]


def assert_strict_and_clean(response) -> None:
    assert policy_of(response) == EXPECTED_POLICY
    if response.headers.get("Content-Type", "").startswith("text/html"):
        assert inline_code(response.content.decode()) == []


GET_PAGES = sorted(
    name for name, case in CASES.items() if case.method == "get" and name != "reviews:audit-export"
)


@pytest.mark.parametrize("name", GET_PAGES)
def test_every_page_has_the_policy_and_no_inline_code(name, world: World):
    """Every page of the URL walk (tests/teams/test_url_access.py), as its allowed persona."""
    case = CASES[name]
    response = login(getattr(world, case.allowed)).get(case.url(world))
    assert response.status_code == case.allowed_status
    assert_strict_and_clean(response)


def test_the_audit_export_and_tarball_have_the_policy_too(world: World):
    client = login(world.viewer)
    export = client.get(reverse("reviews:audit-export", args=["json"]))
    assert policy_of(export) == EXPECTED_POLICY
    tarball = client.get(CASES["reviews:stage-tarball"].url(world))
    assert tarball.status_code == 200
    assert policy_of(tarball) == EXPECTED_POLICY


def test_public_pages_and_admin_have_the_policy(world: World):
    assert_strict_and_clean(Client().get(reverse("login")))
    token = unsubscribe_token(world.viewer, [world.acme])
    unsubscribe = Client().get(reverse("reviews:notifications-unsubscribe", args=[token]))
    assert unsubscribe.status_code == 200
    assert_strict_and_clean(unsubscribe)
    world.staff.is_superuser = True
    world.staff.save()
    staff = login(world.staff)
    for url in (
        reverse("admin:index"),
        reverse("admin:reviews_team_changelist"),
        reverse("admin:reviews_team_change", args=[world.acme.pk]),
    ):
        response = staff.get(url)
        assert response.status_code == 200
        assert policy_of(response) == EXPECTED_POLICY
        assert inline_code(response.content.decode()) == [], url


def test_the_team_page_with_its_forms_and_warnings_is_clean(world: World):
    staff = login(world.staff)
    warning = staff.post(reverse("reviews:team-add-pattern", args=["pad"]), {"pattern": "*"})
    assert "Add it anyway" in warning.content.decode()
    assert_strict_and_clean(warning)
    invalid = staff.post(reverse("reviews:team-add-pattern", args=["pad"]), {"pattern": "<b>"})
    assert invalid.status_code == 400
    assert_strict_and_clean(invalid)


def test_hostile_file_names_and_contents_stay_inert(world: World):
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)" style="x">'
    stage = world.acme_stage
    reviewed(
        stage,
        build_tarball(stage.package_name, stage.version, {"a<style>.js": hostile, "b.js": hostile}),
        build_tarball(stage.package_name, "1.0.0", {"b.js": "fine\n"}),
    )
    client = login(world.viewer)
    pages = {
        reverse("reviews:stage", args=[stage.stage_id]): "a&lt;style&gt;.js",
        reverse("reviews:stage-file", args=[stage.stage_id, "b.js"]): "alert(",
        reverse("reviews:stage-file", args=[stage.stage_id, "a<style>.js"]): "alert(",
    }
    for url, shown_as_text in pages.items():
        response = client.get(url)
        assert response.status_code == 200
        assert shown_as_text in response.content.decode()
        assert_strict_and_clean(response)
    partial = client.get(
        reverse("reviews:stage-file", args=[stage.stage_id, "b.js"]), HTTP_HX_REQUEST="true"
    )
    assert_strict_and_clean(partial)


# --- error pages (DEBUG off: Django's debug pages are for development only) -------------------


def boom(request):
    raise RuntimeError("a bug")


urlpatterns = [*portal_urls.urlpatterns, path("boom/", boom)]


@pytest.fixture
def production_errors(settings):
    settings.DEBUG = False
    settings.ROOT_URLCONF = __name__


def test_not_found_page(world: World, production_errors):
    response = login(world.viewer).get("/no-such-page/")
    assert response.status_code == 404
    assert_strict_and_clean(response)


def test_server_error_page(world: World, production_errors):
    client = Client(raise_request_exception=False)
    client.force_login(world.viewer)
    response = client.get("/boom/")
    assert response.status_code == 500
    assert_strict_and_clean(response)


def test_forbidden_page_says_why(world: World, production_errors):
    response = login(world.acme_admin).post(
        reverse("reviews:team-add-pattern", args=["acme"]), {"pattern": "x"}
    )
    assert response.status_code == 403
    assert "Only staff can add or remove package patterns" in response.content.decode()
    assert_strict_and_clean(response)


def test_csrf_failure_page(world: World, production_errors):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.acme_admin)
    response = client.post(reverse("reviews:team-set-member", args=["acme"]), {})
    assert response.status_code == 403
    assert "This form was refused" in response.content.decode()
    assert_strict_and_clean(response)
