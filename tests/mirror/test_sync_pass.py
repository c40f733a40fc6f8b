"""One sync pass against a live dev registry: listing, new, refreshed and resolved stages."""

from __future__ import annotations

import logging
import uuid

import pytest
from django.contrib.auth.models import User

from reviews.mirror import throttle
from reviews.mirror.registry import RateLimited, RegistryClient, StagePage, sync_client
from reviews.mirror.sync import (
    PAGE_SIZE,
    READ_BACKOFF_CAP,
    backoff_delay,
    resolve_stage,
    sync_stages,
)
from reviews.models import NotificationEvent, StagedVersion, UnansweredDecision
from tests.mirror.live import Registry

pytestmark = pytest.mark.django_db

State = StagedVersion.State


def test_pages_through_more_than_one_page(registry: Registry) -> None:
    ids = {registry.stage(f"pkg-{n}") for n in range(PAGE_SIZE + 30)}

    summary = sync_stages()

    assert summary.complete
    assert (summary.listed, summary.new, summary.updated, summary.resolved) == (130, 130, 0, 0)
    assert {str(i) for i in StagedVersion.objects.values_list("stage_id", flat=True)} == ids
    assert registry.requests("GET", "/-/stage") == 2


def test_records_what_the_registry_says_about_a_new_stage(registry: Registry) -> None:
    stage_id = registry.stage("@acme/widget", "2.0.0-beta.1", tag="next")

    sync_stages()

    sv = StagedVersion.objects.get()
    with sync_client() as client:
        stage = client.get_stage(stage_id)
    assert str(sv.stage_id) == stage_id
    assert (sv.package_name, sv.version, sv.tag) == ("@acme/widget", "2.0.0-beta.1", "next")
    assert (sv.actor, sv.actor_type, sv.access) == ("alice", stage.actor_type, "public")
    assert sv.shasum == stage.shasum
    assert sv.staged_at == stage.created_at
    assert sv.state == State.PENDING
    assert sv.integrity == StagedVersion.Integrity.PENDING


def test_a_second_pass_creates_nothing_and_refreshes_last_seen(registry: Registry) -> None:
    registry.stage("left-pad")
    sync_stages()
    before = StagedVersion.objects.get()

    summary = sync_stages()

    after = StagedVersion.objects.get()
    assert (summary.new, summary.updated, summary.resolved) == (0, 0, 0)
    assert after.last_seen_at > before.last_seen_at
    assert after.first_seen_at == before.first_seen_at


def test_a_changed_stage_is_updated(registry: Registry) -> None:
    stage_id = registry.stage("left-pad")
    sync_stages()

    registry.tamper_stage(stage_id, tag="beta", actor_type="trusted automation")
    summary = sync_stages()

    sv = StagedVersion.objects.get()
    assert summary.updated == 1
    assert (sv.tag, sv.actor_type) == ("beta", "trusted automation")


def test_a_changed_shasum_sends_the_stage_back_to_verification(registry: Registry) -> None:
    stage_id = registry.stage("left-pad")
    sync_stages()
    StagedVersion.objects.update(
        integrity=StagedVersion.Integrity.VERIFIED, integrity_reason="checked"
    )

    registry.tamper_stage(stage_id, shasum="0" * 40)
    summary = sync_stages()

    sv = StagedVersion.objects.get()
    assert summary.updated == 1
    assert sv.shasum == "0" * 40
    assert sv.integrity == StagedVersion.Integrity.PENDING
    assert summary.to_download == [sv.id]


def test_approved_elsewhere_with_the_staged_shasum(registry: Registry) -> None:
    stage_id = registry.stage("left-pad", "1.1.0")
    sync_stages()

    registry.approve(stage_id)
    summary = sync_stages()

    sv = StagedVersion.objects.get()
    assert summary.resolved == 1
    assert sv.state == State.APPROVED
    assert sv.resolved_elsewhere
    assert sv.resolved_at is not None
    assert sv.published_shasum == sv.shasum
    assert sv.published_shasum_matches is True


