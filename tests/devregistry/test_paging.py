"""GET /-/stage paging: 0-based pages, perPage 10 by default and at most 100, newest first,
`total` equal to what the pages return, the `package` filter."""

from __future__ import annotations

import pytest

from tests.devregistry.conftest import People, StageApi
from tests.support import packages


@pytest.fixture
def thirteen(live_registry, people: People) -> list[str]:
    """13 stages (alpha 1.0.0 .. 1.12.0), oldest first."""
    return [
        packages.stage(live_registry.url, people.bob.token, "alpha", f"1.{i}.0") for i in range(13)
    ]


def collect(api: StageApi, who, **params) -> list[str]:
    ids: list[str] = []
    page = 0
    while True:
        doc = api.list(who, page=page, **params).json()
        ids += [item["id"] for item in doc["items"]]
        if len(ids) >= doc["total"] or not doc["items"]:
            return ids
        page += 1


def test_first_page_is_newest_first_with_the_defaults(people: People, api: StageApi, thirteen):
    doc = api.list(people.bob).json()

    assert doc["page"] == 0
    assert doc["perPage"] == 10
    assert doc["total"] == 13
    assert [item["id"] for item in doc["items"]] == thirteen[::-1][:10]


def test_second_page_holds_the_rest(people: People, api: StageApi, thirteen):
    doc = api.list(people.bob, page=1).json()

    assert doc["page"] == 1
    assert [item["id"] for item in doc["items"]] == thirteen[::-1][10:]


def test_pages_together_return_total_items_once_each(people: People, api: StageApi, thirteen):
    ids = collect(api, people.bob, perPage=4)

    assert ids == thirteen[::-1]


def test_a_page_past_the_end_is_empty_but_keeps_the_total(people: People, api, thirteen):
    doc = api.list(people.bob, page=5).json()

    assert doc["items"] == []
    assert doc["total"] == 13


def test_per_page_is_capped_at_100(live_registry, people: People, api: StageApi):
    for i in range(105):
        packages.stage(live_registry.url, people.bob.token, "bulk", f"0.0.{i}")

    first = api.list(people.bob, perPage=500).json()
    second = api.list(people.bob, perPage=500, page=1).json()

    assert first["perPage"] == 100
    assert len(first["items"]) == 100
    assert len(second["items"]) == 5
    assert first["total"] == second["total"] == 105


@pytest.mark.parametrize(
    ("params", "page", "per_page"),
    [({"perPage": "0"}, 0, 1), ({"page": "-3"}, 0, 10), ({"page": "x", "perPage": "y"}, 0, 10)],
)
def test_out_of_range_or_garbage_paging_falls_back(people, api, thirteen, params, page, per_page):
    doc = api.list(people.bob, **params).json()

    assert (doc["page"], doc["perPage"]) == (page, per_page)


def test_package_filter_takes_url_encoded_scoped_names(live_registry, people: People, api):
    url, token = live_registry.url, people.bob.token
    scoped = [packages.stage(url, token, "@demo/widgets", v) for v in ("1.0.0", "1.1.0")]
    packages.stage(url, token, "widgets", "1.0.0")
    packages.stage(url, token, "@demo/other", "1.0.0")

    # requests encodes "@demo/widgets" as %40demo%2Fwidgets.
    doc = api.list(people.bob, package="@demo/widgets").json()

    assert [item["id"] for item in doc["items"]] == scoped[::-1]
    assert doc["total"] == 2


def test_package_filter_for_an_unknown_name_is_empty(people: People, api: StageApi, thirteen):
    doc = api.list(people.bob, package="nothing-here").json()

    assert doc == {"items": [], "page": 0, "perPage": 10, "total": 0}
