"""Locust scenario for `python -m bench.bench_load` (which prepares the data and runs it):
reviewers on the dashboard, stage pages and file diffs, and clients polling a stage's decision.

Every simulated person uses a session prepared by the driver (the portal in production mode
marks its cookies Secure, which a client on plain HTTP over loopback would not send back, so
the session cookie is set by hand). Bounded twice: by locust's --run-time, and by
GREENROOM_LOAD_MAX_REQUESTS requests in all, after which the run stops itself.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any
from urllib.parse import quote

from locust import HttpUser, between, constant_pacing, events, task
from locust.env import Environment

PLAN: dict[str, Any] = json.loads(Path(os.environ["GREENROOM_LOAD_PLAN"]).read_text())
MAX_REQUESTS = int(os.environ.get("GREENROOM_LOAD_MAX_REQUESTS", "200000"))
HTMX = {"HX-Request": "true", "HX-Target": "diff"}


RUN: dict[str, Environment] = {}


def remember(environment: Environment, **kwargs: Any) -> None:
    RUN["environment"] = environment


def stop_at_the_budget(**kwargs: Any) -> None:
    runner = RUN["environment"].runner if "environment" in RUN else None
    if runner is not None and runner.stats.total.num_requests >= MAX_REQUESTS:
        runner.quit()


events.init.add_listener(remember)  # type: ignore[no-untyped-call]
events.request.add_listener(stop_at_the_budget)  # type: ignore[no-untyped-call]


class Person(HttpUser):
    abstract = True

    def on_start(self) -> None:
        session = random.choice(PLAN["sessions"])
        self.client.headers["Cookie"] = f"sessionid={session}"
        # A request answered with the login page is a failure, not a fast success.
        self.client.headers["Accept"] = "text/html"


class Reviewer(Person):
    weight = 4
    wait_time = between(1, 3)  # reading between clicks

    @task(3)
    def dashboard(self) -> None:
        self._get("/", name="dashboard")

    @task(3)
    def stage_page(self) -> None:
        stage = random.choice(PLAN["stages"])
        self._get(f"/stages/{stage['id']}/", name="stage page")

    @task(2)
    def file_diff(self) -> None:
        stage = random.choice([s for s in PLAN["stages"] if s["files"]])
        path = quote(random.choice(stage["files"]))
        self._get(f"/stages/{stage['id']}/files/{path}", name="file diff", headers=HTMX)

    def _get(self, url: str, *, name: str, headers: dict[str, str] | None = None) -> None:
        with self.client.get(
            url, name=name, headers=headers, allow_redirects=False, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")


class DecisionPoller(Person):
    """A client (CI waiting for an approval) polling one stage's decision every 2 s."""

    weight = 1
    wait_time = constant_pacing(2)

    def on_start(self) -> None:
        super().on_start()
        self.stage = random.choice(PLAN["stages"])

    @task
    def poll_decision(self) -> None:
        with self.client.get(
            f"/stages/{self.stage['id']}/decision/",
            name="decision poll",
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