def test_published_elsewhere_with_other_bytes_is_recorded_as_a_mismatch(
    registry: Registry,
) -> None:
    stage_id = registry.stage("left-pad", "1.1.0")
    sync_stages()

    # The stage goes away and the same version is published with different contents.
    registry.reject(stage_id)
    registry.publish("left-pad", "1.1.0", manifest={"description": "not what was reviewed"})
    sync_stages()

    sv = StagedVersion.objects.get()
    with sync_client() as client:
        published = client.get_packument("left-pad").dist("1.1.0")
    assert published is not None
    assert sv.state == State.APPROVED
    assert sv.published_shasum == published["shasum"]
    assert sv.published_shasum != sv.shasum
    assert sv.published_shasum_matches is False


def test_rejected_elsewhere(registry: Registry) -> None:
    kept = registry.stage("left-pad", "1.1.0")
    gone = registry.stage("left-pad", "1.2.0")
    sync_stages()

    registry.reject(gone)
    summary = sync_stages()

    assert summary.resolved == 1
    rejected = StagedVersion.objects.get(stage_id=gone)
    assert rejected.state == State.REJECTED
    assert rejected.resolved_elsewhere
    assert rejected.published_shasum == ""
    assert rejected.published_shasum_matches is None
    assert StagedVersion.objects.get(stage_id=kept).state == State.PENDING


def test_nothing_is_deleted_and_resolving_happens_once(registry: Registry) -> None:
    stage_id = registry.stage("left-pad")
    sync_stages()
    registry.reject(stage_id)
    sync_stages()
    resolved_at = StagedVersion.objects.get().resolved_at

    summary = sync_stages()

    assert summary.resolved == 0
    assert StagedVersion.objects.count() == 1
    assert StagedVersion.objects.get().resolved_at == resolved_at


def test_a_failed_listing_resolves_nothing(registry: Registry) -> None:
    first = registry.stage("pkg-a")
    for n in range(PAGE_SIZE):
        registry.stage(f"pkg-b{n}")
    sync_stages()
    registry.reject(first)

    # The second page (the oldest stages) keeps failing: the pass ends without it.
    registry.set_faults([{"method": "GET", "path": "^/-/stage$", "status": 500}])
    summary = sync_stages()

    assert not summary.complete
    assert "500" in summary.error
    assert summary.resolved == 0
    assert StagedVersion.objects.filter(state=State.PENDING).count() == PAGE_SIZE + 1


def test_a_listing_that_fails_part_way_keeps_its_first_pages(registry: Registry) -> None:
    for n in range(PAGE_SIZE + 5):
        registry.stage(f"pkg-{n}")
    registry.set_faults(
        [
            {"method": "GET", "path": "^/-/stage$", "times": 1},  # page 0 passes
            {"method": "GET", "path": "^/-/stage$", "status": 502},
        ]
    )

    summary = sync_stages()

    assert not summary.complete
    assert summary.new == PAGE_SIZE
    registry.clear_faults()
    assert sync_stages().new == 5


class _ShortPagesClient(RegistryClient):
    """A registry whose pages come short while its total says there is more."""

    def list_stages(
        self, page: int = 0, per_page: int = 100, package: str | None = None
    ) -> StagePage:
        real = super().list_stages(page, per_page, package)
        return StagePage(real.items[:1], real.page, real.per_page, total=real.total)


def test_a_registry_whose_total_disagrees_resolves_nothing(registry: Registry) -> None:
    registry.stage("pkg-a")
    registry.stage("pkg-b")
    sync_stages()
    assert StagedVersion.objects.count() == 2

    with _ShortPagesClient(registry.url, registry.sync_token) as client:
        summary = sync_stages(client)

    assert not summary.complete
    assert "1 of 2" in summary.error
    assert summary.resolved == 0
    assert set(StagedVersion.objects.values_list("state", flat=True)) == {State.PENDING}


