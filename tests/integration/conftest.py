"""Real processes around one database: `manage.py sync_stages` runs and a Celery worker on
Redis, against a live dev registry in the test process.

pytest-django's SQLite test database lives in memory, where no other process can reach it, so
these tests get a database of their own on the same server as the suite's: a migrated SQLite
file (copied per test) or a PostgreSQL database (cloned per test from a migrated template).
The test reads and changes rows in it with plain SQL.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from django.conf import settings
from psycopg.sql import SQL, Identifier

from devregistry.testing import LiveRegistry
from tests.mirror.live import Registry

ROOT = Path(__file__).resolve().parents[2]
SUBPROCESS_TIMEOUT = 60


@dataclass
class SharedDatabase:
    """A database both this process and its subprocesses use."""

    url: str
    _connect: Callable[[], Any]
    _placeholder: str
    hour_ago: str  # an SQL expression for this database

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with closing(self._connect()) as conn:
            cursor = conn.cursor()
            cursor.execute(sql.replace("%s", self._placeholder), params)
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        with closing(self._connect()) as conn:
            conn.cursor().execute(sql.replace("%s", self._placeholder), params)
            conn.commit()

    def age_queue_marks(self) -> None:
        """Moves every download's queued mark an hour back, past its lease."""
        sql = "UPDATE reviews_stagedversion SET download_queued_at = {}"
        self.execute(sql.format(self.hour_ago))

    def expire_download_claims(self) -> None:
        """Moves every live download claim an hour back, past its lease."""
        sql = "UPDATE reviews_stagedversion SET download_claimed_at = {} WHERE {} IS NOT NULL"
        self.execute(sql.format(self.hour_ago, "download_claimed_at"))

    def stages(self) -> dict[str, dict[str, Any]]:
        """Every StagedVersion row, by stage id."""
        rows = self.rows(
            "SELECT stage_id, package_name, state, integrity, integrity_reason, "
            "published_shasum_matches, download_claimed_at, download_claim, download_attempts, "
            "tarball_id "
            "FROM reviews_stagedversion"
        )
        return {str(uuid.UUID(str(row["stage_id"]))): row for row in rows}


def _django_env(database_url: str, tmp: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GREENROOM_", "DJANGO_", "CELERY_", "PYTEST_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        DEBUG="1",
        DATABASE_URL=database_url,
        GREENROOM_VAR_DIR=str(tmp / "var"),
        PYTHONPATH=str(ROOT),
    )
    return env


def _migrate(database_url: str, tmp: Path) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=_django_env(database_url, tmp),
        check=True,
        timeout=SUBPROCESS_TIMEOUT,
    )


def _postgres_params() -> dict[str, Any]:
    db = settings.DATABASES["default"]
    return {
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
    }


def _postgres_url(name: str) -> str:
    p = _postgres_params()
    auth = p["user"] or ""
    if p["password"]:
        auth += f":{p['password']}"
    return f"postgres://{auth}@{p['host'] or 'localhost'}:{p['port'] or 5432}/{name}"


def _create_postgres_database(name: str, template: str | None = None) -> None:
    query = SQL("CREATE DATABASE {}").format(Identifier(name))
    if template:
        query += SQL(" TEMPLATE {}").format(Identifier(template))
    with psycopg.connect(dbname="postgres", autocommit=True, **_postgres_params()) as conn:
        conn.execute(query)


def _drop_postgres_database(name: str) -> None:
    query = SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(Identifier(name))
    with psycopg.connect(dbname="postgres", autocommit=True, **_postgres_params()) as conn:
        conn.execute(query)


