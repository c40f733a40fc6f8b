"""Every API endpoint, for every persona: no token, an outsider, someone in no team, role too
low, right role, staff. A token acts with its owner's access, exactly as the pages do.

`test_every_api_url_has_an_access_case` walks the API's URLs, so an endpoint added later without
a case here fails the suite (tests/teams/test_url_access.py does the same for the pages).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from reviews.audit import trail as audit
from tests.api.conftest import API, api_as, error_of
from tests.personas import World

# Public on purpose: the OpenAPI document, its docs page, the index and the JSON 404.
PUBLIC = {"api:openapi-json", "api:openapi-view", "api:api-root", "api:not-found"}


@dataclass
class Case:
    path: Callable[[World], str]
    method: str = "get"
    body: dict[str, str] = field(default_factory=dict)
    # A detail (one stage, one package) is a 404 outside one's teams; a list just leaves it out.
    detail: bool = True
    too_low: str | None = None
    allowed: str = "viewer"
    allowed_status: int = 200


def stage_path(suffix: str = "") -> Callable[[World], str]:
    return lambda w: f"/stages/{w.acme_stage.stage_id}{suffix}"


CASES: dict[str, Case] = {
    "api:stages": Case(lambda w: "/stages", detail=False),
    "api:stage": Case(stage_path()),
    "api:stage-decision": Case(stage_path("/decision")),
    "api:package-stages": Case(lambda w: "/packages/@acme/ui/stages"),
    # The same access checks as the page (reviewer role or above).
    "api:stage-reviews": Case(
        stage_path("/reviews"),
        method="post",
        body={"verdict": "comment", "body": "Why does line 4 send the token out?"},
        too_low="viewer",
        allowed="approver",
        allowed_status=201,
    ),
    "api:audit": Case(lambda w: "/audit", detail=False),
}


def api_names() -> set[str]:
    (api,) = [
        entry
        for entry in get_resolver().url_patterns
        if isinstance(entry, URLResolver) and entry.namespace == "api"
    ]
    return {f"api:{entry.name}" for entry in api.url_patterns if isinstance(entry, URLPattern)}


def test_every_api_url_has_an_access_case():
    names = api_names() - PUBLIC
    assert names == set(CASES), f"API URLs without an access case: {names ^ set(CASES)}"


def send(world: World, persona: str | None, case: Case):
    user = getattr(world, persona) if persona else None
    return api_as(user).send(case.method, case.path(world), case.body)


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_token_is_401(name, world):
    response = send(world, None, CASES[name])
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_signed_in_browser_session_is_not_a_token(name, world):
    # The API takes tokens only: a session cookie sent along (by a page, a form on another
    # site) authenticates nothing, so there is no CSRF to fear.
    client = Client()
    client.force_login(world.staff)
    case = CASES[name]
    response = getattr(client, case.method)(
        API + case.path(world), case.body, content_type="application/json"
    )
    assert response.status_code == 401


@pytest.mark.parametrize("persona", ["outsider", "teamless"])
@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.detail))
def test_outside_ones_teams_a_stage_or_package_is_404(name, persona, world):
    response = send(world, persona, CASES[name])
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


@pytest.mark.parametrize("persona", ["outsider", "teamless"])
@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if not c.detail))
def test_a_list_shows_nothing_outside_ones_teams(name, persona, world):
    audit.record(audit.Action.STAGE_SEEN, stage=world.acme_stage)
    audit.record(audit.Action.STAGE_SEEN, stage=world.orphan_stage)
    response = send(world, persona, CASES[name])
    assert response.status_code == 200
    body = response.content.decode()
    assert "@acme/ui" not in body
    assert "nobody-owns-this" not in body


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.too_low))
def test_role_too_low_is_403(name, world):
    case = CASES[name]
    response = send(world, case.too_low, case)
    assert response.status_code == 403
    assert error_of(response) == {
        "code": "forbidden",
        "message": "This needs the reviewer role. Your role for @acme/ui is viewer: "
        "a team admin can change it.",
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_right_role_works(name, world):
    case = CASES[name]
    response = send(world, case.allowed, case)
    assert response.status_code == case.allowed_status


def test_the_viewer_sees_their_teams_stages_only(world: World):
    body = api_as(world.viewer).get("/stages").json()
    assert [item["package"] for item in body["items"]] == ["@acme/ui"]
    assert body["total"] == 1


def test_the_outsider_sees_their_own_team_only(world: World):
    body = api_as(world.outsider).get("/stages").json()
    assert [item["package"] for item in body["items"]] == ["left-pad"]


def test_staff_see_every_stage_even_unowned(world: World):
    body = api_as(world.staff).get("/stages").json()
    packages = {item["package"] for item in body["items"]}
    assert packages == {"@acme/ui", "left-pad", "nobody-owns-this"}
    orphan = api_as(world.staff).get(f"/stages/{world.orphan_stage.stage_id}")
    assert orphan.status_code == 200


def test_a_package_nobody_staged_is_404_outside_and_empty_inside(world: World):
    # The release job may ask before the sync has seen its stage: its own package answers an
    # empty list; any other package is a 404, staged or not, so nothing is revealed.
    inside = api_as(world.viewer).get("/packages/@acme/not-yet/stages")
    assert inside.status_code == 200
    assert inside.json()["items"] == []
    outside = api_as(world.viewer).get("/packages/left-pad-2/stages")
    assert outside.status_code == 404
    assert error_of(outside)["message"] == "No such package"


def test_the_docs_and_the_openapi_document_are_public(world: World):
    client = Client()
    assert client.get(f"{API}/openapi.json").status_code == 200
    assert client.get(f"{API}/docs").status_code == 200
