"""What binds the context of every log line: a request id per web request (middleware) and the
task's id, name and stage per Celery task (signals, connected by portal.celery)."""

from __future__ import annotations

import logging
import logging.config
import re
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from django.conf import settings
from django.core.cache import cache
from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

# A request id from the proxy in front is kept if it looks like one; anything else is replaced,
# so a client cannot write arbitrary text into every log line of its request.
INCOMING_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
# Tasks whose first argument is a StagedVersion id.
STAGE_TASKS = {
    "reviews.tasks.download_stage_tarball_task",
    "reviews.tasks.analyse_stage_task",
    "reviews.tasks.verify_published_digest_task",
}
FAILURES_KEY = "greenroom:metrics:task-failures:{}"


class RequestIdMiddleware:
    """Binds `request_id` (and the stage of a page about one stage) to every log line of the
    request, and answers it in `X-Request-ID` so a report can name its request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if INCOMING_ID.fullmatch(incoming) else uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        # Cleared when the response is closed (request_finished, below): Django logs a 4xx or
        # 5xx answer after the middleware returned it, and that line needs the id too.
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response

    def process_view(
        self, request: HttpRequest, view: object, args: object, kwargs: dict[str, Any]
    ) -> None:
        stage_id = kwargs.get("stage_id")
        if stage_id is not None:
            structlog.contextvars.bind_contextvars(stage_id=str(stage_id))


def request_ended(**kwargs: Any) -> None:
    structlog.contextvars.clear_contextvars()


request_finished.connect(request_ended, dispatch_uid="greenroom-clear-log-context")


def task_started(task_id: str, task: Any, args: tuple[Any, ...] = (), **kwargs: Any) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(task_id=task_id, task=task.name)
    if task.name in STAGE_TASKS and args:
        structlog.contextvars.bind_contextvars(stage_pk=args[0])


def task_ended(**kwargs: Any) -> None:
    structlog.contextvars.clear_contextvars()


def task_failed(sender: Any = None, **kwargs: Any) -> None:
    """Counts a task that failed for good (not a retry), per task, for /metrics."""
    key = FAILURES_KEY.format(getattr(sender, "name", "unknown"))
    try:
        cache.add(key, 0, timeout=None)
        cache.incr(key)
    except Exception:  # a metric must never break a worker
        logger.warning("could not count the failure of %s", key, exc_info=True)


def configure_worker_logging(**kwargs: Any) -> None:
    """Celery configures its own logging unless someone answers this signal: Django's
    LOGGING (structured) stays in force in workers and beat."""
    logging.config.dictConfig(settings.LOGGING)
