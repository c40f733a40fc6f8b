"""The one-time codes, the security key's token and the linked npm token never land anywhere:
no log record (every logger at DEBUG, SQL statements included), audit entry, database row,
session, cache entry, Celery message or error report holds one of them in clear."""

from __future__ import annotations

import json
import logging
import pickle
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from celery.signals import before_task_publish
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.core.signals import got_request_exception
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.views.debug import ExceptionReporter

from reviews.audit.trail import Action
from reviews.decide.decisions import DecisionCrashed
from reviews.models import AuditEvent, Batch, WebAuthChallenge
from tests.decide.conftest import (
    Registry,
    approve,
    both_modes,
    client_for,
    link,
    poll,
    reject,
)
from tests.personas import World

pytestmark = pytest.mark.django_db

LINK_URL = "/settings/npm-token/"


class Secrets:
    def __init__(self) -> None:
        self.values: set[str] = set()

    def add(self, value: str) -> str:
        self.values.add(value)
        return value

    def found_in(self, text: str) -> list[str]:
        found = []
        for secret in self.values:
            if secret.isdigit():
                # A six-digit code standing on its own: not inside a hash, a number or the
                # microseconds of a timestamp, where any six digits appear by chance.
                pattern = rf"(?<![0-9A-Za-z.]){re.escape(secret)}(?![0-9A-Za-z])"
                if re.search(pattern, text):
                    found.append(secret)
            elif secret in text:
                found.append(secret)
        return found


@pytest.fixture
def every_log_record(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """caplog at DEBUG on every logger there is, the SQL of every query included."""
    caplog.set_level(logging.DEBUG)
    added: list[logging.Logger] = []
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger):
            continue
        caplog.set_level(logging.DEBUG, logger=name)
        if not logger.propagate:
            logger.addHandler(caplog.handler)
            added.append(logger)
    saved = connection.force_debug_cursor
    connection.force_debug_cursor = True
    yield caplog
    connection.force_debug_cursor = saved
    for logger in added:
        logger.removeHandler(caplog.handler)


@pytest.fixture
def celery_messages() -> Iterator[list[Any]]:
    """Every task message published, as the broker gets it (the local broker is folders)."""
    published: list[Any] = []

    def keep(body: Any = None, headers: Any = None, **kwargs: Any) -> None:
        published.append({"body": body, "headers": headers})

    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
    for key in ("data_folder_in", "data_folder_out"):
        if key in options:
            Path(str(options[key])).mkdir(parents=True, exist_ok=True)
    before_task_publish.connect(keep, weak=False)
    yield published
    before_task_publish.disconnect(keep)


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    formatter = logging.Formatter()
    return "\n".join(f"{formatter.format(r)} {vars(r)!r}" for r in caplog.records)


def database_text() -> str:
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            chunks.append(f"{table}: {cursor.fetchall()!r}")
    chunks += [repr(session.get_decoded()) for session in Session.objects.all()]
    return "\n".join(chunks)


def cache_text() -> str:
    chunks = []
    for alias in settings.CACHES:
        cache = caches[alias]
        store = getattr(cache, "_cache", None)
        if isinstance(store, dict):  # local memory
            for key, value in store.items():
                chunks.append(f"{key!r}: {pickle.loads(value)!r}")  # noqa: S301 (our own cache)
        elif store is not None and hasattr(store, "get_client"):  # Redis (maybe the broker's too)
            client = store.get_client()
            chunks += [f"{k!r}: {redis_value(client, k)!r}" for k in client.scan_iter()]
    return "\n".join(chunks)


def redis_value(client: Any, key: bytes) -> Any:
    kind = client.type(key).decode()
    read = {
        "string": client.get,
        "list": lambda k: client.lrange(k, 0, -1),
        "set": client.smembers,
        "zset": lambda k: client.zrange(k, 0, -1),
        "hash": client.hgetall,
    }.get(kind)
    return read(key) if read else kind


def broker_text(published: list[Any]) -> str:
    chunks = [repr(published)]
    folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("data_folder_out")
    if folder and Path(str(folder)).is_dir():
        chunks += [p.read_text(errors="replace") for p in Path(str(folder)).iterdir()]
    return "\n".join(chunks)


