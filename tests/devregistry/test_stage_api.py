"""The six stage endpoints: shapes, status codes, the shared version index, approve and reject."""

from __future__ import annotations

import hashlib
import re
import uuid

import pytest
import requests

from devregistry import tarballs
from devregistry.testing import LiveRegistry
from tests.devregistry.conftest import People, StageApi
from tests.support import packages
from tests.support.packages import RegistryRefused

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
FIELDS = {
    "id",
    "packageName",
    "version",
    "tag",
    "createdAt",
    "actor",
    "actorType",
    "access",
    "shasum",
}


def packument(registry: LiveRegistry, name: str) -> requests.Response:
    return requests.get(f"{registry.url}{packages.escaped(name)}", timeout=10)


def test_stage_answers_201_with_a_uuid_stage_id(live_registry, people: People, api: StageApi):
    tarball = packages.build_tarball("fresh", "1.0.0")
    body = packages.publish_body("fresh", "1.0.0", tarball)

    answer = api.stage(people.bob, "fresh", body)

    assert answer.status_code == 201
    assert answer.json()["message"]
    assert uuid.UUID(answer.json()["stageId"]).version == 4


def test_view_has_exactly_the_spec_fields(live_registry, people: People, api: StageApi):
    tarball = packages.build_tarball("viewed", "1.2.3")
    stage_id = packages.stage(live_registry.url, people.bob.token, "viewed", "1.2.3", tarball)

    item = api.view(people.bob, stage_id).json()

    assert set(item) == FIELDS
    assert item["id"] == stage_id
    assert item["packageName"] == "viewed"
    assert item["version"] == "1.2.3"
    assert item["tag"] == "latest"
    assert ISO_MS.match(item["createdAt"])
    assert item["actor"] == "bob"
    assert item["actorType"] == "user"
    assert item["access"] == "public"
    assert item["shasum"] == hashlib.sha1(tarball, usedforsecurity=False).hexdigest()


def test_tarball_is_the_staged_bytes(live_registry, people: People, api: StageApi):
    tarball = packages.build_tarball("bytes", "1.0.0", {"index.js": "module.exports = 42\n"})
    stage_id = packages.stage(live_registry.url, people.bob.token, "bytes", "1.0.0", tarball)

    answer = api.tarball(people.bob, stage_id)

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.content == tarball


def test_automation_token_stages_as_trusted_automation(live_registry, people: People, api):
    bot = live_registry.token("bob", automation=True)
    stage_id = packages.stage(live_registry.url, bot, "botty", "1.0.0")

    assert api.view(people.bob, stage_id).json()["actorType"] == "trusted automation"


def test_restricted_access_is_reported_as_private(live_registry, people: People, api):
    tarball = packages.build_tarball("@team/secret", "1.0.0")
    body = packages.publish_body("@team/secret", "1.0.0", tarball, access="restricted")
    stage_id = api.stage(people.bob, "@team/secret", body).json()["stageId"]

    assert api.view(people.bob, stage_id).json()["access"] == "private"


@pytest.mark.parametrize("missing", ["name", "versions", "_attachments"])
def test_stage_without_a_required_field_is_400(people: People, api: StageApi, missing):
    body = packages.publish_body("partial", "1.0.0", packages.build_tarball("partial", "1.0.0"))
    del body[missing]

    answer = api.stage(people.bob, "partial", body)

    assert answer.status_code == 400
    assert missing in answer.json()["message"]


def test_stage_with_a_name_other_than_the_url_is_400(people: People, api: StageApi):
    body = packages.publish_body("other", "1.0.0", packages.build_tarball("other", "1.0.0"))

    assert api.stage(people.bob, "this-one", body, path_name="this-one").status_code == 400


def test_staging_a_new_name_publishes_the_placeholder(live_registry, people: People):
    packages.stage(live_registry.url, people.bob.token, "brand-new", "1.0.0")

    doc = packument(live_registry, "brand-new").json()

    assert list(doc["versions"]) == ["0.0.0-stage"]
    assert doc["dist-tags"] == {"latest": "0.0.0-stage"}
    assert [m["name"] for m in doc["maintainers"]] == ["bob"]
    placeholder = requests.get(doc["versions"]["0.0.0-stage"]["dist"]["tarball"], timeout=10)
    assert placeholder.status_code == 200


def test_staged_version_is_not_installable_before_approval(live_registry, people: People):
    packages.stage(live_registry.url, people.bob.token, "hidden", "1.0.0")
    url = live_registry.url

    assert "1.0.0" not in packument(live_registry, "hidden").json()["versions"]
    assert requests.get(f"{url}hidden/1.0.0", timeout=10).status_code == 404
    assert requests.get(f"{url}hidden/-/hidden-1.0.0.tgz", timeout=10).status_code == 404


def test_staging_a_staged_version_again_is_409(live_registry, people: People, api: StageApi):
    packages.stage(live_registry.url, people.bob.token, "twice", "1.0.0")
    body = packages.publish_body("twice", "1.0.0", packages.build_tarball("twice", "1.0.0"))

    assert api.stage(people.bob, "twice", body).status_code == 409


def test_staging_a_published_version_is_409(live_registry, people: People, api, shared_package):
    tarball = packages.build_tarball(shared_package, "1.0.0")
    body = packages.publish_body(shared_package, "1.0.0", tarball)

    assert api.stage(people.bob, shared_package, body).status_code == 409


def test_publishing_over_a_staged_version_is_409(live_registry, people: People, shared_package):
    packages.stage(live_registry.url, people.bob.token, shared_package, "1.1.0")

    with pytest.raises(RegistryRefused) as refused:
        packages.publish(live_registry.url, people.bob.token, shared_package, "1.1.0")

    assert refused.value.response.status_code == 409


