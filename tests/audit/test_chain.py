import os
import subprocess
import sys
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from reviews.audit import trail as audit
from reviews.audit.trail import Action, Actor, verify_chain
from reviews.models import AuditEvent, AuditLogIsAppendOnly
from tests.personas import make_stage

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


def test_the_hash_of_an_entry_never_changes_between_releases():
    # A chain written by an earlier release must verify after an upgrade: the hashed content
    # (which fields, their names, the JSON form) is frozen. A change here needs a migration.
    event = AuditEvent(
        created_at=datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC),
        action="stage.approved",
        user_id=7,
        username="approver",
        npm_user="alice",
        stage_id=9,
        stage_uuid="0b6f2a4e-5d1c-4c3b-9a8e-7f6d5c4b3a21",
        package_name="@acme/ui",
        version="2.0.0",
        shasum="a" * 40,
        target="team:acme",
        ip="192.0.2.1",
        user_agent="Firefox",
        registry_status=200,
        registry_message="ok",
        payload={"reason": "looks fine", "n": 1},
        prev_hash="b" * 64,
    )

    assert audit.hash_of(event) == (
        "0ee53c894615cd2affdf4aecb9c23b8730d38608cc7203748d22ba6af6d29db7"
    )


def run_sql(sql: str, params: list[str | int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_a_row_edited_in_the_database_is_named(db):
    entries = write_entries(4)
    run_sql("UPDATE reviews_auditevent SET target = %s WHERE id = %s", ["forged", entries[2].pk])
    with pytest.raises(CommandError, match=f"entry #{entries[2].pk} was changed"):
        verify_output()
    assert verify_chain() == audit.ChainReport(
        False, 2, f"entry #{entries[2].pk} was changed after it was written", entries[2].pk
    )


def test_a_row_deleted_from_the_database_is_named(db):
    entries = write_entries(4)
    run_sql("DELETE FROM reviews_auditevent WHERE id = %s", [entries[1].pk])
    report = verify_chain()
    assert report.ok is False
    assert (report.entry_id, report.count) == (entries[2].pk, 1)
    assert report.problem == (
        f"the chain breaks between entry #{entries[0].pk} and entry #{entries[2].pk}: an entry "
        "was removed or inserted there, or the one before was rewritten"
    )


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


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"a": {"b": {"Token": "x"}}}, "payload.a.b.Token"),
        ({"items": [{"ok": 1}, {"password": "x"}]}, "payload.items.password"),
        ({"items": [[{"otp": "1"}]]}, "payload.items.otp"),
    ],
)
def test_a_secret_anywhere_in_the_payload_is_named_by_its_path(payload, where):
    with pytest.raises(audit.SecretInAuditPayload) as refused:
        audit.refuse_secrets(payload)

    assert str(refused.value) == f"{where} looks like a secret; not recorded"
    audit.refuse_secrets({"items": [{"ok": 1}], "count": 2})  # nothing secret: no error


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


def test_an_entry_keeps_who_did_what_to_which_stage_and_what_the_registry_said(db):
    user = User.objects.create_user("approver")
    stage = make_stage("@acme/ui", "2.0.0")
    # A dual-stack server sees IPv4 clients as IPv4-mapped addresses; the column writes them
    # in dotted form, and the hash must cover that form or the chain breaks at this entry.
    actor = Actor(user=user, ip="::ffff:c000:201", user_agent="Firefox")

    event = audit.record(
        Action.STAGE_APPROVED,
        actor,
        stage=stage,
        npm_user="alice",
        registry_status=200,
        registry_message="ok",
        payload={"reason": "fine"},
    )

    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.user_id, stored.username, stored.npm_user) == (user.pk, "approver", "alice")
    assert (stored.stage_id, stored.stage_uuid) == (stage.pk, str(stage.stage_id))
    assert (stored.package_name, stored.version, stored.shasum) == ("@acme/ui", "2.0.0", "0" * 40)
    assert (stored.ip, stored.user_agent) == ("::ffff:192.0.2.1", "Firefox")
    assert (stored.registry_status, stored.registry_message) == (200, "ok")
    assert stored.payload == {"reason": "fine"}
    assert verify_chain().ok is True


def test_several_entries_at_once_chain_like_single_ones(db):
    first = audit.record(Action.SETTINGS_CHANGED, target="one")
    created = audit.record_many(
        [audit.Entry(Action.SETTINGS_CHANGED, target=name) for name in ("two", "three")]
    )

    assert [event.prev_hash for event in created] == [first.hash, created[0].hash]
    assert [e.target for e in AuditEvent.objects.order_by("id")] == ["one", "two", "three"]
    assert audit.record_many([]) == []
    assert verify_chain() == audit.ChainReport(True, 3)


def test_a_request_names_its_user_address_and_browser(rf, db):
    user = User.objects.create_user("viewer")
    request = rf.get("/", REMOTE_ADDR="192.0.2.7", HTTP_USER_AGENT="x" * 500)
    request.user = user

    actor = Actor.from_request(request)

    assert (actor.user, actor.ip, actor.user_agent) == (user, "192.0.2.7", "x" * 400)
    request.user = AnonymousUser()
    bare = rf.get("/")
    bare.user = AnonymousUser()
    assert Actor.from_request(bare) == Actor(user=None, ip="127.0.0.1", user_agent="")


def test_an_entry_without_stage_or_registry_answer_stores_empty_fields(db):
    event = audit.record(Action.SETTINGS_CHANGED, Actor(user_agent="u" * 500))
    long = audit.record(Action.SETTINGS_CHANGED, registry_message="m" * 2500)

    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.stage_id, stored.stage_uuid, stored.package_name) == (None, "", "")
    assert (stored.version, stored.shasum, stored.target, stored.npm_user) == ("", "", "", "")
    assert (stored.user_id, stored.registry_status, stored.registry_message) == (None, None, "")
    assert stored.user_agent == "u" * 400
    assert AuditEvent.objects.get(pk=long.pk).registry_message == "m" * 2000
    assert verify_chain().ok is True


def test_several_entries_at_once_refuse_a_secret_and_keep_none(db):
    entries = [
        audit.Entry(Action.SETTINGS_CHANGED, target="fine"),
        audit.Entry(Action.SETTINGS_CHANGED, payload={"npm_token": "x"}),
    ]

    with pytest.raises(audit.SecretInAuditPayload, match=r"^payload\.npm_token looks like"):
        audit.record_many(entries)

    assert not AuditEvent.objects.exists()
