"""Batch approval against the dev registry over HTTP: a monorepo's 30 stages with dependencies
between them, approved with one code in dependency order; the code refused half-way and a fresh
one going on; a stage decided elsewhere meanwhile; a stage whose approve fails."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from reviews.audit.trail import Action
from reviews.decide import decisions, releases
from reviews.mirror import sync
from reviews.mirror.registry import RegistryClient
from reviews.models import (
    AuditEvent,
    Batch,
    BatchItem,
    Membership,
    NotificationEvent,
    Role,
    StagedVersion,
)
from tests.decide.conftest import APPROVE_PATH, Registry, client_for, link
from tests.personas import World, make_stage
from tests.support import packages

pytestmark = pytest.mark.django_db

COMMIT = "4f1c2d9e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e"
SIZE = 30


def name_of(index: int) -> str:
    # Dependants get names that sort *before* their dependencies: name order is not the answer.
    return f"@acme/m{SIZE - 1 - index:02d}"


def dependencies_of(index: int) -> dict[str, str]:
    """A tree (each on its parent), and a few second edges."""
    found = {}
    if index > 0:
        found[name_of((index - 1) // 2)] = "^1.0.0"
    if index >= 10 and index % 5 == 0:
        found[name_of(index - 7)] = "workspace:*"
    return found


def stage_with(registry: Registry, name: str, manifest: dict[str, Any]) -> StagedVersion:
    stage_id = packages.stage(registry.url, registry.ci_token, name, "1.0.0", manifest=manifest)
    registry.live.add_owner(name, "alice")
    with RegistryClient(registry.url, registry.sync_token, timeout=5) as client:
        recorded = sync.record_new_stage(client.get_stage(stage_id))
        assert recorded is not None
        sync.download_stage(recorded.pk, client)
    return StagedVersion.objects.get(pk=recorded.pk)


def stage_monorepo(registry: Registry) -> list[StagedVersion]:
    return [
        stage_with(
            registry,
            name_of(index),
            {"gitHead": COMMIT, "dependencies": dependencies_of(index)},
        )
        for index in range(SIZE)
    ]


def start_batch(client: Client, stages: list[StagedVersion]) -> Batch:
    answer = client.post(reverse("reviews:batch-start"), {"stage": [s.stage_id for s in stages]})
    assert answer.status_code == 303, answer
    return Batch.objects.get(pk=int(re.findall(r"\d+", answer["Location"])[-1]))


def approve(client: Client, batch: Batch, code: str) -> Any:
    return client.post(reverse("reviews:batch-approve", args=[batch.pk]), {"otp": code})


def states(batch: Batch) -> dict[str, str]:
    return {str(item.stage): item.state for item in batch.items.select_related("stage")}


def approved_order(registry: Registry, stages: list[StagedVersion]) -> list[str]:
    """Package names in the order the registry first got the portal's approvals (with a code;
    an approval elsewhere, as CI, has none)."""
    names = {str(stage.stage_id): stage.package_name for stage in stages}
    with registry.traffic.lock:
        paths = [p for m, p, factor in registry.traffic.seen if m == "POST" and factor]
    sent = [names[p.split("/")[3]] for p in paths if re.fullmatch(APPROVE_PATH, p)]
    return list(dict.fromkeys(sent))


def assert_dependencies_first(order: list[str]) -> None:
    seen: set[str] = set()
    for name in order:
        index = SIZE - 1 - int(name[-2:])
        assert set(dependencies_of(index)) <= seen, f"{name} went before a dependency"
        seen.add(name)


@pytest.fixture
def monorepo(registry: Registry, world: World) -> list[StagedVersion]:
    link(world.approver, registry.alice)
    return stage_monorepo(registry)


def test_thirty_stages_approved_with_one_code_in_dependency_order(
    registry: Registry, world: World, monorepo: list[StagedVersion]
):
    client = client_for(world.approver)
    batch = start_batch(client, monorepo)

    answer = approve(client, batch, registry.alice.code())

    assert answer.status_code == 303
    batch.refresh_from_db()
    assert batch.state == Batch.State.FINISHED
    assert set(states(batch).values()) == {BatchItem.State.DONE}
    order = approved_order(registry, monorepo)
    assert len(order) == SIZE
    assert_dependencies_first(order)
    assert order != sorted(order)  # dependency order, not name order
    for stage in monorepo:
        assert registry.packument(stage.package_name)["versions"]["1.0.0"]
    # One audit entry per stage, linked to the batch; one notification for the batch.
    approved = AuditEvent.objects.filter(action=Action.STAGE_APPROVED)
    assert approved.count() == SIZE
    assert {e.payload["batch"] for e in approved} == {batch.pk}
    assert not NotificationEvent.objects.filter(kind=NotificationEvent.Kind.DECIDED).exists()
    assert NotificationEvent.objects.filter(kind=NotificationEvent.Kind.BATCH_DECIDED).count() == 1


def test_a_refused_code_pauses_and_a_fresh_one_goes_on(
    registry: Registry, world: World, monorepo: list[StagedVersion]
):
    registry.live.set_otp_max_uses(SIZE // 2)
    client = client_for(world.approver)
    batch = start_batch(client, monorepo)

    approve(client, batch, registry.alice.code())

    batch.refresh_from_db()
    assert batch.state == Batch.State.NEEDS_CODE
    assert f"took this code for {SIZE // 2} stages, then stopped accepting it" in batch.message
    counts = list(states(batch).values())
    assert counts.count(BatchItem.State.DONE) == SIZE // 2
    assert counts.count(BatchItem.State.QUEUED) == SIZE - SIZE // 2
    # The stages not sent yet are not claimed while the batch waits: others may decide them.
    waiting = StagedVersion.objects.filter(state="pending", package_name__startswith="@acme/m")
    assert waiting.count() == SIZE - SIZE // 2
    assert not waiting.exclude(decision_claimed_at=None).exists()
    page = client.get(reverse("reviews:batch", args=[batch.pk])).content.decode()
    assert "Waiting for a code" in page
    assert "Go on with this code" in page

    # Meanwhile one of the stages left is approved elsewhere: skipped, not failed.
    left = [i.stage for i in batch.items.filter(state=BatchItem.State.QUEUED).order_by("position")]
    registry.approve_elsewhere(left[3])

    approve(client, batch, registry.alice.code(1))  # the next step's code

    batch.refresh_from_db()
    assert batch.state == Batch.State.FINISHED
    final = states(batch)
    assert final.pop(str(left[3])) == BatchItem.State.SKIPPED
    assert set(final.values()) == {BatchItem.State.DONE}
    assert_dependencies_first(approved_order(registry, monorepo))
    skipped = BatchItem.objects.get(batch=batch, stage=left[3])
    assert "already decided elsewhere" in skipped.message
    assert AuditEvent.objects.filter(action=Action.DECISION_WRONG_CODE).count() == 1


def test_a_failed_approve_holds_back_its_dependants_only(
    registry: Registry, world: World, monorepo: list[StagedVersion]
):
    broken = monorepo[2]  # @acme/m27: 5, 6, then their own dependants depend on it
    registry.live.set_faults([{"path": f"/-/stage/{broken.stage_id}/approve$", "status": 500}])
    client = client_for(world.approver)
    batch = start_batch(client, monorepo)

    approve(client, batch, registry.alice.code())

    batch.refresh_from_db()
    assert batch.state == Batch.State.FINISHED
    found = states(batch)
    held = {name for name, state in found.items() if state == BatchItem.State.HELD}
    expected = dependants_of(2)
    assert held == {f"{name_of(i)}@1.0.0" for i in expected}
    assert found[str(broken)] == BatchItem.State.FAILED
    failed = BatchItem.objects.get(batch=batch, stage=broken)
    assert "500" in failed.message
    assert "Injected fault" in failed.message
    done = [name for name, state in found.items() if state == BatchItem.State.DONE]
    assert len(done) == SIZE - 1 - len(expected)
    for index in expected:
        assert registry.still_staged(monorepo[index])
    holds = AuditEvent.objects.filter(action=Action.DECISION_REFUSED, payload__batch=batch.pk)
    assert holds.count() == len(expected)


def dependants_of(index: int) -> set[int]:
    found: set[int] = set()
    grew = True
    while grew:
        grew = False
        for other in range(SIZE):
            deps = {SIZE - 1 - int(n[-2:]) for n in dependencies_of(other)}
            if other not in found and deps & (found | {index}):
                found.add(other)
                grew = True
    return found


def test_stages_this_person_may_not_approve_are_left_out_with_the_reason(
    registry: Registry, world: World
):
    link(world.approver, registry.alice)
    mine = stage_with(registry, "@acme/ok", {})
    approved_already = make_stage("@acme/old", "1.0.0")
    StagedVersion.objects.filter(pk=approved_already.pk).update(state="approved")
    world.acme.required_approvals = 1
    world.acme.save()
    client = client_for(world.approver)

    batch = start_batch(client, [mine, approved_already])

    excluded = batch.items.filter(state=BatchItem.State.EXCLUDED)
    assert {i.stage.package_name for i in excluded} == {"@acme/ok", "@acme/old"}
    reasons = {i.stage.package_name: i.message for i in excluded}
    assert "1 more approving review" in reasons["@acme/ok"]
    assert "already approved" in reasons["@acme/old"]
    page = client.get(reverse("reviews:batch", args=[batch.pk])).content.decode()
    assert "Left out" in page
    assert "1 more approving review" in page


def test_a_batch_is_only_its_makers(registry: Registry, world: World):
    link(world.approver, registry.alice)
    stage = stage_with(registry, "@acme/ok", {})
    batch = start_batch(client_for(world.approver), [stage])
    other = client_for(world.acme_admin)

    assert other.get(reverse("reviews:batch", args=[batch.pk])).status_code == 404
    assert approve(other, batch, registry.alice.code()).status_code == 404
    assert registry.traffic.approvals() == 0


def test_only_visible_stages_go_into_a_batch(world: World):
    client = client_for(world.approver)
    answer = client.post(reverse("reviews:batch-start"), {"stage": [world.pad_stage.stage_id]})
    assert answer.status_code == 404
    assert not Batch.objects.exists()


def test_the_forms_need_the_csrf_token(registry: Registry, world: World):
    link(world.approver, registry.alice)
    stage = stage_with(registry, "@acme/ok", {})
    batch = start_batch(client_for(world.approver), [stage])
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(world.approver)

    for name in ("batch-approve", "batch-reject"):
        answer = strict.post(reverse(f"reviews:{name}", args=[batch.pk]), {"otp": "123456"})
        assert answer.status_code == 403
    answer = strict.post(reverse("reviews:batch-start"), {"stage": [stage.stage_id]})
    assert answer.status_code == 403
    assert registry.traffic.approvals() == 0


def test_reject_a_batch_by_typing_the_number_of_stages(registry: Registry, world: World):
    link(world.approver, registry.alice)
    stages = [stage_with(registry, f"@acme/r{i}", {}) for i in range(3)]
    client = client_for(world.approver)
    batch = start_batch(client, stages)
    url = reverse("reviews:batch-reject", args=[batch.pk])
    data = {"reason": "wrong release", "otp": registry.alice.code()}

    assert client.post(url, {**data, "confirm_count": "2"}).status_code == 400
    assert registry.traffic.rejections() == 0

    assert client.post(url, {**data, "confirm_count": "3"}).status_code == 303
    batch.refresh_from_db()
    assert batch.state == Batch.State.REJECTED
    assert registry.traffic.rejections() == 3
    assert not any(registry.still_staged(s) for s in stages)


def test_two_batches_cannot_send_the_same_stage_twice(registry: Registry, world: World):
    link(world.approver, registry.alice)
    stage = stage_with(registry, "@acme/ok", {})
    client = client_for(world.approver)
    first, second = start_batch(client, [stage]), start_batch(client, [stage])

    approve(client, first, registry.alice.code())
    approve(client, second, registry.alice.code())

    assert states(first) == {"@acme/ok@1.0.0": BatchItem.State.DONE}
    assert states(second) == {"@acme/ok@1.0.0": BatchItem.State.SKIPPED}
    assert registry.traffic.approvals() == 1


def test_dependency_order_breaks_a_cycle_by_name(world: World):
    a, b, c = (make_stage(f"@acme/{n}") for n in ("c", "a", "b"))
    facts = {
        "@acme/a": {"@acme/b": "^1.0.0"},
        "@acme/b": {"@acme/c": "^1.0.0"},
        "@acme/c": {"@acme/a": "1.0.0", "@acme/z": "^1.0.0"},
    }
    for stage in (a, b, c):
        stage.release_facts = {"gitHead": "", "dependencies": facts[stage.package_name]}

    order = releases.dependency_order([a, b, c])

    assert [s.package_name for s in order.stages] == ["@acme/a", "@acme/c", "@acme/b"]
    assert len(order.cycles) == 1
    assert "@acme/a@1.0.0 → @acme/b@1.0.0 → @acme/c@1.0.0 → @acme/a@1.0.0" in order.cycles[0]


def test_a_range_the_version_does_not_satisfy_is_no_dependency(world: World):
    lib, app = make_stage("@acme/lib", "2.0.0"), make_stage("@acme/app")
    app.release_facts = {"gitHead": "", "dependencies": {"@acme/lib": "^1.0.0"}}
    lib.release_facts = {"gitHead": "", "dependencies": {}}

    assert not releases.needs(app, lib)
    app.release_facts["dependencies"]["@acme/lib"] = "^2.0.0"
    assert releases.needs(app, lib)


def test_releases_group_by_commit_else_by_stager_within_the_window(world: World):
    now = timezone.now()

    def staged(name: str, actor: str, minutes_ago: int, head: str = "") -> StagedVersion:
        stage = make_stage(name)
        StagedVersion.objects.filter(pk=stage.pk).update(
            actor=actor,
            staged_at=now - timedelta(minutes=minutes_ago),
            release_facts={"gitHead": head, "dependencies": {}},
        )
        return StagedVersion.objects.get(pk=stage.pk)

    one = [staged(f"@acme/g{i}", f"dev{i}", 100 * i, head="abc") for i in range(3)]
    chain = [staged(f"@acme/s{i}", "ci", 200 + 10 * i) for i in range(3)]  # 10 min apart
    alone = staged("@acme/late", "ci", 300)  # 70 minutes after the chain: its own

    found = releases.releases([*one, *chain, alone], timedelta(minutes=15))

    assert sorted(sorted(s.package_name for s in r.stages) for r in found) == [
        ["@acme/g0", "@acme/g1", "@acme/g2"],
        ["@acme/s0", "@acme/s1", "@acme/s2"],
    ]
    assert {r.label for r in found} == {"commit abc", "staged by ci"}


def test_the_dashboard_shows_a_release_and_starts_a_batch_from_ticked_stages(
    registry: Registry, world: World
):
    link(world.approver, registry.alice)
    stages = [stage_with(registry, f"@acme/d{i}", {"gitHead": COMMIT}) for i in range(2)]
    client = client_for(world.approver)

    page = client.get(reverse("reviews:dashboard")).content.decode()

    assert "2 stages, commit 4f1c2d9e8b7a" in page
    assert 'form="batch-select"' in page
    assert "Review 2 stages as a batch" in page
    batch = start_batch(client, stages[:1])
    assert [i.stage for i in batch.items.all()] == stages[:1]


def test_a_running_batch_holds_its_stages_claims(
    registry: Registry, world: World, monkeypatch: pytest.MonkeyPatch
):
    """While a batch sends, its stages are claimed: a single approval of one of them is
    refused as busy, and sends nothing."""
    link(world.approver, registry.alice)
    first, second = (stage_with(registry, f"@acme/c{i}", {}) for i in range(2))
    client = client_for(world.approver)
    batch = start_batch(client, [first, second])
    seen: list[Any] = []
    real_decide = decisions.decide

    def decide_and_look(stage: StagedVersion, *args: Any, **kwargs: Any) -> Any:
        if stage == first:  # the batch runs; someone approves the second stage on its page
            seen.append(client.post(reverse("reviews:stage-approve", args=[second.stage_id])))
        return real_decide(stage, *args, **kwargs)

    monkeypatch.setattr(decisions, "decide", decide_and_look)
    approve(client, batch, registry.alice.code())

    assert "Someone is sending a decision about this stage right now" in seen[0].content.decode()
    assert states(batch) == {str(first): "done", str(second): "done"}
    assert registry.traffic.approvals() == 2


def test_someone_who_lost_the_approver_role_sends_nothing(registry: Registry, world: World):
    link(world.approver, registry.alice)
    stage = stage_with(registry, "@acme/ok", {})
    client = client_for(world.approver)
    batch = start_batch(client, [stage])
    Membership.objects.filter(user=world.approver).update(role=Role.VIEWER)

    approve(client, batch, registry.alice.code())

    item = batch.items.get()
    assert item.state == BatchItem.State.EXCLUDED
    assert "approver role" in item.message
    assert registry.traffic.approvals() == 0
    refusal = AuditEvent.objects.get(action=Action.DECISION_REFUSED, stage=stage)
    assert refusal.payload["batch"] == batch.pk


def test_a_viewer_gets_every_stage_left_out(registry: Registry, world: World):
    link(world.viewer, registry.alice)
    stage = stage_with(registry, "@acme/ok", {})
    client = client_for(world.viewer)
    batch = start_batch(client, [stage])

    approve(client, batch, registry.alice.code())

    assert batch.items.get().state == BatchItem.State.EXCLUDED
    assert "approver role" in batch.items.get().message
    assert registry.traffic.approvals() == 0


def test_a_second_request_does_not_run_a_batch_that_is_running(
    registry: Registry, world: World, monkeypatch: pytest.MonkeyPatch
):
    link(world.approver, registry.alice)
    first, second = (stage_with(registry, f"@acme/c{i}", {}) for i in range(2))
    client = client_for(world.approver)
    batch = start_batch(client, [first, second])
    seen: list[Any] = []
    real_decide = decisions.decide

    def decide_and_press_again(stage: StagedVersion, *args: Any, **kwargs: Any) -> Any:
        if stage == first:  # another tab presses "Approve" while this request sends
            seen.append(approve(client, batch, registry.alice.code()))
        return real_decide(stage, *args, **kwargs)

    monkeypatch.setattr(decisions, "decide", decide_and_press_again)
    approve(client, batch, registry.alice.code())

    page = client.get(seen[0]["Location"]).content.decode()
    assert "being sent by another request" in page
    assert states(batch) == {str(first): "done", str(second): "done"}
    assert registry.traffic.approvals() == 2


def test_a_wrong_code_sends_nothing_more_and_says_so(registry: Registry, world: World):
    link(world.approver, registry.alice)
    stages = [stage_with(registry, f"@acme/w{i}", {}) for i in range(3)]
    client = client_for(world.approver)
    batch = start_batch(client, stages)

    approve(client, batch, registry.alice.wrong_code())

    batch.refresh_from_db()
    assert batch.state == Batch.State.NEEDS_CODE
    assert "did not accept that code" in batch.message
    assert set(states(batch).values()) == {BatchItem.State.QUEUED}
    assert registry.traffic.approvals() == 1  # the first stage's, refused; then it stopped
