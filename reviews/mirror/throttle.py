"""Be gentle with the registry: at most a few tarball downloads at once, and a pause between them.

A fragile registry (one implementation crashed when 100 staged tarballs were downloaded back to
back) is not hammered by a sync pass or by many workers. The slots and the time of the last
download live in Django's cache, so every process that shares the cache (Redis in production,
a folder under `var/` on one machine) shares the limit: GREENROOM_DOWNLOAD_CONCURRENCY
downloads at once, each starting at least GREENROOM_DOWNLOAD_PAUSE seconds after the previous
one. Waiting for a slot is bounded; past the bound the download is deferred like any transient
registry error, and retried.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.cache import cache

from reviews.mirror.registry import Unavailable

SLOT_KEY = "greenroom:download-slot:{}"
LAST_START_KEY = "greenroom:download-last-start"
POLL_SECONDS = 0.2

# Seams for the tests: the clock and the sleep the waits use.
clock: Callable[[], float] = time.time
sleep: Callable[[float], None] = time.sleep


class NoDownloadSlot(Unavailable):
    """Every download slot stayed taken for the whole wait; the download is tried later."""


@contextmanager
def download_slot(max_wait: float | None = None) -> Iterator[None]:
    """Hold one of the registry's download slots while the body runs, after the pause."""
    limit = max(1, int(settings.GREENROOM_DOWNLOAD_CONCURRENCY))
    wait = float(settings.GREENROOM_REGISTRY_TIMEOUT if max_wait is None else max_wait)
    # A slot outlives a killed worker by no more than this.
    hold = int(settings.GREENROOM_CLAIM_LEASE)
    key, token = _take_slot(limit, wait, hold)
    try:
        _pause()
        yield
    finally:
        if cache.get(key) == token:
            cache.delete(key)


def _take_slot(limit: int, wait: float, hold: int) -> tuple[str, str]:
    token = uuid.uuid4().hex
    deadline = clock() + wait
    while True:
        for slot in range(limit):
            key = SLOT_KEY.format(slot)
            if cache.add(key, token, timeout=hold):
                return key, token
        if clock() >= deadline:
            raise NoDownloadSlot(
                f"all {limit} download slots stayed busy for {wait:.0f} s "
                "(GREENROOM_DOWNLOAD_CONCURRENCY); trying again later"
            )
        sleep(POLL_SECONDS)


def _pause() -> None:
    pause = float(settings.GREENROOM_DOWNLOAD_PAUSE)
    if pause <= 0:
        return
    last = cache.get(LAST_START_KEY)
    now = clock()
    if isinstance(last, float) and now < last + pause:
        sleep(last + pause - now)
        now = clock()
    cache.set(LAST_START_KEY, now, timeout=max(1, int(pause) + 1))
