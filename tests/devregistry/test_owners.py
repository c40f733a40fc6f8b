"""Who may see and decide what: maintainers, outsiders, read-only tokens."""

from __future__ import annotations

import pytest

from tests.devregistry.conftest import People, Person, StageApi
from tests.support import packages
from tests.support.packages import RegistryRefused


@pytest.fixture
def staged(live_registry, people: People, shared_package: str) -> str:
    return packages.stage(live_registry.url, people.bob.token, shared_package, "1.1.0")


def test_the_list_shows_only_packages_the_user_maintains(live_registry, people, api, staged):
    packages.stage(live_registry.url, people.carol.token, "carols-own", "1.0.0")

    bobs = [i["packageName"] for i in api.list(people.bob).json()["items"]]
    carols = api.list(people.carol).json()

    assert bobs == ["shared-pkg"]
    assert [i["packageName"] for i in carols["items"]] == ["carols-own"]
    assert carols["total"] == 1


def test_an_outsider_gets_404_for_view_and_tarball(people: People, api: StageApi, staged):
    for answer in (api.view(people.carol, staged), api.tarball(people.carol, staged)):
        assert answer.status_code == 404


def test_an_outsider_gets_403_for_approve_and_reject(people: People, api: StageApi, staged):
    assert api.approve(people.carol, staged).status_code == 403
    assert api.reject(people.carol, staged).status_code == 403
    assert api.view(people.bob, staged).status_code == 200


def test_an_outsider_cannot_stage_an_existing_package(people: People, api, shared_package):
    tarball = packages.build_tarball(shared_package, "9.0.0")
    body = packages.publish_body(shared_package, "9.0.0", tarball)

    answer = api.stage(people.carol, shared_package, body)

    assert answer.status_code == 403
    assert answer.json()["message"]


def test_an_outsider_cannot_publish_an_existing_package(live_registry, people, shared_package):
    with pytest.raises(RegistryRefused) as refused:
        packages.publish(live_registry.url, people.carol.token, shared_package, "9.0.0")

    assert refused.value.response.status_code == 403


def test_a_new_owner_sees_and_decides(live_registry, people: People, api: StageApi, staged):
    live_registry.add_owner("shared-pkg", "carol")

    assert api.list(people.carol).json()["total"] == 1
    assert api.view(people.carol, staged).status_code == 200
    assert api.reject(people.carol, staged).status_code == 204


@pytest.fixture
def reader(live_registry) -> Person:
    return Person("bob", live_registry.token("bob", read_only=True))


def test_a_read_only_token_lists_views_and_downloads(people, api: StageApi, staged, reader):
    assert api.list(reader).json()["total"] == 1
    assert api.view(reader, staged).status_code == 200
    assert api.tarball(reader, staged).status_code == 200


def test_a_read_only_token_cannot_write(live_registry, people, api: StageApi, staged, reader):
    body = packages.publish_body(
        "shared-pkg", "3.0.0", packages.build_tarball("shared-pkg", "3.0.0")
    )

    assert api.stage(reader, "shared-pkg", body).status_code == 403
    assert api.approve(reader, staged).status_code == 403
    assert api.reject(reader, staged).status_code == 403
    with pytest.raises(RegistryRefused) as refused:
        packages.publish(live_registry.url, reader.token, "read-only-new", "1.0.0")
    assert refused.value.response.status_code == 403
    assert api.view(people.bob, staged).status_code == 200
