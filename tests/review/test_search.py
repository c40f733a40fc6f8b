"""Search in the changed lines of a stage: hits as path:line links, escaping, bounds, access."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from reviews.models import StagedVersion
from reviews.review import search
from tests.personas import World
from tests.review.support import reviewed
from tests.support.packages import build_tarball

pytestmark = pytest.mark.django_db

OLD_INDEX = "".join(f"const value{n} = {n};\n" for n in range(1, 31))
NEW_INDEX = OLD_INDEX.replace("const value10 = 10;", "const value10 = fetchToken();").replace(
    "const value20 = 20;", "const value20 = fetchToken('<script>alert(1)</script>');"
)


@pytest.fixture
def stage(world: World) -> StagedVersion:
    old = build_tarball(
        "@acme/ui",
        "1.0.0",
        {"index.js": OLD_INDEX, "gone.js": "fetchToken();\n", "same.js": "fetchToken();\n"},
    )
    new = build_tarball(
        "@acme/ui",
        "2.0.0",
        {"index.js": NEW_INDEX, "same.js": "fetchToken();\n", "added.js": "// FETCHTOKEN\n"},
    )
    reviewed(world.acme_stage, new, old)
    return world.acme_stage


def search_url(stage: StagedVersion) -> str:
    return reverse("reviews:stage-search", args=[stage.stage_id])


def test_hits_are_changed_lines_with_path_line_links(viewer: Client, stage: StagedVersion):
    body = viewer.get(search_url(stage), {"q": "fetchtoken"}).content.decode()

    file_base = reverse("reviews:stage-file", args=[stage.stage_id, "index.js"])
    assert f'href="{file_base}#L10"' in body
    assert f'href="{file_base}#L20"' in body
    assert "<code>index.js:10</code>" in body
    assert "<code>added.js:1</code>" in body  # case does not matter
    assert "<code>gone.js:1</code>" in body  # a removed line, on the baseline side
    assert "same.js" not in body  # unchanged files and lines are not searched
    assert "4 changed lines" in body


def test_hostile_text_in_hits_is_escaped(viewer: Client, stage: StagedVersion):
    body = viewer.get(search_url(stage), {"q": "<script>"}).content.decode()

    assert "<script>alert" not in body
    assert "<mark>&lt;script&gt;</mark>alert(1)&lt;/script&gt;" in body


def test_htmx_gets_only_the_results(viewer: Client, stage: StagedVersion):
    response = viewer.get(search_url(stage), {"q": "value10"}, headers={"HX-Request": "true"})

    body = response.content.decode()
    assert body.lstrip().startswith("<div")  # after the template's comment
    assert "<h1>" not in body
    assert "index.js:10" in body
    assert "HX-Request" in response["Vary"]


def test_hits_are_bounded(viewer: Client, stage: StagedVersion, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(search, "MAX_HITS", 1)

    body = viewer.get(search_url(stage), {"q": "fetchtoken"}).content.decode()

    assert body.count('class="search-hit ') == 1
    assert "(incomplete: the first 1 shown;" in body


def test_the_stage_page_offers_the_search(viewer: Client, stage: StagedVersion):
    body = viewer.get(reverse("reviews:stage", args=[stage.stage_id])).content.decode()

    assert f'action="{search_url(stage)}"' in body
    assert 'id="diff-search-q"' in body


def test_someone_who_cannot_see_the_stage_gets_404(world: World, stage: StagedVersion):
    outsider = Client()
    outsider.force_login(world.outsider)

    response = outsider.get(search_url(stage), {"q": "fetchtoken"})

    assert response.status_code == 404
    assert b"fetchToken" not in response.content


def test_a_search_that_runs_out_of_time_says_so(
    viewer: Client, stage: StagedVersion, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(search, "MAX_SECONDS", -1.0)

    body = viewer.get(search_url(stage), {"q": "fetchtoken"}).content.decode()

    assert "No changed line" in body
    assert "(incomplete: 0 changed files searched" in body
