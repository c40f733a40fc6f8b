"""Structured logs: one JSON object per line, carrying the request id on web requests and the
task id, task and stage in Celery tasks."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import structlog
from django.test import Client
from django.urls import reverse

from portal import observability
from portal.logs import logging_config
from tests.personas import World


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What the root logger writes through the JSON formatter of the settings, one per line."""
    spec = dict(logging_config("INFO", "json")["formatters"]["structured"])
    formatter = spec.pop("()")(**spec)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)
    structlog.contextvars.clear_contextvars()


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_request_logs_its_id_and_stage_and_answers_the_id(world: World, log_lines) -> None:
    client = Client()
    client.force_login(world.viewer)
    missing = uuid.uuid4()

    response = client.get(reverse("reviews:stage", args=[missing]))

    assert response.status_code == 404
    request_id = response["X-Request-ID"]
    (line,) = [line for line in lines(log_lines) if line["logger"] == "django.request"]
    assert line["request_id"] == request_id
    assert line["stage_id"] == str(missing)
    assert line["level"] == "warning"
    assert "timestamp" in line


def test_a_well_formed_incoming_id_is_kept_and_anything_else_replaced(db) -> None:
    kept = Client(headers={"X-Request-ID": "proxy-1234abcd"}).get(reverse("healthz"))
    forged = Client(headers={"X-Request-ID": 'x" injected\nline'}).get(reverse("healthz"))
    assert kept["X-Request-ID"] == "proxy-1234abcd"
    assert forged["X-Request-ID"] != 'x" injected\nline'
    assert len(forged["X-Request-ID"]) == 32


def test_a_tasks_lines_carry_its_id_name_and_stage(log_lines) -> None:
    task = SimpleNamespace(name="reviews.tasks.analyse_stage_task")
    observability.task_started(task_id="task-1", task=task, args=(42,))
    logging.getLogger("reviews.review.analysis").info("analysing %s", "a pair")
    observability.task_ended()
    logging.getLogger("reviews.review.analysis").info("after the task")

    during, after = lines(log_lines)
    assert during["event"] == "analysing a pair"
    assert (during["task_id"], during["task"], during["stage_pk"]) == ("task-1", task.name, 42)
    assert "task_id" not in after


def test_an_exception_is_one_json_line_with_its_traceback(log_lines) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("reviews.x").exception("it failed")
    (line,) = lines(log_lines)
    assert line["event"] == "it failed"
    assert "ValueError: boom" in str(line["exception"])


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        logging_config("INFO", "xml")
