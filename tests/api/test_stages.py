"""Stages through the API: the list's filters and pages, a stage's document (integrity, baseline,
counts, archive entries, risk, findings, reviews, decision), its ETag, and a package's stages."""

from __future__ import annotations

import tarfile
from datetime import timedelta

import pytest
from django.utils import timezone

from reviews.audit import trail as audit
from reviews.models import StagedVersion
from tests.api.conftest import api_as, error_of
from tests.inspect.builders import Entry, make_tarball, package
from tests.personas import World, make_stage
from tests.review.support import reviewed
from tests.support.packages import build_tarball

pytestmark = pytest.mark.django_db

State = StagedVersion.State


def packages_of(response) -> list[str]:
    assert response.status_code == 200
    return [f"{item['package']}@{item['version']}" for item in response.json()["items"]]


@pytest.fixture
def acme(world: World) -> list[StagedVersion]:
    """Four more Acme stages, one in each state, staged a day apart (newest first)."""
    now = timezone.now()
    made = []
    for days, (version, state, in_portal) in enumerate(
        [
            ("3.0.0", State.PENDING, False),
            ("2.9.0", State.APPROVED, False),
            ("2.8.0", State.REJECTED, True),  # rejected in Greenroom
            ("2.7.0", State.REJECTED, False),  # vanished: gone, unpublished, not decided here
        ],
        start=1,
    ):
        stage = make_stage("@acme/kit", version)
        StagedVersion.objects.filter(pk=stage.pk).update(
            state=state, decided_in_portal=in_portal, staged_at=now - timedelta(days=days)
        )
        made.append(stage)
    StagedVersion.objects.filter(pk=world.acme_stage.pk).update(staged_at=now)
    return made


def test_the_list_is_newest_first_with_links(world: World, acme):
    response = api_as(world.viewer).get("/stages")
    assert packages_of(response) == [
        "@acme/ui@2.0.0",
        "@acme/kit@3.0.0",
        "@acme/kit@2.9.0",
        "@acme/kit@2.8.0",
        "@acme/kit@2.7.0",
    ]
    first = response.json()["items"][0]
    assert first["url"] == f"http://testserver/api/v1/stages/{world.acme_stage.stage_id}"
    assert first["page_url"] == f"http://testserver/stages/{world.acme_stage.stage_id}/"
    assert first["risk"] is None  # no risk rules have run
    assert first["integrity"] == "pending"


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("pending", ["@acme/ui@2.0.0", "@acme/kit@3.0.0"]),
        ("approved", ["@acme/kit@2.9.0"]),
        ("rejected", ["@acme/kit@2.8.0"]),
        ("vanished", ["@acme/kit@2.7.0"]),
    ],
)
def test_filter_by_state(world: World, acme, state, expected):
    response = api_as(world.viewer).get("/stages", {"state": state})
    assert packages_of(response) == expected
    assert {item["state"] for item in response.json()["items"]} == {state}


def test_filter_by_package_tag_and_since(world: World, acme):
    client = api_as(world.viewer)
    assert len(packages_of(client.get("/stages", {"package": "@acme/kit"}))) == 4
    assert packages_of(client.get("/stages", {"package": "@acme/ki"})) == []  # exact names
    StagedVersion.objects.filter(pk=acme[0].pk).update(tag="next")
    assert packages_of(client.get("/stages", {"tag": "next"})) == ["@acme/kit@3.0.0"]
    since = (timezone.now() - timedelta(days=2, hours=1)).isoformat()
    assert packages_of(client.get("/stages", {"since": since})) == [
        "@acme/ui@2.0.0",
        "@acme/kit@3.0.0",
        "@acme/kit@2.9.0",
    ]


def test_since_takes_any_offset_iso_8601_allows_and_either_end_of_the_calendar(world: World, acme):
    client = api_as(world.viewer)
    everything = packages_of(client.get("/stages"))
    # +18:06 is valid ISO 8601 but out of PostgreSQL's range: the API asks in UTC
    assert packages_of(client.get("/stages", {"since": "1140-05-15T12:10:21+18:06"})) == everything
    assert packages_of(client.get("/stages", {"since": "0001-01-01T00:00:00+05:00"})) == everything
    assert packages_of(client.get("/stages", {"since": "9999-12-31T23:59:00-05:00"})) == []


