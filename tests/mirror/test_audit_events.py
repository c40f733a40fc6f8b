"""The sync writes one audit entry per thing it observes, in the transaction that records it."""

from reviews.audit.trail import verify_chain
from reviews.mirror.sync import download_stage, sync_stages
from reviews.models import AuditEvent, StagedVersion
from tests.mirror.live import Registry


def actions_for(stage_id: str) -> list[str]:
    return list(
        AuditEvent.objects.filter(stage_uuid=stage_id)
        .order_by("id")
        .values_list("action", flat=True)
    )


def test_first_sight_and_verdict_are_recorded_once(registry: Registry, db):
    stage_id = registry.stage("left-pad", "1.0.0")
    sync_stages()
    sync_stages()  # a second pass sees nothing new
    staged = StagedVersion.objects.get(stage_id=stage_id)
    download_stage(staged.id)
    assert actions_for(stage_id) == ["stage.seen", "tarball.verified"]
    seen = AuditEvent.objects.get(stage_uuid=stage_id, action="stage.seen")
    assert (seen.package_name, seen.version, seen.shasum) == ("left-pad", "1.0.0", staged.shasum)
    assert seen.npm_user == "alice"
    verified = AuditEvent.objects.get(stage_uuid=stage_id, action="tarball.verified")
    assert verified.payload["sha1"] == staged.shasum
    assert verify_chain().ok


def test_a_mismatch_is_recorded_with_its_reason(registry: Registry, db):
    stage_id = registry.stage("left-pad", "1.0.0")
    registry.tamper_stage(stage_id, shasum="0" * 40)
    sync_stages()
    download_stage(StagedVersion.objects.get(stage_id=stage_id).id)
    event = AuditEvent.objects.get(stage_uuid=stage_id, action="tarball.mismatch")
    assert event.payload["reason"]


def test_decisions_made_elsewhere_are_recorded(registry: Registry, db):
    approved_id = registry.stage("left-pad", "1.0.0")
    rejected_id = registry.stage("left-pad", "1.0.1")
    sync_stages()
    registry.approve(approved_id)
    registry.reject(rejected_id)
    sync_stages()
    sync_stages()
    approved = AuditEvent.objects.get(stage_uuid=approved_id, action="stage.approved_elsewhere")
    staged = StagedVersion.objects.get(stage_id=approved_id)
    assert approved.payload == {"published_shasum": staged.shasum, "matches_staged": True}
    assert actions_for(rejected_id) == ["stage.seen", "stage.rejected_elsewhere"]
    rejected = AuditEvent.objects.get(stage_uuid=rejected_id, action="stage.rejected_elsewhere")
    assert rejected.payload == {}


def test_a_changed_shasum_is_recorded_with_old_and_new(registry: Registry, db):
    stage_id = registry.stage("left-pad", "1.0.0")
    sync_stages()
    old = StagedVersion.objects.get(stage_id=stage_id).shasum
    registry.tamper_stage(stage_id, shasum="f" * 40)
    sync_stages()
    event = AuditEvent.objects.get(stage_uuid=stage_id, action="stage.updated")
    assert event.payload == {"shasum": {"old": old, "new": "f" * 40}}