class _RepeatingClient(RegistryClient):
    """A registry that ignores `page` and hands out the same full page forever."""

    def list_stages(
        self, page: int = 0, per_page: int = 100, package: str | None = None
    ) -> StagePage:
        return super().list_stages(0, per_page, package)


def test_a_registry_that_repeats_its_first_page_is_not_followed(registry: Registry) -> None:
    for n in range(PAGE_SIZE):
        registry.stage(f"pkg-{n}")

    with _RepeatingClient(registry.url, registry.sync_token) as client:
        summary = sync_stages(client)

    assert not summary.complete
    assert summary.new == PAGE_SIZE
    assert registry.requests("GET", "/-/stage") == 2


class _OneMissingClient(RegistryClient):
    """A listing that misses one stage, as when stages move between pages mid-listing."""

    def __init__(self, *args: object, missing: str, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.missing = uuid.UUID(missing)

    def list_stages(
        self, page: int = 0, per_page: int = 100, package: str | None = None
    ) -> StagePage:
        real = super().list_stages(page, per_page, package)
        items = [s for s in real.items if s.id != self.missing]
        return StagePage(items, real.page, real.per_page, total=len(items))


def test_a_stage_missing_from_the_listing_but_still_staged_stays_pending(
    registry: Registry,
) -> None:
    stage_id = registry.stage("left-pad")
    sync_stages()

    with _OneMissingClient(registry.url, registry.sync_token, missing=stage_id) as client:
        summary = sync_stages(client)

    assert summary.complete
    assert summary.resolved == 0
    assert StagedVersion.objects.get().state == State.PENDING


def test_a_stage_decided_here_during_a_pass_is_not_reopened(registry: Registry) -> None:
    registry.stage("left-pad")
    sync_stages()
    # The portal's own approve lands while a pass still holds an older listing.
    StagedVersion.objects.update(state=State.APPROVED, resolved_elsewhere=False)

    summary = sync_stages()

    sv = StagedVersion.objects.get()
    assert summary.updated == 0
    assert sv.state == State.APPROVED
    assert not sv.resolved_elsewhere


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"status": 500}, id="500"),
        pytest.param({"malformed": True}, id="malformed"),
        pytest.param({"delay": 1.5}, id="timeout"),
    ],
)
def test_a_transient_listing_failure_is_retried_within_the_pass(
    registry: Registry, fault: dict[str, object]
) -> None:
    registry.stage("left-pad")
    registry.set_faults([{"method": "GET", "path": "^/-/stage$", "times": 1, **fault}])

    summary = sync_stages()

    assert summary.complete
    assert summary.new == 1
    assert registry.requests("GET", "/-/stage") == 2


