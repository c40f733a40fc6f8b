"""A batch is announced once: one email per person for all its stages, not one per stage."""

from __future__ import annotations

from reviews.models import Batch, BatchItem, NotificationEvent, StagedVersion
from tests.notify.conftest import run_outbox, verified
from tests.personas import World, make_stage


def test_one_email_per_person_names_the_batch_and_its_stages(people: World) -> None:
    stages = [verified(make_stage(f"@acme/part{i}", "2.0.0")) for i in range(7)]
    StagedVersion.objects.filter(pk__in=[s.pk for s in stages]).update(
        state=StagedVersion.State.APPROVED, decided_by=people.approver, decided_in_portal=True
    )
    batch = Batch.objects.create(created_by=people.approver, state=Batch.State.FINISHED)
    BatchItem.objects.bulk_create(
        BatchItem(batch=batch, stage=stage, position=i, state=BatchItem.State.DONE)
        for i, stage in enumerate(stages)
    )
    NotificationEvent.objects.record(
        NotificationEvent.Kind.BATCH_DECIDED, stages[0], number=batch.pk
    )

    sent = run_outbox()

    # The Acme members but the approver, who made the batch: the viewer and the team admin.
    assert sorted(message.to[0] for message in sent) == [
        "acme-admin@example.test",
        "viewer@example.test",
    ]
    message = sent[0]
    assert f"Batch #{batch.pk}: 7 stages approved by approver" in message.subject
    assert "and 2 more" in message.subject
    body = message.body
    assert all(f"@acme/part{i}@2.0.0" in body for i in range(7))
