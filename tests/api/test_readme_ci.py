"""The README's "Use it from CI" loop, run as written (bash, curl, jq) against a live portal:
it passes the job on an approval and fails it on a rejection, a vanished stage or a published
tarball that is not the reviewed one; a decision made while it waits ends the wait."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from django.utils import timezone

from reviews.api import longpoll
from reviews.models import StagedVersion
from tests.api.conftest import token_for
from tests.personas import World

pytestmark = pytest.mark.django_db(transaction=True)

README = Path(__file__).resolve().parents[2] / "README.md"
State = StagedVersion.State


def ci_loop() -> str:
    section = README.read_text().split("### Use it from CI", 1)[1]
    found = re.search(r"```sh\n(.*?)```", section, re.S)
    assert found is not None
    return found.group(1)


def run_loop(live_server, world: World) -> subprocess.CompletedProcess[str]:
    stage = world.acme_stage
    return subprocess.run(
        ["bash", "-c", ci_loop(), "wait-for-greenroom.sh", stage.package_name, stage.version],
        env={
            "PATH": "/usr/bin:/bin",
            "GREENROOM_URL": live_server.url + "/",
            "GREENROOM_TOKEN": token_for(world.viewer),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def decide(world: World, **fields) -> None:
    StagedVersion.objects.filter(pk=world.acme_stage.pk).update(
        resolved_at=timezone.now(), **fields
    )


def test_an_approval_passes_the_job(live_server, world: World):
    decide(world, state=State.APPROVED, published_shasum_matches=True)
    done = run_loop(live_server, world)
    assert done.returncode == 0, done.stderr
    assert "@acme/ui@2.0.0 was approved and published" in done.stdout
    assert f"/stages/{world.acme_stage.stage_id}/" in done.stdout  # where to review it


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        (
            {"state": State.REJECTED, "decided_in_portal": True, "decision_reason": "typo"},
            "was not published (rejected) typo",
        ),
        ({"state": State.REJECTED}, "was not published (vanished)"),
        (
            {"state": State.APPROVED, "published_shasum_matches": False},
            "was published, but not as reviewed",
        ),
    ],
)
def test_anything_else_fails_the_job(live_server, world: World, fields, said):
    decide(world, **fields)
    done = run_loop(live_server, world)
    assert done.returncode == 1
    assert said in done.stderr


def test_a_decision_made_while_it_waits_ends_the_wait(live_server, world: World, monkeypatch):
    waited: list[float] = []

    def approve_during_the_wait(seconds: float) -> None:
        waited.append(seconds)
        decide(world, state=State.APPROVED, published_shasum_matches=True)

    monkeypatch.setattr(longpoll, "pause", approve_during_the_wait)

    done = run_loop(live_server, world)

    assert done.returncode == 0, done.stderr
    assert waited == [0.5]  # one look pending, the next approved
