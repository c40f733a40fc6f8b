"""The download throttle: a few tarball downloads at once, a pause between them (issue 14).

Time runs on a fake clock that moves only when the throttle sleeps, so nothing here waits.
"""

from __future__ import annotations

import uuid

import pytest
from django.conf import LazySettings

from reviews.mirror import sync, throttle
from reviews.mirror.registry import sync_client
from reviews.models import StagedVersion
from tests.mirror.live import Registry

pytestmark = pytest.mark.django_db


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(throttle, "clock", fake.clock)
    monkeypatch.setattr(throttle, "sleep", fake.sleep)
    # Each test its own slots: the cache may outlive a test (a file cache, or Redis in CI).
    prefix = f"greenroom:test-{uuid.uuid4().hex}:"
    monkeypatch.setattr(throttle, "SLOT_KEY", prefix + "slot:{}")
    monkeypatch.setattr(throttle, "LAST_START_KEY", prefix + "last")
    return fake


@pytest.fixture
def one_at_a_time(settings: LazySettings) -> None:
    settings.GREENROOM_DOWNLOAD_CONCURRENCY = 1
    settings.GREENROOM_DOWNLOAD_PAUSE = 0


def test_no_second_download_while_the_only_slot_is_held(fake_time: FakeTime, one_at_a_time):
    with (
        throttle.download_slot(),
        pytest.raises(throttle.NoDownloadSlot, match="1 download"),
        throttle.download_slot(max_wait=2),
    ):
        pytest.fail("a second download ran beside the first")
    assert sum(fake_time.sleeps) >= 2  # it waited the whole bound, polling


def test_a_slot_is_given_back_when_the_download_ends(fake_time: FakeTime, one_at_a_time):
    with throttle.download_slot():
        pass
    with throttle.download_slot(max_wait=0):
        pass
    assert fake_time.sleeps == []


def test_a_slot_is_given_back_when_the_download_fails(fake_time: FakeTime, one_at_a_time):
    with pytest.raises(RuntimeError), throttle.download_slot():
        raise RuntimeError("the registry hung up")
    with throttle.download_slot(max_wait=0):
        pass


def test_two_slots_let_two_downloads_run_together(
    fake_time: FakeTime, settings: LazySettings
) -> None:
    settings.GREENROOM_DOWNLOAD_CONCURRENCY = 2
    settings.GREENROOM_DOWNLOAD_PAUSE = 0
    with (
        throttle.download_slot(),
        throttle.download_slot(max_wait=0),
        pytest.raises(throttle.NoDownloadSlot),
        throttle.download_slot(max_wait=0),
    ):
        pass


def test_downloads_from_a_sync_pass_are_spaced_by_the_pause(
    registry: Registry, fake_time: FakeTime, settings: LazySettings
) -> None:
    settings.GREENROOM_DOWNLOAD_CONCURRENCY = 1
    settings.GREENROOM_DOWNLOAD_PAUSE = 0.5
    for n in range(3):
        registry.stage(f"gentle-{n}")
    with sync_client() as client:
        summary = sync.sync_stages(client)
        outcomes = sync.download_stages(summary.to_download, client)

    assert outcomes[StagedVersion.Integrity.VERIFIED] == 3
    assert fake_time.sleeps == [0.5, 0.5]  # before the second and the third download
    assert registry.tarball_requests() == 3


def test_a_download_with_no_free_slot_is_deferred_not_decided(
    registry: Registry, fake_time: FakeTime, one_at_a_time
) -> None:
    registry.stage("patient")
    with sync_client() as client:
        summary = sync.sync_stages(client)
        with throttle.download_slot():  # another worker holds the only slot
            outcomes = sync.download_stages(summary.to_download, client)

    assert outcomes[sync.DEFERRED] == 1
    stage = StagedVersion.objects.get(package_name="patient")
    assert stage.integrity == StagedVersion.Integrity.PENDING
    assert stage.download_claimed_at is None  # the claim is given back for the retry
    assert registry.tarball_requests() == 0
