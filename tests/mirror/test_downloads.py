"""Downloading, verifying and storing stage tarballs, against a live dev registry."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core.files.storage import storages
from django.utils import timezone

from devregistry.tarballs import shasum
from reviews.mirror import leases, sync
from reviews.mirror.registry import RegistryError, is_transient, sync_client
from reviews.mirror.tarballs import storage_name
from reviews.models import StagedVersion, Tarball
from tests.mirror.live import Registry
from tests.support.packages import build_tarball

pytestmark = pytest.mark.django_db

Integrity = StagedVersion.Integrity


def pass_and_download() -> sync.SyncSummary:
    """A pass, then its downloads, the way the management command runs them."""
    summary = sync.sync_stages()
    with sync_client() as client:
        sync.download_stages(summary.to_download, client)
    return summary


def only(stage_id: str) -> StagedVersion:
    return StagedVersion.objects.select_related("tarball").get(stage_id=stage_id)


def tarball_path(stage_id: str) -> str:
    return rf"/-/stage/{stage_id}/tarball"


def stored_files() -> list[str]:
    storage = storages["tarballs"]
    return [
        f"sha256/{folder}/{name}"
        for folder in storage.listdir("sha256")[0]
        for name in storage.listdir(f"sha256/{folder}")[1]
    ]


def test_a_new_stage_is_downloaded_verified_and_stored(registry: Registry) -> None:
    data = build_tarball("@acme/widget", "1.0.0", {"index.js": "module.exports = 1\n"})
    stage_id = registry.stage("@acme/widget", tarball=data)

    pass_and_download()

    sv = only(stage_id)
    assert sv.integrity == Integrity.VERIFIED
    assert sv.shasum in sv.integrity_reason
    assert sv.tarball is not None
    assert sv.tarball.sha1 == shasum(data) == sv.shasum
    assert sv.tarball.sha256 == hashlib.sha256(data).hexdigest()
    assert sv.tarball.size == len(data)
    assert sv.tarball.integrity.startswith("sha512-")
    assert sv.tarball.storage_name == storage_name(sv.tarball.sha256)
    assert sv.tarball.storage_name.startswith(f"sha256/{sv.tarball.sha256[:2]}/")
    with storages["tarballs"].open(sv.tarball.storage_name) as stored:
        assert stored.read() == data
    assert sv.download_claimed_at is None
    assert sv.download_attempts == 1


def test_each_tarball_is_downloaded_once(registry: Registry) -> None:
    ids = [registry.stage(f"pkg-{n}") for n in range(3)]

    pass_and_download()
    second = pass_and_download()

    assert second.to_download == []
    assert registry.tarball_requests() == 3
    assert {only(i).integrity for i in ids} == {Integrity.VERIFIED}


def test_a_registry_lying_about_the_shasum_is_a_mismatch(registry: Registry) -> None:
    stage_id = registry.stage("left-pad")
    registry.tamper_stage(stage_id, shasum="f" * 40)

    pass_and_download()

    sv = only(stage_id)
    assert sv.integrity == Integrity.MISMATCH
    assert "f" * 40 in sv.integrity_reason
    assert sv.tarball is not None, "the evidence is kept"
    assert sv.tarball.sha1 != sv.shasum


def test_a_tarball_swapped_in_storage_is_a_mismatch(registry: Registry) -> None:
    stage_id = registry.stage("left-pad", "1.0.0")
    # Someone replaces the staged bytes with another package, and the shasum to match them.
    evil = build_tarball("left-pad", "6.6.6", {"index.js": "steal()"})
    registry.replace_staged_tarball(stage_id, evil)
    registry.tamper_stage(stage_id, shasum=shasum(evil))

    pass_and_download()

    sv = only(stage_id)
    assert sv.integrity == Integrity.MISMATCH
    assert sv.integrity_reason == (
        "package.json has version '6.6.6', the stage '1.0.0' "
        "(downloaded twice, the same bytes both times)"
    )


def test_a_tarball_naming_another_package_is_a_mismatch(registry: Registry) -> None:
    stage_id = registry.stage("left-pad", "1.0.0")
    evil = build_tarball("right-pad", "1.0.0")
    registry.replace_staged_tarball(stage_id, evil)
    registry.tamper_stage(stage_id, shasum=shasum(evil))

    pass_and_download()

    sv = only(stage_id)
    assert sv.integrity == Integrity.MISMATCH
    assert "'right-pad'" in sv.integrity_reason


def test_a_stage_that_is_not_a_tarball_is_a_mismatch(registry: Registry) -> None:
    stage_id = registry.stage("left-pad")
    junk = b"<html>not a tarball</html>"
    registry.replace_staged_tarball(stage_id, junk)
    registry.tamper_stage(stage_id, shasum=shasum(junk))

    pass_and_download()

    sv = only(stage_id)
    assert sv.integrity == Integrity.MISMATCH
    assert "unreadable" in sv.integrity_reason


@pytest.mark.parametrize("status", [401, 403, 404])
def test_a_refused_tarball_is_recorded_and_the_pass_goes_on(
    registry: Registry, status: int
) -> None:
    refused = registry.stage("pkg-refused")
    fine = registry.stage("pkg-fine")
    registry.set_faults([{"method": "GET", "path": tarball_path(refused), "status": status}])

    summary = pass_and_download()

    assert summary.new == 2
    sv = only(refused)
    assert sv.integrity == Integrity.UNAVAILABLE
    assert str(status) in sv.integrity_reason
    assert sv.tarball is None
    assert only(fine).integrity == Integrity.VERIFIED
    # Permanent: the next pass does not ask again.
    assert pass_and_download().to_download == []
    assert registry.requests("GET", tarball_path(refused)) == 1


def test_a_stage_decided_before_its_download_is_unavailable(registry: Registry) -> None:
    stage_id = registry.stage("left-pad")
    summary = sync.sync_stages()
    registry.reject(stage_id)

    with sync_client() as client:
        outcome = sync.download_stage(summary.to_download[0], client)

    assert outcome == Integrity.UNAVAILABLE
    assert "404" in only(stage_id).integrity_reason


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"status": 500}, id="500"),
        pytest.param({"status": 429, "retry_after": 0}, id="429"),
        pytest.param({"truncate": True}, id="truncated"),
        pytest.param({"delay": 1.5}, id="timeout"),
    ],
)
def test_a_transient_failure_defers_the_download_to_a_later_attempt(
    registry: Registry, fault: dict[str, object]
) -> None:
    stage_id = registry.stage("left-pad")
    registry.set_faults([{"method": "GET", "path": "/tarball$", "times": 1, **fault}])

    summary = sync.sync_stages()
    with sync_client() as client, pytest.raises(RegistryError) as raised:
        sync.download_stage(summary.to_download[0], client)

    assert is_transient(raised.value)
    sv = only(stage_id)
    assert sv.integrity == Integrity.PENDING
    assert sv.download_claimed_at is None, "the claim is released"
    assert sv.download_attempts == 1
    # The next pass hands it out again and this time it works.
    pass_and_download()
    assert only(stage_id).integrity == Integrity.VERIFIED
    assert only(stage_id).download_attempts == 2


def test_transient_failures_end_as_unavailable_once_attempts_are_spent(
    registry: Registry,
) -> None:
    stage_id = registry.stage("left-pad")
    registry.set_faults([{"method": "GET", "path": "/tarball$", "status": 503}])

    outcomes = []
    for _ in range(sync.MAX_DOWNLOAD_ATTEMPTS + 2):
        summary = sync.sync_stages()
        with sync_client() as client:
            outcomes.append(sync.download_stages(summary.to_download, client))

    sv = only(stage_id)
    assert sv.integrity == Integrity.UNAVAILABLE
    assert f"after {sync.MAX_DOWNLOAD_ATTEMPTS} attempts" in sv.integrity_reason
    assert "503" in sv.integrity_reason
    assert registry.tarball_requests() == sync.MAX_DOWNLOAD_ATTEMPTS
    assert sum(o[sync.DEFERRED] for o in outcomes) == sync.MAX_DOWNLOAD_ATTEMPTS - 1


def test_a_tarball_over_the_limit_is_unavailable(registry: Registry, settings) -> None:
    stage_id = registry.stage("left-pad", tarball=build_tarball("left-pad", "1.0.0", {"a": "x"}))
    settings.GREENROOM_TARBALL_MAX_BYTES = 100

    pass_and_download()

    sv = only(stage_id)
    assert sv.integrity == Integrity.UNAVAILABLE
    assert "the 100 allowed" in sv.integrity_reason


def test_a_live_claim_is_respected_and_an_expired_one_is_taken_over(registry: Registry) -> None:
    stage_id = registry.stage("left-pad")
    sync.sync_stages()
    # A worker claimed it a minute ago and is still at it.
    StagedVersion.objects.update(
        download_claimed_at=timezone.now() - timedelta(minutes=1), download_attempts=1
    )

    assert pass_and_download().to_download == []
    assert registry.tarball_requests() == 0

    # That worker died: once the lease is over, the next pass takes the download over.
    StagedVersion.objects.update(
        download_claimed_at=timezone.now() - leases.lease() - timedelta(seconds=1)
    )
    summary = pass_and_download()

    assert summary.to_download == [only(stage_id).id]
    assert only(stage_id).integrity == Integrity.VERIFIED
    assert registry.tarball_requests() == 1


def test_a_verdict_is_not_written_by_a_worker_that_lost_its_claim(registry: Registry) -> None:
    registry.stage("left-pad")
    sync.sync_stages()
    sv = StagedVersion.objects.get()
    claim = sync.claim_download(sv.id)
    assert claim is not None
    assert sync.claim_download(sv.id) is None, "a second claim fails while the first is live"

    # A refresh reset the stage (its shasum changed) while the download ran.
    StagedVersion.objects.update(download_claimed_at=None, download_claim="")

    assert not sync.record_integrity(sv.id, claim, Integrity.VERIFIED, "late")
    assert StagedVersion.objects.get().integrity == Integrity.PENDING


def test_the_same_bytes_staged_twice_are_stored_once(registry: Registry) -> None:
    data = build_tarball("left-pad", "1.0.0")
    first = registry.stage("left-pad", "1.0.0", tarball=data)
    pass_and_download()
    registry.reject(first)
    second = registry.stage("left-pad", "1.0.0", tarball=data)
    other = registry.stage("left-pad", "1.0.1")

    pass_and_download()

    assert only(first).tarball == only(second).tarball
    assert only(other).tarball != only(second).tarball
    assert Tarball.objects.count() == 2
    assert sorted(stored_files()) == sorted(t.storage_name for t in Tarball.objects.all())