def test_filter_by_risk_finds_nothing_while_no_risk_is_known(world: World, acme):
    assert packages_of(api_as(world.viewer).get("/stages", {"risk": "low"})) == []


def test_pages(world: World, acme):
    client = api_as(world.viewer)
    first = client.get("/stages", {"per_page": 2}).json()
    assert (first["page"], first["per_page"], first["total"]) == (1, 2, 5)
    assert first["next"] == "http://testserver/api/v1/stages?per_page=2&page=2"
    last = client.get("/stages", {"per_page": 2, "page": 3}).json()
    assert [item["version"] for item in last["items"]] == ["2.7.0"]
    assert last["next"] is None
    beyond = client.get("/stages", {"per_page": 2, "page": 9}).json()
    assert beyond["items"] == []


@pytest.mark.parametrize(
    "query",
    [
        {"state": "lost"},
        {"per_page": "0"},
        {"per_page": "201"},
        {"page": "0"},
        {"since": "soon"},
        {"since": "0.5"},  # not read as a Unix timestamp
        {"stat": "pending"},  # a typo is not "every stage"
    ],
)
def test_bad_filters_are_422_with_the_parameter_named(world: World, query):
    response = api_as(world.viewer).get("/stages", query)
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_request"
    (name,) = query
    assert error["message"].startswith(f"query.{name}: ")
    assert error["details"][0]["location"] == f"query.{name}"


# -- One stage ------------------------------------------------------------------------------------


def test_a_stage_document_before_its_tarball_is_downloaded(world: World):
    response = api_as(world.viewer).get(f"/stages/{world.acme_stage.stage_id}")
    assert response.status_code == 200
    doc = response.json()
    assert doc["stage_id"] == str(world.acme_stage.stage_id)
    assert (doc["package"], doc["version"], doc["tag"]) == ("@acme/ui", "2.0.0", "latest")
    assert doc["state"] == "pending"
    assert doc["actor"] == {"name": "ci", "type": None}
    assert doc["integrity"] == "pending"
    assert doc["tarball"] is None
    assert doc["baseline"] is None
    assert doc["analysis"] is None
    assert doc["counts"] is None
    assert doc["risk"] is None
    assert doc["findings"] == []
    assert doc["reviews"] == []
    assert doc["decision"]["state"] == "pending"
    assert doc["decision"]["digest"] is None


def test_a_reviewed_stage_document(world: World):
    stage = world.acme_stage
    link = Entry("package/evil", type=tarfile.SYMTYPE, linkname="/etc/passwd")
    staged = make_tarball(
        [
            Entry("package/package.json", package("@acme/ui", "2.0.0")),
            Entry("package/index.js", b"one\nTWO\nthree\nfour\n"),
            link,
        ]
    )
    baseline = build_tarball("@acme/ui", "1.0.0", {"index.js": "one\ntwo\nthree\n"})
    found = reviewed(stage, staged, baseline)
    stage.refresh_from_db()

    doc = api_as(world.viewer).get(f"/stages/{stage.stage_id}").json()

    assert doc["integrity"] == "verified"
    assert stage.tarball is not None
    assert doc["tarball"]["sha256"] == stage.tarball.sha256
    assert doc["tarball"]["integrity"].startswith("sha512-")
    assert doc["baseline"] == {"version": "1.0.0", "rule": "below", "tag": None, "problem": None}
    assert doc["analysis"]["status"] == "done"
    assert doc["analysis"]["archive_entries"] == [
        {
            "side": "staged",
            "kind": "symlink",
            "path": "package/evil",
            "detail": "symbolic link to /etc/passwd; npm does not create links",
        }
    ]
    counts = doc["counts"]
    assert (counts["files"], counts["modified"], counts["added"]) == (2, 2, 0)  # and the link
    assert (counts["lines_added"], counts["lines_removed"]) == (
        found.lines_added,
        found.lines_removed,
    )
    assert counts["lines_added"] >= 2  # TWO and four, at least, besides package.json