def _is_postgres() -> bool:
    return bool(settings.DATABASES["default"]["ENGINE"].endswith("postgresql"))


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database to copy: a SQLite file path, or a PostgreSQL database name."""
    tmp = tmp_path_factory.mktemp("shared-db")
    if _is_postgres():
        name = f"greenroom_it_{uuid.uuid4().hex[:12]}"
        _create_postgres_database(name)
        try:
            _migrate(_postgres_url(name), tmp)
            yield name
        finally:
            _drop_postgres_database(name)
    else:
        path = tmp / "template.sqlite3"
        _migrate(f"sqlite:///{path}", tmp)
        yield str(path)


@pytest.fixture
def shared_db(migrated_template: str, tmp_path: Path) -> Iterator[SharedDatabase]:
    if _is_postgres():
        name = f"greenroom_it_{uuid.uuid4().hex[:12]}"
        _create_postgres_database(name, template=migrated_template)
        try:
            yield SharedDatabase(
                _postgres_url(name),
                lambda: psycopg.connect(dbname=name, **_postgres_params()),
                "%s",
                "now() - interval '1 hour'",
            )
        finally:
            _drop_postgres_database(name)
    else:
        path = tmp_path / "shared.sqlite3"
        shutil.copy(migrated_template, path)
        yield SharedDatabase(
            f"sqlite:///{path}",
            lambda: sqlite3.connect(path, timeout=20),
            "?",
            "datetime('now', '-1 hour')",
        )


@pytest.fixture
def registry(live_registry: LiveRegistry, capsys: pytest.CaptureFixture[str]) -> Registry:
    return Registry(live_registry, capsys)


@dataclass
class Portal:
    """How to start portal processes on the shared database and the live registry."""

    env: dict[str, str]
    tarball_dir: Path

    def command(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "manage.py", "sync_stages", *args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def sync(self, *args: str) -> str:
        """Runs `manage.py sync_stages` to the end; its one line of output."""
        process = self.command(*args)
        out, err = process.communicate(timeout=SUBPROCESS_TIMEOUT)
        assert process.returncode == 0, err
        return out


@pytest.fixture
def portal(shared_db: SharedDatabase, registry: Registry, tmp_path: Path) -> Portal:
    env = _django_env(shared_db.url, tmp_path)
    env.update(
        GREENROOM_REGISTRY_URL=registry.url,
        GREENROOM_SYNC_TOKEN=registry.sync_token,
        GREENROOM_REGISTRY_TIMEOUT="5",
        GREENROOM_TARBALL_DIR=str(tmp_path / "tarballs"),
        LOG_LEVEL="WARNING",
    )
    return Portal(env, tmp_path / "tarballs")


def stop(process: subprocess.Popen[Any], grace: float = 10) -> None:
    """Ends a process this test started (and its children): politely, then not."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace)
    except ProcessLookupError:
        pass


def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, details: Callable[[], str] = str
) -> None:
    """Polls `condition` until it holds; past `timeout`, fails saying what and `details()`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{details()}")
        time.sleep(0.1)


@dataclass
class Worker:
    """A Celery worker subprocess consuming this test's queues on Redis."""

    process: subprocess.Popen[str]
    broker_url: str
    queue: str
    log: Path

    def send(self, task_name: str, *args: Any) -> None:
        from celery import Celery

        producer = Celery("greenroom-integration-test", broker=self.broker_url)
        try:
            producer.send_task(task_name, args=args, queue=self.queue)
        finally:
            producer.close()

    def output(self) -> str:
        return "worker log:\n" + self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL, like the OOM killer: no task is finished, acknowledged or released."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("GREENROOM_TEST_REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as e:
        pytest.fail(f"the integration tests need Redis at {url} (GREENROOM_TEST_REDIS_URL): {e}")
    return url


@dataclass
class BrokerQueues:
    """This test's own queues on Redis (the default one and the analysis one) and the
    environment that points portal processes at them."""

    broker_url: str
    task: str
    analysis: str

    @property
    def env(self) -> dict[str, str]:
        return {
            "CELERY_BROKER_URL": self.broker_url,
            "GREENROOM_TASK_QUEUE": self.task,
            "GREENROOM_ANALYSIS_QUEUE": self.analysis,
        }

    def lengths(self) -> tuple[int, int]:
        """Messages waiting in the default queue and in the analysis queue."""
        client = redis.Redis.from_url(self.broker_url)
        return int(client.llen(self.task)), int(client.llen(self.analysis))


@pytest.fixture
def broker_queues(redis_url: str) -> Iterator[BrokerQueues]:
    name = f"greenroom-it-{uuid.uuid4().hex[:12]}"
    queues = BrokerQueues(redis_url, name, f"{name}-analysis")
    yield queues
    client = redis.Redis.from_url(redis_url)
    for queue in (queues.task, queues.analysis):
        client.delete(queue, f"_kombu.binding.{queue}")
        forget_unacked(client, queue)


@pytest.fixture
def start_worker(
    portal: Portal, broker_queues: BrokerQueues, tmp_path: Path
) -> Iterator[Callable[..., Worker]]:
    """`start_worker(**environment)` starts a Celery worker on this test's own queues (the
    same for all, so a worker started after another was killed takes up its queues); all are
    stopped at the end."""
    started: list[Worker] = []

    def start(**environment: str) -> Worker:
        env = {**portal.env, **broker_queues.env}
        env.update(LOG_LEVEL="INFO", **environment)
        log = tmp_path / f"worker-{len(started)}.log"
        with log.open("w") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.integration.worker"],
                cwd=ROOT,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        started.append(Worker(process, broker_queues.broker_url, broker_queues.task, log))
        return started[-1]

    try:
        yield start
    finally:
        for worker in started:
            stop(worker.process)


@pytest.fixture
def worker(start_worker: Callable[..., Worker]) -> Worker:
    return start_worker()


def forget_unacked(client: redis.Redis, queue: str) -> None:
    """Drops the messages a killed worker of this queue left unacknowledged, and only those
    (other tests' workers share the broker), so they are not restored into a queue no one
    reads an hour later."""
    for tag, entry in client.hscan_iter("unacked"):
        try:
            routing_key = json.loads(entry)[2]
        except (ValueError, IndexError, TypeError):
            continue
        if routing_key == queue:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)
