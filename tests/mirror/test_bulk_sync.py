"""A listing page is recorded in one transaction with a number of SQL statements that does not
grow with the page: new stages, their audit entries and notification events go in bulk."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from reviews.audit import trail as audit
from reviews.audit.trail import Action, verify_chain
from reviews.mirror.registry import Stage
from reviews.mirror.sync import SyncSummary, record_listed_stages, record_new_stages
from reviews.models import AuditEvent, NotificationEvent, StagedVersion

pytestmark = pytest.mark.django_db

# What one page may cost, whatever its size: look up the page's stages, lock the chain and look
# again, insert the stages, read the chain's head, insert the entries, insert the events, and
# touch the unchanged ones (plus savepoints).
MAX_STATEMENTS_PER_PAGE = 14


def listed(count: int, prefix: str = "pkg") -> list[Stage]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        Stage(
            id=uuid.uuid4(),
            package_name=f"{prefix}-{n}",
            version="1.0.0",
            tag="latest",
            created_at=start + timedelta(seconds=n),
            actor="alice",
            actor_type="user",
            access="public",
            shasum=f"{n:040x}",
        )
        for n in range(count)
    ]


def statements_to_record(stages: list[Stage]) -> tuple[int, SyncSummary]:
    summary = SyncSummary()
    with CaptureQueriesContext(connection) as queries:
        record_listed_stages(stages, summary)
    return len(queries), summary


def test_a_page_of_new_stages_costs_the_same_statements_whatever_its_size() -> None:
    small, small_summary = statements_to_record(listed(3, "small"))
    large, large_summary = statements_to_record(listed(100, "large"))

    assert (small_summary.new, large_summary.new) == (3, 100)
    assert large == small
    assert large <= MAX_STATEMENTS_PER_PAGE


def test_a_page_with_no_change_costs_the_same_statements_whatever_its_size() -> None:
    few, many = listed(3, "few"), listed(100, "many")
    statements_to_record(few)
    statements_to_record(many)

    small, small_summary = statements_to_record(few)
    large, large_summary = statements_to_record(many)

    assert (small_summary.new, large_summary.new) == (0, 0)
    assert large == small
    assert large <= 4  # savepoint, select, update, release


def test_a_page_mixing_new_and_known_stages_still_costs_a_constant(
    django_assert_max_num_queries,
) -> None:
    known = listed(50, "known")
    statements_to_record(known)
    with django_assert_max_num_queries(MAX_STATEMENTS_PER_PAGE):
        record_listed_stages([*known, *listed(50, "new")], SyncSummary())
    assert StagedVersion.objects.count() == 100


def test_bulk_entries_chain_like_single_ones_and_verify() -> None:
    audit.record(Action.SETTINGS_CHANGED, target="before")
    statements_to_record(listed(40))
    audit.record(Action.SETTINGS_CHANGED, target="after")

    report = verify_chain()

    assert report.ok, report.problem
    assert report.count == 42
    entries = list(AuditEvent.objects.order_by("id"))
    assert all(e.prev_hash == before.hash for before, e in itertools.pairwise(entries))
    seen = [e for e in entries if e.action == Action.STAGE_SEEN]
    assert [e.package_name for e in seen] == [f"pkg-{n}" for n in range(40)]
    assert all(e.hash == audit.hash_of(e) for e in entries)


def test_each_new_stage_gets_one_entry_and_one_event_and_names_its_row() -> None:
    stages = listed(5)
    statements_to_record(stages)

    rows = {sv.stage_id: sv for sv in StagedVersion.objects.all()}
    for stage in stages:
        row = rows[stage.id]
        entry = AuditEvent.objects.get(stage=row)
        assert (entry.action, entry.stage_uuid, entry.npm_user) == (
            Action.STAGE_SEEN,
            str(stage.id),
            "alice",
        )
        assert entry.payload == {"tag": "latest", "actor_type": "user"}
        event = NotificationEvent.objects.get(stage=row)
        assert event.key == f"stage.new:{row.pk}"


def test_stages_another_pass_created_first_are_left_alone() -> None:
    stages = listed(4)
    first = record_new_stages(stages[:2])

    second = record_new_stages(stages)

    assert [sv.stage_id for sv in first] == [s.id for s in stages[:2]]
    assert [sv.stage_id for sv in second] == [s.id for s in stages[2:]]
    assert AuditEvent.objects.count() == NotificationEvent.objects.count() == 4


def test_a_secret_in_a_bulk_entry_refuses_the_whole_batch() -> None:
    with pytest.raises(audit.SecretInAuditPayload):
        audit.record_many(
            [
                audit.Entry(Action.SETTINGS_CHANGED, payload={"fine": 1}),
                audit.Entry(Action.SETTINGS_CHANGED, payload={"npm_token": "x"}),
            ]
        )
    assert AuditEvent.objects.count() == 0