def test_no_code_or_token_is_kept_anywhere(
    registry: Registry,
    world: World,
    every_log_record: pytest.LogCaptureFixture,
    celery_messages: list[Any],
    django_capture_on_commit_callbacks: Any,
):
    secrets = Secrets()
    alice = registry.alice
    client = client_for(world.approver)

    # Link the token through the page.
    assert client.post(LINK_URL, {"token": secrets.add(alice.token)}).status_code == 302

    # A wrong code, then the right one.
    first = registry.stage("@acme/widget", "1.0.0")
    assert approve(client, first, otp=secrets.add(alice.wrong_code())).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert approve(client, first, otp=secrets.add(alice.code())).status_code == 303

    # A security key: the token it hands out is sent once and forgotten.
    second = registry.stage("@acme/widget", "1.1.0")
    approve(client, second)
    challenge = WebAuthChallenge.objects.get(stage=second)
    registry.live.complete_web_auth(challenge.auth_url)
    WebAuthChallenge.objects.filter(pk=challenge.pk).update(next_poll_at=challenge.created_at)
    with django_capture_on_commit_callbacks(execute=True):
        assert poll(client, second)["HX-Redirect"]
    for token in registry.web_tokens():
        secrets.add(token)

    # A reject with a code.
    third = registry.stage("@acme/widget", "1.2.0")
    code = secrets.add(alice.code())
    assert reject(client, third, confirm_version="1.2.0", reason="no", otp=code).status_code == 303

    assert len(secrets.values) >= 4
    assert {e.action for e in AuditEvent.objects.all()} >= {
        Action.NPM_ACCOUNT_LINKED,
        Action.DECISION_WRONG_CODE,
        Action.DECISION_CHALLENGED,
        Action.STAGE_APPROVED,
        Action.STAGE_REJECTED,
    }
    # The digest checks were queued by id only, and really published.
    tasks = [m for m in celery_messages if "verify_published_digest" in repr(m["headers"])]
    assert [list(m["body"][0]) for m in tasks] == [[first.pk], [second.pk]]
    assert any("SELECT" in r.getMessage() for r in every_log_record.records)  # SQL was logged

    assert secrets.found_in(log_text(every_log_record)) == []
    audit_rows = [json.dumps(e.__dict__, default=str) for e in AuditEvent.objects.all()]
    assert secrets.found_in("\n".join(audit_rows)) == []
    assert secrets.found_in(database_text()) == []
    assert secrets.found_in(cache_text()) == []
    assert secrets.found_in(broker_text(celery_messages)) == []


@both_modes
def test_no_recovery_code_is_kept_anywhere(
    registry: Registry,
    world: World,
    every_log_record: pytest.LogCaptureFixture,
    celery_messages: list[Any],
    django_capture_on_commit_callbacks: Any,
):
    secrets = Secrets()
    client = client_for(world.approver)
    assert client.post(LINK_URL, {"token": secrets.add(registry.alice.token)}).status_code == 302
    issued = registry.live.recovery_codes("alice")
    first = registry.stage("@acme/widget", "1.0.0")
    second = registry.stage("@acme/widget", "1.1.0")

    # One the registry never issued (refused either way), then two real ones, one with hyphens.
    never_issued = secrets.add("0123456789abcdef")
    assert never_issued not in issued
    assert approve(client, first, otp=never_issued).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        approve(client, first, otp=secrets.add(issued[0]))
    hyphenated = secrets.add("-".join(issued[1][i : i + 4] for i in range(0, 16, 4)))
    reject(client, second, confirm_version="1.1.0", reason="no", otp=hyphenated)
    secrets.add(issued[1])

    factors = {e.payload.get("factor") for e in AuditEvent.objects.filter(stage=first)}
    assert "recovery code" in factors
    if registry.other_mode:  # the registry took them: they really were sent and used
        first.refresh_from_db()
        second.refresh_from_db()
        assert (first.state, second.state) == ("approved", "rejected")
    assert secrets.found_in(log_text(every_log_record)) == []
    audit_rows = [json.dumps(e.__dict__, default=str) for e in AuditEvent.objects.all()]
    assert secrets.found_in("\n".join(audit_rows)) == []
    assert secrets.found_in(database_text()) == []
    assert secrets.found_in(cache_text()) == []
    assert secrets.found_in(broker_text(celery_messages)) == []


