"""A Celery worker for the integration tests: the portal's app, on a queue of the test's own
(GREENROOM_TEST_QUEUE), so tasks it enqueues itself stay away from any other worker."""

from __future__ import annotations

import os

from portal.celery import app


def main() -> None:
    queue = os.environ["GREENROOM_TEST_QUEUE"]
    app.conf.task_default_queue = queue
    app.worker_main(
        [
            "worker",
            "--queues",
            queue,
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
