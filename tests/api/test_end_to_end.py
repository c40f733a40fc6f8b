"""A release job's view, end to end: the real npm CLI stages a version at the dev registry, the
portal's sync records, downloads and analyses it, the API shows it; a long poll started before
an approval in the portal answers `approved` at its first look after the approval.

No clock is read: "within a second" is counted. Every wait between two looks goes through
`longpoll.pause` (recorded here, and really slept), and the approval's commit is marked by
wrapping `decisions.record_decision`: no wait begins after the commit but the one already
decided on, so the answer comes within one wait of at most half a second.
"""

from __future__ import annotations

import json
import threading
import time
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connections

from reviews.api import longpoll
from reviews.decide import decisions
from reviews.models import StagedVersion
from tests.api.conftest import api_as
from tests.decide.conftest import Registry, approve, client_for, link
from tests.personas import World
from tests.support.npm import run_npm

NAME = "@acme/rocket"


def stage_with_npm(root: Path, registry: Registry, npm_env: Any) -> None:
    root.mkdir()
    manifest = {"name": NAME, "version": "1.0.0", "main": "index.js"}
    (root / "package.json").write_text(json.dumps(manifest, indent=2))
    (root / "index.js").write_text("module.exports = 'lift off';\n")
    done = run_npm(["stage", "publish"], npm_env(registry.live, registry.ci_token), root)
    assert done.returncode == 0, done.stderr
    registry.live.add_owner(NAME, "alice")  # alice approves what CI staged


@pytest.mark.npm
@pytest.mark.django_db(transaction=True)
def test_stage_with_npm_sync_read_it_and_wait_for_the_approval(
    tmp_path, registry: Registry, world: World, npm_env, eager, monkeypatch
):
    stage_with_npm(tmp_path / "rocket", registry, npm_env)
    call_command("sync_stages", stdout=StringIO())

    # The release job knows its package and version, not the stage id.
    job = api_as(world.approver)
    listed = job.get(f"/packages/{NAME}/stages", {"version": "1.0.0"}).json()
    (item,) = listed["items"]
    assert (item["state"], item["tag"], item["integrity"]) == ("pending", "latest", "verified")
    document = job.get(f"/stages/{item['stage_id']}").json()
    assert document["actor"]["name"] == "ci"
    assert document["baseline"]["rule"] == "none"  # a first release: every file is added
    assert document["analysis"]["status"] == "done"
    assert document["analysis"]["archive_entries"] == []
    assert (document["counts"]["files"], document["counts"]["added"]) == (2, 2)
    assert document["tarball"]["sha1"] == document["shasum"]
    # A first release of two plain files: analysed, and the rules found nothing.
    assert (document["risk"], document["findings"], document["reviews"]) == ("none", [], [])

    waits: list[float] = []
    waits_after_commit: list[float] = []
    looked, committed = threading.Event(), threading.Event()

    def pause(seconds: float) -> None:
        waits.append(seconds)
        if committed.is_set():
            waits_after_commit.append(seconds)
        looked.set()
        time.sleep(seconds)

    def record_then_mark(*args: Any, **kwargs: Any) -> None:
        real_record_decision(*args, **kwargs)  # commits the approval
        committed.set()

    real_record_decision = decisions.record_decision
    monkeypatch.setattr(longpoll, "pause", pause)
    monkeypatch.setattr(decisions, "record_decision", record_then_mark)

    answers: dict[str, Any] = {}

    def wait_for_the_decision() -> None:
        try:
            waiting = api_as(world.viewer)
            answers["poll"] = waiting.get(f"/stages/{item['stage_id']}/decision", {"wait": 30})
        finally:
            connections.close_all()

    poll = threading.Thread(target=wait_for_the_decision)
    poll.start()
    assert looked.wait(timeout=10)  # the poll has seen it pending and waits

    stage = StagedVersion.objects.get(stage_id=item["stage_id"])
    link(world.approver, registry.alice)
    approved = approve(client_for(world.approver), stage, otp=registry.alice.code())
    assert approved.status_code == 303
    poll.join(timeout=30)

    assert not poll.is_alive()
    decision = answers["poll"].json()
    assert decision["state"] == "approved"
    assert (decision["decided_by"], decision["npm_user"]) == ("approver", "alice")
    assert decision["registry"]["status"] == 201
    assert waits
    assert max(waits) <= longpoll.POLL_INTERVAL <= 0.5
    assert len(waits_after_commit) <= 1  # answered at the first look after the approval

    # The published version's digest, checked after the approval (eager here), matches.
    again = job.get(f"/stages/{item['stage_id']}/decision").json()
    assert again["digest"]["status"] == "match"
    assert again["digest"]["published_shasum"] == document["shasum"]
