"""The audit trail through the API: the page's filters and visibility, JSON pages, and NDJSON
that streams every matching entry."""

from __future__ import annotations

import json

import pytest

from reviews.audit import trail as audit
from reviews.audit.trail import Action, Actor
from tests.api.conftest import api_as
from tests.personas import World

pytestmark = pytest.mark.django_db


@pytest.fixture
def trail(world: World) -> None:
    audit.record(Action.STAGE_SEEN, stage=world.acme_stage)
    audit.record(Action.STAGE_SEEN, stage=world.pad_stage)
    audit.record(Action.STAGE_SEEN, stage=world.orphan_stage)
    audit.record(
        Action.DECISION_REFUSED, Actor(user=world.approver), stage=world.acme_stage,
        payload={"why": "no linked npm token"},
    )  # fmt: skip
    audit.record(Action.PATTERN_ADDED, target="team:acme", payload={"pattern": "@acme/*"})


def actions(response) -> list[str]:
    assert response.status_code == 200
    return [entry["action"] for entry in response.json()["items"]]


def test_a_member_reads_their_teams_entries_newest_first(world: World, trail):
    response = api_as(world.viewer).get("/audit")
    assert actions(response) == ["team.pattern_added", "decision.refused", "stage.seen"]
    entry = response.json()["items"][1]
    assert entry["package_name"] == "@acme/ui"
    assert entry["username"] == "approver"
    assert entry["payload"] == {"why": "no linked npm token"}
    assert len(entry["hash"]) == 64


def test_the_pages_filters(world: World, trail):
    client = api_as(world.staff)
    assert actions(client.get("/audit", {"package": "left-pad"})) == ["stage.seen"]
    assert actions(client.get("/audit", {"person": "approver"})) == ["decision.refused"]
    assert actions(client.get("/audit", {"action": "stage.seen"})) == ["stage.seen"] * 3
    stage = str(world.acme_stage.stage_id)
    assert len(actions(client.get("/audit", {"stage": stage}))) == 2
    assert actions(client.get("/audit", {"until": "2000-01-01"})) == []
    assert len(actions(client.get("/audit", {"since": "2000-01-01"}))) == 6  # and the token's


def test_ndjson_streams_every_matching_entry(world: World, trail):
    for query, headers in [
        ({"format": "ndjson"}, {}),
        ({}, {"Accept": "application/x-ndjson"}),
    ]:
        response = api_as(world.viewer).get("/audit", {**query, "per_page": 1}, headers)
        assert response.status_code == 200
        assert response["Content-Type"] == "application/x-ndjson"
        assert response.streaming
        lines = b"".join(response.streaming_content).decode().splitlines()
        entries = [json.loads(line) for line in lines]
        # Every entry, not a page of them, and no other team's.
        assert [e["action"] for e in entries] == [
            "team.pattern_added",
            "decision.refused",
            "stage.seen",
        ]
        assert "left-pad" not in "".join(lines)


def test_someone_in_no_team_reads_nothing(world: World, trail):
    assert actions(api_as(world.teamless).get("/audit")) == []
    response = api_as(world.teamless).get("/audit", {"format": "ndjson"})
    assert b"".join(response.streaming_content) == b""