def test_several_versions_can_be_staged_at_once(live_registry, people: People, api: StageApi):
    for version in ("1.0.0", "1.1.0", "2.0.0-beta.1"):
        packages.stage(live_registry.url, people.bob.token, "multi", version)

    items = api.list(people.bob, package="multi").json()["items"]

    assert [i["version"] for i in items] == ["2.0.0-beta.1", "1.1.0", "1.0.0"]


def test_approve_publishes_the_exact_bytes_and_moves_the_staged_tag(
    live_registry, people: People, api: StageApi, shared_package
):
    tarball = packages.build_tarball(shared_package, "2.0.0-rc.1", {"a.js": "1\n"})
    stage_id = packages.stage(
        live_registry.url, people.bob.token, shared_package, "2.0.0-rc.1", tarball, tag="next"
    )

    answer = api.approve(people.bob, stage_id)

    assert answer.status_code == 201
    assert answer.json()["message"]
    doc = packument(live_registry, shared_package).json()
    assert doc["dist-tags"] == {"latest": "1.0.0", "next": "2.0.0-rc.1"}
    dist = doc["versions"]["2.0.0-rc.1"]["dist"]
    assert dist["shasum"] == tarballs.shasum(tarball)
    assert dist["integrity"] == tarballs.integrity(tarball)
    assert requests.get(dist["tarball"], timeout=10).content == tarball
    assert "2.0.0-rc.1" in doc["time"]
    assert api.view(people.bob, stage_id).status_code == 404


def test_approve_moves_latest_backwards_when_staged_so(live_registry, people: People, api):
    url, token = live_registry.url, people.bob.token
    for version in ("1.4.0", "2.0.0"):
        packages.publish(url, token, "dates", version)
    stage_id = packages.stage(url, token, "dates", "1.4.1", tag="latest")

    assert api.approve(people.bob, stage_id).status_code == 201
    assert packument(live_registry, "dates").json()["dist-tags"]["latest"] == "1.4.1"


def test_reject_deletes_the_stage_and_its_tarball(live_registry, people: People, api: StageApi):
    stage_id = packages.stage(live_registry.url, people.bob.token, "doomed", "1.0.0")
    staged_file = live_registry.data_dir / "staged" / f"{stage_id}.tgz"
    assert staged_file.exists()

    answer = api.reject(people.bob, stage_id)

    assert answer.status_code == 204
    assert answer.content == b""
    assert not staged_file.exists()
    assert api.view(people.bob, stage_id).status_code == 404
    assert api.tarball(people.bob, stage_id).status_code == 404
    assert api.reject(people.bob, stage_id).status_code == 404
    assert api.list(people.bob).json()["total"] == 0
    # The version is free again.
    packages.stage(live_registry.url, people.bob.token, "doomed", "1.0.0")


def test_a_decided_stage_is_404_for_every_action(live_registry, people: People, api):
    stage_id = packages.stage(live_registry.url, people.bob.token, "decided", "1.0.0")
    api.approve(people.bob, stage_id)

    assert api.view(people.bob, stage_id).status_code == 404
    assert api.tarball(people.bob, stage_id).status_code == 404
    assert api.approve(people.bob, stage_id).status_code == 404
    assert api.reject(people.bob, stage_id).status_code == 404


@pytest.mark.parametrize(
    "stage_id", ["not-a-uuid", "1234", "1de6f3db2ed94d72b3dd8f0e2b474a2f", "%20"]
)
def test_malformed_stage_ids_are_404(people: People, api: StageApi, stage_id):
    for answer in (
        api.view(people.bob, stage_id),
        api.tarball(people.bob, stage_id),
        api.approve(people.bob, stage_id),
        api.reject(people.bob, stage_id),
    ):
        assert answer.status_code == 404
        assert "No staged package version" in answer.json()["message"]


def test_unknown_stage_ids_are_404(people: People, api: StageApi):
    stage_id = str(uuid.uuid4())

    assert api.view(people.bob, stage_id).status_code == 404
    assert api.approve(people.bob, stage_id).status_code == 404


@pytest.mark.parametrize("token", [None, "npm_not-a-real-token"])
def test_stage_routes_without_a_valid_token_are_401_without_an_otp_challenge(
    live_registry, people: People, api: StageApi, token
):
    stage_id = packages.stage(live_registry.url, people.bob.token, "guarded", "1.0.0")
    tarball = packages.build_tarball("guarded", "1.1.0")
    stranger = None if token is None else type(people.bob)("nobody", token)

    answers = [
        api.list(stranger),
        api.stage(stranger, "guarded", packages.publish_body("guarded", "1.1.0", tarball)),
        api.view(stranger, stage_id),
        api.tarball(stranger, stage_id),
        api.approve(stranger, stage_id),
        api.reject(stranger, stage_id),
    ]

    for answer in answers:
        assert answer.status_code == 401
        assert answer.json() == {"message": "Unauthorized"}
        assert "www-authenticate" not in answer.headers
    assert api.view(people.bob, stage_id).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "-/stage/package/foo%20bar"),
        ("GET", "-/stage/not-a-uuid/tarball"),
    ],
)
def test_a_stage_path_no_route_matches_answers_in_the_stage_shape(
    live_registry, people: People, method: str, path: str
):
    answer = requests.request(
        method,
        live_registry.url + path,
        headers={"Authorization": f"Bearer {people.bob.token}"},
        timeout=10,
    )
    assert answer.status_code == 404
    assert set(answer.json()) == {"message"}
