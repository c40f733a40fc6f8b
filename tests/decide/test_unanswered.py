"""An approve or reject the registry did not answer may have been applied (issue 11): the page
says Greenroom is checking, the claim is kept and no second decision can be sent, the request
looks at the stage and the packument for a few seconds, then the sync pass settles it.

The dev registry's fault injection delays the approve past the portal's (short) timeout; the
registry still applies it. The tests wait only for what the fault needs: until the registry
has applied it, never for a fixed time. They run against both registries' answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from reviews.audit.trail import Action
from reviews.models import AuditEvent, StagedVersion, UnansweredDecision
from reviews.tasks import sync_stages_task
from tests.decide.conftest import Registry, approve, both_modes, client_for, link, reject, url
from tests.personas import World

pytestmark = [pytest.mark.django_db, both_modes]

State = StagedVersion.State
CHECKING = "We did not hear back from the registry; it may have approved. Greenroom is checking…"
LATE = [{"method": "POST", "path": "/approve$", "delay": 1.0, "times": 1}]


@pytest.fixture
def short_waits(settings: Any) -> None:
    settings.GREENROOM_DECISION_TIMEOUT = 0.3
    settings.GREENROOM_DECISION_CHECK_INTERVAL = 0.05


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Bounded by count: the injected delay is one second, this gives it up to ten."""
    for _ in range(200):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"the registry never {what}")


def events(stage: StagedVersion) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(stage=stage).order_by("id"))


def test_a_late_201_is_found_by_the_request_itself(
    registry: Registry, world: World, short_waits: None, settings: Any
):
    settings.GREENROOM_DECISION_CHECK_SECONDS = 10  # ends as soon as the registry shows it
    stage = registry.stage()
    link(world.approver, registry.alice)
    registry.live.set_faults(LATE)
    client = client_for(world.approver)

    response = approve(client, stage, otp=registry.alice.code(), reason="ok")

    assert response.status_code == 303
    page = client.get(response["Location"]).content.decode()
    assert "was approved and published by the registry, as npm user alice" in page
    assert "its answer never came, but the registry now shows it" in page
    assert "Nothing was changed" not in page
    stage.refresh_from_db()
    assert (stage.state, stage.decided_by, stage.decided_in_portal) == (
        State.APPROVED,
        world.approver,
        True,
    )
    assert (stage.decided_npm_user, stage.decision_reason) == ("alice", "ok")
    assert stage.decision_claimed_at is None
    assert not UnansweredDecision.objects.exists()
    assert registry.traffic.approvals() == 1  # sent once, never again
    unknown, known = events(stage)[-2:]
    assert (unknown.action, unknown.registry_status, unknown.username) == (
        Action.DECISION_OUTCOME_UNKNOWN,
        None,
        "approver",
    )
    assert unknown.payload["why"] == "no answer"
    assert known.action == Action.DECISION_OUTCOME_KNOWN
    assert known.payload == {
        "decision": "approve",
        "outcome": "applied",
        "registry_shows": "published",
        "sent_by": "approver",
        "seen_by": "portal",
    }


