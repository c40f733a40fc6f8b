"""A Celery worker for the integration tests: the portal's app, on queues of the test's own
(GREENROOM_TASK_QUEUE and GREENROOM_ANALYSIS_QUEUE, read by the settings), so tasks it enqueues
itself stay away from any other worker."""

from __future__ import annotations

import os

from portal.celery import app


def main() -> None:
    queues = os.environ.get("GREENROOM_WORKER_QUEUES") or ",".join(
        (os.environ["GREENROOM_TASK_QUEUE"], os.environ["GREENROOM_ANALYSIS_QUEUE"])
    )
    app.worker_main(
        [
            "worker",
            "--queues",
            queues,
            "--pool",
            "threads",
            "--concurrency",
            "2",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )


if __name__ == "__main__":
    main()