def test_a_rate_limited_listing_waits_as_asked(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(throttle, "sleep", waits.append)  # the waits' seam: nothing waits
    registry.stage("left-pad")
    registry.set_faults(
        [{"method": "GET", "path": "^/-/stage$", "times": 1, "status": 429, "retry_after": 2}]
    )

    summary = sync_stages()

    assert summary.complete
    assert waits == [2.0]  # what retry-after asked, more than the 0.5 s backoff
    assert registry.requests("GET", "/-/stage") == 2


def test_a_refused_listing_is_not_retried(registry: Registry) -> None:
    registry.set_faults([{"method": "GET", "path": "^/-/stage$", "status": 403}])

    summary = sync_stages()

    assert not summary.complete
    assert summary.error.startswith("403")
    assert registry.requests("GET", "/-/stage") == 1


def test_retry_waits_double_honour_retry_after_and_are_capped() -> None:
    assert [backoff_delay(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert backoff_delay(1, RateLimited("slow down", retry_after=4)) == 4
    assert backoff_delay(1, RateLimited("slow down", retry_after=3600)) == READ_BACKOFF_CAP
    assert backoff_delay(30) == READ_BACKOFF_CAP


def test_a_vanished_stage_the_registry_cannot_place_stays_pending_and_counts_as_failed(
    registry: Registry,
) -> None:
    stage_id = registry.stage("left-pad")
    sync_stages()
    registry.reject(stage_id)
    registry.set_faults([{"method": "GET", "path": "^/left-pad$", "status": 403}])

    summary = sync_stages()

    assert (summary.complete, summary.resolved, summary.failed) == (True, 0, 1)
    assert StagedVersion.objects.get().state == State.PENDING
    assert not NotificationEvent.objects.filter(kind=NotificationEvent.Kind.DECIDED).exists()


def test_vanished_stages_of_one_package_read_its_packument_once(registry: Registry) -> None:
    stages = [registry.stage("left-pad", f"1.{n}.0") for n in range(3)]
    sync_stages()
    for stage_id in stages:
        registry.reject(stage_id)

    summary = sync_stages()

    assert (summary.resolved, summary.failed) == (3, 0)
    assert registry.requests("GET", "/left-pad") == 1
    decided = NotificationEvent.objects.filter(kind=NotificationEvent.Kind.DECIDED)
    assert decided.count() == 3


def test_a_stage_waiting_on_an_unanswered_decision_is_left_to_the_decision_room(
    registry: Registry,
) -> None:
    stage_id = registry.stage("left-pad")
    sync_stages()
    registry.reject(stage_id)
    sv = StagedVersion.objects.get()
    user = User.objects.create_user("approver")
    UnansweredDecision.objects.create(stage=sv, user=user, decision="approve", sent_at=sv.staged_at)

    summary = sync_stages()

    assert summary.resolved == 0
    assert StagedVersion.objects.get().state == State.PENDING


def test_a_published_shasum_is_kept_lower_case_and_at_most_40_characters(
    registry: Registry,
) -> None:
    registry.stage("left-pad")
    sync_stages()
    sv = StagedVersion.objects.get()

    assert resolve_stage(sv, State.APPROVED, published_shasum="AB" * 30)

    sv.refresh_from_db()
    assert sv.published_shasum == "ab" * 20
    assert sv.published_shasum_matches is False
    assert not resolve_stage(sv, State.REJECTED)  # no longer pending: nothing changes


def test_every_vanished_stage_the_registry_cannot_place_is_counted(registry: Registry) -> None:
    stages = [registry.stage("left-pad"), registry.stage("right-pad")]
    sync_stages()
    for stage_id in stages:
        registry.reject(stage_id)
    registry.set_faults([{"method": "GET", "path": "^/(left|right)-pad$", "status": 403}])

    summary = sync_stages()

    assert (summary.resolved, summary.failed) == (0, 2)


def test_a_stage_of_a_package_that_never_got_published_is_rejected_when_it_vanishes(
    registry: Registry,
) -> None:
    stage_id = registry.stage("brand-new-package")
    sync_stages()
    registry.reject(stage_id)
    # The registry has no packument for it at all (404), not even a placeholder.
    registry.set_faults([{"method": "GET", "path": "^/brand-new-package$", "status": 404}])

    summary = sync_stages()
    resolved_reads = registry.requests("GET", f"/-/stage/{stage_id}")
    sync_stages()

    assert summary.resolved == 1
    assert StagedVersion.objects.get().state == State.REJECTED
    # Decided now: later passes leave it alone and ask the registry nothing about it.
    assert registry.requests("GET", f"/-/stage/{stage_id}") == resolved_reads


def test_the_log_names_each_stage_resolved_or_not(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    placed, unplaced = registry.stage("left-pad"), registry.stage("right-pad")
    sync_stages()
    registry.reject(placed)
    registry.reject(unplaced)
    registry.set_faults([{"method": "GET", "path": "^/right-pad$", "status": 403}])

    with caplog.at_level(logging.INFO, logger="reviews.mirror.sync"):
        sync_stages()

    lines = [record.getMessage() for record in caplog.records]
    assert "stage left-pad@1.0.0 was rejected elsewhere" in lines
    assert any(
        line.startswith("could not resolve vanished stage right-pad@1.0.0: ") and "403" in line
        for line in lines
    ), lines