def test_until_the_registry_shows_it_nothing_can_be_sent_again(
    registry: Registry,
    world: World,
    short_waits: None,
    settings: Any,
    eager: None,
    django_capture_on_commit_callbacks: Any,
):
    settings.GREENROOM_DECISION_CHECK_SECONDS = 0  # one look, then the sync pass's turn
    stage = registry.stage()
    link(world.approver, registry.alice)
    link(world.acme_admin, registry.bob)
    registry.live.set_faults(LATE)
    client = client_for(world.approver)

    response = approve(client, stage, otp=registry.alice.code())

    body = response.content.decode()
    assert response.status_code == 200
    assert CHECKING in body
    assert "Nothing was changed" not in body
    assert "try again" not in body
    assert 'id="decide-button"' not in body  # the approve button is replaced
    assert 'id="check-button"' in body
    stage.refresh_from_db()
    assert stage.state == State.PENDING
    assert stage.decision_claimed_at is not None  # the claim is kept
    assert UnansweredDecision.objects.get(stage=stage).decision == "approve"

    # Nobody can send another decision meanwhile: not this person, not another approver.
    again = approve(client, stage, otp=registry.alice.code()).content.decode()
    other = client_for(world.acme_admin)
    panel = other.get(url("stage-decision-panel", stage)).content.decode()
    rejected = reject(other, stage, confirm_version="1.0.0", reason="no", otp=registry.bob.code())
    assert CHECKING in again
    assert CHECKING in panel
    assert 'id="approve-link"' not in panel
    assert CHECKING in rejected.content.decode()
    assert registry.traffic.rejections() == 0
    refusal = events(stage)[-1]
    assert (refusal.action, refusal.payload["why"]) == (
        Action.DECISION_REFUSED,
        "an earlier decision's outcome is unknown",
    )

    wait_until(lambda: not registry.still_staged(stage), "applied the late approve")
    with django_capture_on_commit_callbacks(execute=True):
        sync_stages_task.delay()

    stage.refresh_from_db()
    assert (stage.state, stage.decided_by, stage.decided_in_portal) == (
        State.APPROVED,
        world.approver,
        True,
    )
    assert not stage.resolved_elsewhere
    assert stage.decision_claimed_at is None
    assert not UnansweredDecision.objects.exists()
    assert registry.traffic.approvals() == 1
    known = AuditEvent.objects.get(stage=stage, action=Action.DECISION_OUTCOME_KNOWN)
    assert known.username == ""  # the sync looked, for the approver
    assert (known.payload["outcome"], known.payload["seen_by"], known.payload["sent_by"]) == (
        "applied",
        "sync",
        "approver",
    )
    # The sync queued the published-digest check, as the request would have.
    assert stage.published_checked_at is not None
    assert stage.published_shasum_matches is True
    form = client.get(url("stage-approve-form", stage)).content.decode()
    assert "nothing left to decide" in form


def test_a_request_that_never_arrived_is_released_by_the_sync(
    registry: Registry, world: World, short_waits: None, settings: Any, eager: None
):
    settings.GREENROOM_DECISION_CHECK_SECONDS = 0
    stage = registry.stage()
    link(world.approver, registry.alice)
    # The registry waits, then fails without running the reject.
    registry.live.set_faults(
        [{"method": "DELETE", "path": "^/-/stage/", "delay": 1.0, "status": 503, "times": 1}]
    )
    client = client_for(world.approver)

    response = reject(
        client, stage, confirm_version="1.0.0", reason="no", otp=registry.alice.code()
    )

    body = response.content.decode()
    assert "We did not hear back from the registry; it may have rejected." in body
    assert 'id="decide-button"' not in body
    sync_stages_task.delay()  # still staged, but not for long enough to conclude anything
    assert UnansweredDecision.objects.filter(stage=stage).exists()

    settings.GREENROOM_DECISION_SETTLE_SECONDS = 0
    sync_stages_task.delay()

    stage.refresh_from_db()
    assert stage.state == State.PENDING
    assert stage.decision_claimed_at is None
    assert not UnansweredDecision.objects.exists()
    assert registry.still_staged(stage)
    known = events(stage)[-1]
    assert known.action == Action.DECISION_OUTCOME_KNOWN
    assert (known.payload["outcome"], known.payload["registry_shows"]) == (
        "not applied",
        "still staged",
    )
    form = client.get(url("stage-reject-form", stage)).content.decode()
    assert 'id="decide-button"' in form  # now, and only now, deciding is offered again


