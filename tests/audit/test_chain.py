import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from reviews.audit import trail as audit
from reviews.audit.trail import Action, verify_chain
from reviews.models import AuditEvent, AuditLogIsAppendOnly

ROOT = Path(__file__).resolve().parents[2]


def write_entries(n: int) -> list[AuditEvent]:
    return [
        audit.record(Action.SETTINGS_CHANGED, target=f"setting-{i}", payload={"new": i})
        for i in range(n)
    ]


def verify_output() -> str:
    out = StringIO()
    call_command("verify_audit", stdout=out)
    return out.getvalue()


def test_an_untouched_chain_verifies(db):
    write_entries(5)
    assert verify_output().strip() == "ok: 5 entries"


def test_each_entry_links_to_the_one_before(db):
    first, second = write_entries(2)
    assert first.prev_hash == audit.GENESIS_HASH
    assert second.prev_hash == first.hash
    assert len({first.hash, second.hash}) == 2


def run_sql(sql: str, params: list[str | int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_a_row_edited_in_the_database_is_named(db):
    entries = write_entries(4)
    run_sql("UPDATE reviews_auditevent SET target = %s WHERE id = %s", ["forged", entries[2].pk])
    with pytest.raises(CommandError, match=f"entry #{entries[2].pk} was changed"):
        verify_output()


def test_a_row_deleted_from_the_database_is_named(db):
    entries = write_entries(4)
    run_sql("DELETE FROM reviews_auditevent WHERE id = %s", [entries[1].pk])
    report = verify_chain()
    assert not report.ok
    assert report.entry_id == entries[2].pk
    assert f"between entry #{entries[0].pk} and entry #{entries[2].pk}" in report.problem


def test_the_first_rows_deleted_from_the_database_break_the_chain(db):
    entries = write_entries(4)
    run_sql("DELETE FROM reviews_auditevent WHERE id <= %s", [entries[1].pk])
    report = verify_chain()
    assert not report.ok
    assert report.entry_id == entries[2].pk
    assert report.count == 0
    assert f"the chain breaks before entry #{entries[2].pk}" in report.problem


def test_a_row_inserted_into_the_database_is_named(db):
    entries = write_entries(3)
    forged = AuditEvent(
        created_at=entries[-1].created_at,
        action="stage.approved_elsewhere",
        prev_hash="f" * 64,
        hash="e" * 64,
    )
    forged.save()
    report = verify_chain()
    assert not report.ok
    assert report.entry_id == forged.pk


def test_a_rewritten_row_with_a_recomputed_hash_breaks_the_next_link(db):
    entries = write_entries(3)
    victim = AuditEvent.objects.get(pk=entries[1].pk)
    victim.target = "forged"
    new_hash = audit.hash_of(victim)
    run_sql(
        "UPDATE reviews_auditevent SET target = %s, hash = %s WHERE id = %s",
        ["forged", new_hash, victim.pk],
    )
    report = verify_chain()
    assert report.entry_id == entries[2].pk


def test_the_orm_refuses_updates_and_deletes(db):
    (entry,) = write_entries(1)
    entry.target = "changed"
    with pytest.raises(AuditLogIsAppendOnly):
        entry.save()
    with pytest.raises(AuditLogIsAppendOnly):
        entry.delete()
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.filter(pk=entry.pk).update(target="x")
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.all().delete()
    assert verify_output().strip() == "ok: 1 entries"


def test_a_rolled_back_change_leaves_no_entry(db):
    def failing_change() -> None:
        with transaction.atomic():
            audit.record(Action.SETTINGS_CHANGED, target="x")
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        failing_change()
    assert not AuditEvent.objects.exists()


def test_secrets_are_refused(db):
    with pytest.raises(audit.SecretInAuditPayload):
        audit.record(Action.SETTINGS_CHANGED, payload={"nested": {"npm_otp": "123456"}})
    assert not AuditEvent.objects.exists()


WRITER = """
import django, os, sys
django.setup()
from reviews.audit import trail as audit
for i in range(int(sys.argv[1])):
    audit.record(audit.Action.SETTINGS_CHANGED, target=f"{os.getpid()}-{i}")
"""


@pytest.mark.django_db(transaction=True)
def test_two_processes_writing_at_once_keep_a_valid_chain(settings):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers are a PostgreSQL concern; CI runs this on PostgreSQL")
    db = settings.DATABASES["default"]
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, "60"], cwd=ROOT, env=env) for _ in range(2)
    ]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    report = verify_chain()
    assert report.ok, report.problem
    assert report.count == 120


def test_nul_and_lone_surrogates_are_stored_as_markers_and_the_chain_verifies(db):
    # A tarball's text reaches the trail in verdict reasons and registry answers; PostgreSQL
    # refuses NUL in text and jsonb, and no driver encodes a lone surrogate.
    event = audit.record(
        Action.TARBALL_MISMATCH,
        target="x\0y",
        registry_message="said \0 and \ud800",
        payload={"reason": "its package.json names 'a\0b'", "k\0": ["\ud800", {"n\0": 1}]},
    )

    event.refresh_from_db()
    assert event.target == "x\u2400y"
    assert event.registry_message == "said \u2400 and \ufffd"
    assert event.payload == {
        "reason": "its package.json names 'a\u2400b'",
        "k\u2400": ["\ufffd", {"n\u2400": 1}],
    }
    assert verify_output().strip() == "ok: 1 entries"
