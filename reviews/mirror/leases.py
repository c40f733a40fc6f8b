"""Claims on work (a tarball download, an analysis) that expire unless their worker is alive.

A worker claims a row with a conditional UPDATE that writes a token of its own and the time.
Another worker may take the work over once that time is older than the lease
(GREENROOM_CLAIM_LEASE): that is how the work of a killed worker is found again, since its
message may be lost with it. The lease is short, so while the work runs a `Heartbeat` moves
the time forward every third of the lease; every write is conditional on the token, so a worker
that lost its claim writes nothing.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self, TypeVar

from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.db.models import Model, Q, QuerySet
from django.utils import timezone

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=Model)

# How long leaving the block waits for a beat in flight (one UPDATE): never the whole work.
STOP_WAIT_SECONDS = 10.0


def lease() -> timedelta:
    return timedelta(seconds=settings.GREENROOM_CLAIM_LEASE)


def new_token() -> str:
    return uuid.uuid4().hex


QUEUE_MARK_CHUNK = 500  # ids per UPDATE, well under SQLite's variable limit


def take_queue_marks(queryset: QuerySet[M], mark: str, now: datetime) -> list[int]:
    """Of the rows of `queryset`, those not handed to the workers within a lease: marked as
    queued at `now` (the `mark` field), their ids returned for the caller to enqueue.

    Two passes at once never both take a row: PostgreSQL locks the rows taken (others skip
    them), SQLite runs one write transaction at a time. A row marked less than a lease ago is
    left alone, so a message waiting in the queue is not doubled; a row whose message was lost
    (a killed worker, a broker that restarted empty) is taken again once the mark is stale."""
    stale = Q(**{f"{mark}__isnull": True}) | Q(**{f"{mark}__lt": now - lease()})
    with transaction.atomic():
        ids = list(
            queryset.filter(stale)
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        for start in range(0, len(ids), QUEUE_MARK_CHUNK):
            chunk = ids[start : start + QUEUE_MARK_CHUNK]
            queryset.model._default_manager.filter(pk__in=chunk).update(**{mark: now})
    return ids


class Heartbeat:
    """Keeps a claim alive while the block runs: every `interval` seconds (a third of the lease
    unless given), a thread of its own calls `bump(now)`, a conditional UPDATE on the claim's
    token that returns how many rows it changed. It stops when the block ends or when a bump
    changes nothing (the claim was taken over or reset), and closes its database connection.

    `clock` is the time written (a seam for tests)."""

    def __init__(
        self,
        bump: Callable[[datetime], int],
        *,
        interval: float | None = None,
        clock: Callable[[], datetime] = timezone.now,
        name: str = "claim heartbeat",
    ) -> None:
        self._bump = bump
        self.interval = lease().total_seconds() / 3 if interval is None else interval
        self._clock = clock
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.lost = False

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopping.set()
        self._thread.join(STOP_WAIT_SECONDS)
        if self._thread.is_alive():  # a beat stuck on a lock: its write is harmless, see beat()
            logger.warning("%s did not stop within %s s", self._thread.name, STOP_WAIT_SECONDS)

    def _run(self) -> None:
        try:
            while not self._stopping.wait(self.interval):
                if not self.beat():
                    return
        finally:
            connections.close_all()  # this thread's own connections only

    def beat(self) -> bool:
        """Refresh the claim once; False once it is no longer ours. A late beat after the work
        recorded its result changes nothing: recording clears the token."""
        try:
            kept = self._bump(self._clock()) > 0
        except DatabaseError as e:  # a busy database: the next beat tries again
            logger.warning("%s could not refresh its claim: %s", self._thread.name, e)
            return True
        if not kept:
            self.lost = True
            logger.warning("%s: the claim was taken over or reset", self._thread.name)
        return kept