def test_an_approved_stage_says_who_how_and_the_digest(world: World):
    stage = world.acme_stage
    now = timezone.now()
    StagedVersion.objects.filter(pk=stage.pk).update(
        state=State.APPROVED,
        decided_in_portal=True,
        decided_by=world.approver,
        decided_npm_user="alice",
        decided_at=now,
        decision_reason="looks good",
        published_shasum="0" * 40,
        published_shasum_matches=True,
        published_integrity="sha512-x",
        published_integrity_matches=True,
        published_checked_at=now,
    )
    audit.record(
        audit.Action.STAGE_APPROVED,
        stage=stage,
        registry_status=201,
        registry_message="approved",
    )

    decision = api_as(world.viewer).get(f"/stages/{stage.stage_id}").json()["decision"]

    assert decision["state"] == "approved"
    assert decision["decided_in_portal"] is True
    assert (decision["decided_by"], decision["npm_user"]) == ("approver", "alice")
    assert decision["reason"] == "looks good"
    assert decision["registry"] == {"status": 201, "message": "approved"}
    assert decision["digest"]["status"] == "match"


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({}, "pending"),  # approved in the portal, not checked yet
        ({"published_shasum_matches": True, "published_checked_at": True}, "match"),
        ({"published_shasum_matches": True}, "match"),  # approved elsewhere: the sync compared
        ({"published_shasum_matches": False}, "mismatch"),
        ({"published_shasum_matches": True, "published_integrity_matches": False}, "mismatch"),
        ({"published_checked_at": True}, "unavailable"),  # the check gave up
    ],
)
def test_the_digest_verdict(world: World, fields, status):
    if fields.get("published_checked_at"):
        fields["published_checked_at"] = timezone.now()
    StagedVersion.objects.filter(pk=world.acme_stage.pk).update(state=State.APPROVED, **fields)
    response = api_as(world.viewer).get(f"/stages/{world.acme_stage.stage_id}/decision")
    assert response.json()["digest"]["status"] == status


def test_an_unknown_stage_is_404_like_another_teams(world: World):
    unknown = api_as(world.viewer).get("/stages/00000000-0000-4000-8000-000000000000")
    other = api_as(world.viewer).get(f"/stages/{world.pad_stage.stage_id}")
    assert unknown.status_code == other.status_code == 404
    assert error_of(unknown) == error_of(other)


def test_a_malformed_stage_id_is_422(world: World):
    response = api_as(world.viewer).get("/stages/not-a-uuid")
    assert response.status_code == 422
    assert error_of(response)["message"].startswith("path.stage_id: ")


# -- ETag -----------------------------------------------------------------------------------------


def test_a_stage_document_has_an_etag_and_answers_304_while_unchanged(world: World):
    client = api_as(world.viewer)
    path = f"/stages/{world.acme_stage.stage_id}"
    first = client.get(path)
    etag = first["ETag"]
    assert etag.startswith('"')
    assert "Authorization" in first["Vary"]

    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag
    assert client.get(path, headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304

    StagedVersion.objects.filter(pk=world.acme_stage.pk).update(state=State.APPROVED)
    changed = client.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert changed.json()["state"] == "approved"


# -- A package's stages ---------------------------------------------------------------------------


def test_a_release_job_finds_its_stage_by_package_and_version(world: World, acme):
    client = api_as(world.viewer)
    every = client.get("/packages/@acme/kit/stages")
    assert packages_of(every) == [
        "@acme/kit@3.0.0",
        "@acme/kit@2.9.0",
        "@acme/kit@2.8.0",
        "@acme/kit@2.7.0",
    ]
    one = client.get("/packages/@acme/kit/stages", {"version": "2.9.0"}).json()
    assert [item["stage_id"] for item in one["items"]] == [str(acme[1].stage_id)]
    # A scoped name's slash may come encoded too.
    encoded = client.get("/packages/@acme%2Fkit/stages", {"version": "2.9.0"}).json()
    assert encoded["items"] == one["items"]
    assert client.get("/packages/@acme/kit/stages", {"version": "9.9.9"}).json()["items"] == []