def test_check_now_looks_at_the_registry(
    registry: Registry, world: World, short_waits: None, settings: Any
):
    settings.GREENROOM_DECISION_CHECK_SECONDS = 0
    stage = registry.stage()
    link(world.approver, registry.alice)
    registry.live.set_faults(LATE)
    client = client_for(world.approver)
    approve(client, stage, otp=registry.alice.code())
    wait_until(lambda: not registry.still_staged(stage), "applied the late approve")

    response = client.post(url("stage-decision-check", stage))

    assert response.status_code == 303
    assert response["Location"] == url("stage", stage)
    page = client.get(response["Location"]).content.decode()
    assert "its answer never came, but the registry now shows it" in page
    stage.refresh_from_db()
    assert (stage.state, stage.decided_by) == (State.APPROVED, world.approver)
    known = events(stage)[-1]
    assert (known.action, known.username, known.payload["seen_by"]) == (
        Action.DECISION_OUTCOME_KNOWN,
        "approver",
        "portal",
    )


def test_a_decision_taken_the_other_way_elsewhere_is_said_so(
    registry: Registry, world: World, short_waits: None, settings: Any
):
    settings.GREENROOM_DECISION_CHECK_SECONDS = 0
    stage = registry.stage()
    link(world.approver, registry.alice)
    # The approve never runs; meanwhile the stage is rejected with another token.
    registry.live.set_faults(
        [{"method": "POST", "path": "/approve$", "delay": 1.0, "status": 503, "times": 1}]
    )
    client = client_for(world.approver)
    assert CHECKING in approve(client, stage, otp=registry.alice.code()).content.decode()
    registry.reject_elsewhere(stage)
    # Gone and not published could be a packument that lags behind an approval: not yet known.
    first_check = client.post(url("stage-decision-check", stage))
    assert first_check["Location"] == url("stage-approve-form", stage)
    # "Check now" says what it found, once, beside the standing "checking" notice.
    found = client.get(first_check["Location"]).content.decode()
    assert found.count("the registry does not show yet how it ended") == 1
    assert UnansweredDecision.objects.filter(stage=stage).exists()
    settings.GREENROOM_DECISION_SETTLE_SECONDS = 0

    response = client.post(url("stage-decision-check", stage))

    page = client.get(response["Location"]).content.decode()
    assert "now shows this stage rejected elsewhere, not approved by your request" in page
    stage.refresh_from_db()
    assert (stage.state, stage.resolved_elsewhere, stage.decided_in_portal) == (
        State.REJECTED,
        True,
        False,
    )
    assert stage.decision_claimed_at is None
    assert [e.action for e in events(stage)[-2:]] == [
        Action.REJECTED_ELSEWHERE,
        Action.DECISION_OUTCOME_KNOWN,
    ]
    assert events(stage)[-1].payload["outcome"] == "not applied"


def test_a_lost_connection_is_unanswered_too(
    registry: Registry, world: World, settings: Any, monkeypatch: pytest.MonkeyPatch
):
    settings.GREENROOM_DECISION_CHECK_SECONDS = 0
    stage = registry.stage()
    link(world.approver, registry.alice)
    real_request = requests.Session.request

    def drop(self: requests.Session, method: str, target: str, **kwargs: Any) -> Any:
        if target.endswith("/approve"):
            raise requests.ConnectionError("connection reset by peer")
        return real_request(self, method, target, **kwargs)

    monkeypatch.setattr(requests.Session, "request", drop)

    body = approve(client_for(world.approver), stage, otp=registry.alice.code()).content.decode()

    assert CHECKING in body
    assert UnansweredDecision.objects.filter(stage=stage).exists()
    assert events(stage)[-1].action == Action.DECISION_OUTCOME_UNKNOWN


def test_a_body_cut_off_after_201_is_still_an_approval(registry: Registry, world: World):
    stage = registry.stage()
    link(world.approver, registry.alice)
    registry.live.set_faults([{"method": "POST", "path": "/approve$", "truncate": True}])

    response = approve(client_for(world.approver), stage, otp=registry.alice.code())

    assert response.status_code == 303
    stage.refresh_from_db()
    assert (stage.state, stage.decided_in_portal) == (State.APPROVED, True)
    assert events(stage)[-1].action == Action.STAGE_APPROVED
