"""Waiting for a decision: the call a release job loops on.

The request reads the stage's row again every half second (one indexed row by primary key)
until it is no longer pending or the wait is over. The number of looks is bounded by the wait,
whatever the clock does. Each waiting call holds one web worker thread: run the web process with
threads (see the README's Deploying section).
"""

from __future__ import annotations

import math
import time

from reviews.models import StagedVersion

POLL_INTERVAL = 0.5
MAX_WAIT = 60

# The one seam for tests: how the request waits between two looks.
pause = time.sleep


def wait_while_pending(stage: StagedVersion, seconds: int) -> StagedVersion:
    """The stage once it is decided or vanished, or after `seconds`, whichever comes first."""
    seconds = max(0, min(seconds, MAX_WAIT))
    deadline = time.monotonic() + seconds
    for _ in range(math.ceil(seconds / POLL_INTERVAL)):
        remaining = deadline - time.monotonic()
        if stage.state != StagedVersion.State.PENDING or remaining <= 0:
            break
        pause(min(POLL_INTERVAL, remaining))
        stage.refresh_from_db()
    return stage