def test_an_unexpected_crash_reports_neither_code_nor_token(
    registry: Registry, world: World, monkeypatch: pytest.MonkeyPatch
):
    stage = registry.stage()
    link(world.approver, registry.alice)
    secrets = Secrets()
    secrets.add(registry.alice.token)
    code = secrets.add(registry.alice.code())
    real_request = requests.Session.request

    def explode(self: requests.Session, method: str, url: str, **kwargs: Any) -> Any:
        if url.endswith("/approve"):
            # Deep in the registry client, with the code and the token in its locals.
            raise RuntimeError("the connection pool fell over")
        return real_request(self, method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", explode)
    reports: list[tuple[Any, Any]] = []

    def keep(sender: Any, request: Any = None, **kwargs: Any) -> None:
        reports.append((request, sys.exc_info()))

    got_request_exception.connect(keep)
    client = Client(raise_request_exception=False)
    client.force_login(world.approver)
    try:
        response = approve(client, stage, otp=code)
    finally:
        got_request_exception.disconnect(keep)

    assert response.status_code == 500
    request, exc_info = reports[0]
    assert exc_info[0] is DecisionCrashed
    reporter = ExceptionReporter(request, *exc_info)
    text, html = reporter.get_traceback_text(), reporter.get_traceback_html()
    assert "otp" in text  # the POST field is listed, its value masked
    assert secrets.found_in(text) == []
    assert secrets.found_in(html) == []
    event = AuditEvent.objects.filter(stage=stage).order_by("-id").first()
    assert event is not None
    assert (event.action, event.payload["why"]) == (
        Action.DECISION_FAILED,
        "unexpected RuntimeError",
    )
    stage.refresh_from_db()
    assert stage.decision_claimed_at is None


def test_no_batch_code_is_kept_anywhere(
    registry: Registry,
    world: World,
    every_log_record: pytest.LogCaptureFixture,
    celery_messages: list[Any],
    django_capture_on_commit_callbacks: Any,
):
    """A batch re-sends one code for many stages, pauses when it is refused and goes on with a
    fresh one: neither code lands in the database, the broker, the cache or a log."""
    secrets = Secrets()
    client = client_for(world.approver)
    assert client.post(LINK_URL, {"token": secrets.add(registry.alice.token)}).status_code == 302
    registry.live.set_otp_max_uses(2)
    stages = [registry.stage(f"@acme/b{i}", "1.0.0") for i in range(4)]
    answer = client.post(reverse("reviews:batch-start"), {"stage": [s.stage_id for s in stages]})
    batch = Batch.objects.get()
    approve_url = reverse("reviews:batch-approve", args=[batch.pk])

    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post(approve_url, {"otp": secrets.add(registry.alice.code())})
    assert answer.status_code == 303
    batch.refresh_from_db()
    assert batch.state == Batch.State.NEEDS_CODE
    client.get(reverse("reviews:batch", args=[batch.pk]))  # the page, with its messages
    with django_capture_on_commit_callbacks(execute=True):
        client.post(approve_url, {"otp": secrets.add(registry.alice.code(1))})
    client.get(reverse("reviews:batch-progress", args=[batch.pk]))

    batch.refresh_from_db()
    assert batch.state == Batch.State.FINISHED
    assert AuditEvent.objects.filter(action=Action.STAGE_APPROVED).count() == 4
    tasks = [m for m in celery_messages if "verify_published_digest" in repr(m["headers"])]
    assert len(tasks) == 4  # the broker was used, with ids only
    assert secrets.found_in(log_text(every_log_record)) == []
    audit_rows = [json.dumps(e.__dict__, default=str) for e in AuditEvent.objects.all()]
    assert secrets.found_in("\n".join(audit_rows)) == []
    assert secrets.found_in(database_text()) == []
    assert secrets.found_in(cache_text()) == []
    assert secrets.found_in(broker_text(celery_messages)) == []
