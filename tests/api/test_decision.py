"""The decision a release job waits for: at once when decided, else a look every half second
until it is or the wait ends. The waiting goes through one seam (`longpoll.pause`), so these
tests count looks instead of measuring time."""

from __future__ import annotations

import pytest

from reviews.api import longpoll
from reviews.models import StagedVersion
from tests.api.conftest import api_as, error_of
from tests.personas import World

pytestmark = pytest.mark.django_db

State = StagedVersion.State


@pytest.fixture
def pauses(monkeypatch) -> list[float]:
    """Every wait between two looks, instantly."""
    waited: list[float] = []
    monkeypatch.setattr(longpoll, "pause", waited.append)
    return waited


def decision(world: World, wait: int | None = None):
    query = {"wait": wait} if wait is not None else {}
    return api_as(world.viewer).get(f"/stages/{world.acme_stage.stage_id}/decision", query)


def test_without_wait_it_answers_at_once(world: World, pauses):
    response = decision(world)
    assert response.status_code == 200
    assert response.json()["state"] == "pending"
    assert pauses == []


def test_a_decided_stage_answers_at_once_whatever_the_wait(world: World, pauses):
    StagedVersion.objects.filter(pk=world.acme_stage.pk).update(
        state=State.REJECTED, decided_in_portal=True, decision_reason="broken build"
    )
    body = decision(world, wait=60).json()
    assert (body["state"], body["reason"]) == ("rejected", "broken build")
    assert pauses == []


def test_it_returns_at_the_first_look_after_the_decision(world: World, monkeypatch):
    looks: list[float] = []

    def pause(seconds: float) -> None:
        looks.append(seconds)
        if len(looks) == 3:  # decided elsewhere while the third wait runs
            StagedVersion.objects.filter(pk=world.acme_stage.pk).update(state=State.APPROVED)

    monkeypatch.setattr(longpoll, "pause", pause)

    body = decision(world, wait=60).json()

    assert body["state"] == "approved"
    assert len(looks) == 3
    assert all(seconds <= 0.5 for seconds in looks)


def test_a_stage_that_stays_pending_answers_pending_when_the_wait_ends(world: World, pauses):
    body = decision(world, wait=3).json()
    assert body["state"] == "pending"
    assert len(pauses) == 6  # one look every half second, bounded by the wait
    assert sum(pauses) <= 3


def test_a_vanished_stage(world: World, pauses):
    StagedVersion.objects.filter(pk=world.acme_stage.pk).update(state=State.REJECTED)
    body = decision(world, wait=5).json()
    assert body["state"] == "vanished"
    assert body["decided_in_portal"] is False
    assert body["digest"] is None


@pytest.mark.parametrize("wait", ["-1", "61", "soon"])
def test_a_wait_outside_0_to_60_is_422(world: World, wait, pauses):
    response = api_as(world.viewer).get(
        f"/stages/{world.acme_stage.stage_id}/decision", {"wait": wait}
    )
    assert response.status_code == 422
    assert error_of(response)["message"].startswith("query.wait: ")
    assert pauses == []


def test_a_misspelt_wait_is_an_error_not_no_wait(world: World, pauses):
    response = api_as(world.viewer).get(
        f"/stages/{world.acme_stage.stage_id}/decision", {"wiat": "30"}
    )
    assert response.status_code == 422
    assert error_of(response)["message"] == (
        "query.wiat: not a parameter of this endpoint (it takes: wait)"
    )
