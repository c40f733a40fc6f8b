"""Structured logs: every line one JSON object (structlog), with what the line is about bound
from the context: `request_id` on web requests, `task_id` and `task` in Celery tasks, `stage_id`
(a stage's UUID, on pages about one stage) and `stage_pk` (the stage's row, in its tasks).

The portal's code logs with the standard library; structlog's formatter renders those records,
so third-party libraries (Django, Celery, boto3) come out as JSON too. LOG_FORMAT=console gives
readable lines instead (`make run` uses it). No Django import here: settings.py calls this.
"""

from __future__ import annotations

from typing import Any

import structlog

FORMATS = ("json", "console")


def shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def logging_config(level: str, log_format: str) -> dict[str, Any]:
    """Django's LOGGING for `level` and `log_format` ("json" or "console")."""
    if log_format not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {log_format!r}")
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            *shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "foreign_pre_chain": shared_processors(),
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    renderer,
                ],
            }
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"django.db.backends": {"level": "INFO"}},
    }
