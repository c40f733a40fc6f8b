"""Requests per token in fixed windows, counted in Django's cache (Redis in production, so every
web process shares the count; the file cache locally).

A fixed window lets a client make up to twice the limit around a window's edge; that is the
price of one cache key and two cache calls per request, and it is plenty against a loop gone
wrong in a CI job, which is what this is for.
"""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import cache


def retry_after(token_key: str, now: float | None = None) -> int | None:
    """Count one request of this token (named by a prefix of its digest, which no other token
    shares): None if it is within the limit, else the seconds until the window ends (for
    `Retry-After`)."""
    limit: int = settings.GREENROOM_API_RATE_LIMIT
    window: int = settings.GREENROOM_API_RATE_WINDOW
    if limit <= 0:
        return None
    now = time.time() if now is None else now
    number = int(now // window)
    key = f"greenroom:api-rate:{token_key}:{number}"
    cache.add(key, 0, timeout=window + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # the key expired between add and incr: this is the window's first call
        cache.set(key, 1, timeout=window + 1)
        count = 1
    if count <= limit:
        return None
    return max(1, math.ceil((number + 1) * window - now))
