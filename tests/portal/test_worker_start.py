"""What a Celery worker sets up once at start, before its first task."""

from __future__ import annotations

import numpy
from celery import signals

from portal.celery import app
from reviews.inspect import archive


def test_a_starting_worker_counts_lines_with_numpy(monkeypatch):
    monkeypatch.setattr(archive, "_numpy", None)
    signals.worker_init.send(sender=app)
    assert archive._numpy is numpy
