"""Several workers and one beat, as a real organisation runs them: two Celery worker processes
on Redis and Celery beat, on PostgreSQL. The sync, the downloads, the analyses and the emails
of 200 stages are each done once, although one worker is killed half way through.

SQLite is one file on one machine, the demo's setup: this runs on PostgreSQL only (CI sets
DATABASE_URL to it)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import (
    ROOT,
    BrokerQueues,
    Portal,
    SharedDatabase,
    Worker,
    _is_postgres,
    stop,
    wait_for,
)
from tests.mirror.live import Registry

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not _is_postgres(),
        reason="several workers share a database server: PostgreSQL only (set DATABASE_URL)",
    ),
]

STAGES = 200
PACKAGES = 20
EMAIL = "reviewer@example.com"
FAST = {
    "GREENROOM_SYNC_INTERVAL": "2",
    "GREENROOM_NOTIFY_INTERVAL": "2",
    "GREENROOM_CLAIM_LEASE": "4",  # a killed worker's claims are taken over within seconds
    # The dev registry on loopback needs no gentleness (reviews.mirror.throttle).
    "GREENROOM_DOWNLOAD_CONCURRENCY": "4",
    "GREENROOM_DOWNLOAD_PAUSE": "0",
}


ADD_REVIEWER = f"""
from django.contrib.auth.models import User
from reviews.models import Membership, PackagePattern, Role, Team
team = Team.objects.create(name="Fleet", slug="fleet")
PackagePattern.objects.create(team=team, pattern="fleet-*")
user = User.objects.create_user("rita", email="{EMAIL}")
Membership.objects.create(team=team, user=user, role=Role.REVIEWER)
"""


def add_reviewer(portal: Portal) -> None:
    """A team owning the fleet-* packages, with one member who gets every email (through the
    ORM in a process on the shared database, so every column gets its default)."""
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", ADD_REVIEWER],
        cwd=ROOT,
        env=portal.env,
        check=True,
        timeout=60,
    )


def count(db: SharedDatabase, sql: str) -> int:
    return int(next(iter(db.rows(sql)[0].values())))


@pytest.fixture
def beat(portal: Portal, broker_queues: BrokerQueues, tmp_path: Path) -> Iterator[Path]:
    log = tmp_path / "beat.log"
    env = {**portal.env, **broker_queues.env, **FAST, "LOG_LEVEL": "INFO"}
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(tmp_path / "beat-schedule"),
            ],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield log
    finally:
        stop(process)


def test_two_workers_and_one_beat_do_everything_once_though_a_worker_dies(
    registry: Registry,
    shared_db: SharedDatabase,
    portal: Portal,
    start_worker: Callable[..., Worker],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    for n in range(STAGES):
        registry.stage(f"fleet-{n % PACKAGES}", f"1.0.{n // PACKAGES}")
    add_reviewer(portal)
    outbox = tmp_path / "outbox"
    mail = {
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(outbox),
    }
    doomed = start_worker(**FAST, **mail)
    survivor = start_worker(**FAST, **mail)
    beat_log = request.getfixturevalue("beat")

    def details() -> str:
        return f"{doomed.output()}\n{survivor.output()}\nbeat:\n{beat_log.read_text()}"

    def verified() -> int:
        return count(
            shared_db, "SELECT count(*) FROM reviews_stagedversion WHERE integrity = 'verified'"
        )

    def analysed() -> int:
        return count(
            shared_db,
            "SELECT count(*) FROM reviews_stagebaseline b JOIN reviews_analysis a"
            " ON a.id = b.analysis_id WHERE a.status = 'done'",
        )

    wait_for(lambda: verified() >= STAGES // 2, 120, "half the downloads", details)
    doomed.kill()
    assert analysed() < STAGES, "the worker died with work left to do"

    def sent() -> int:
        return count(shared_db, "SELECT count(*) FROM reviews_notification WHERE status = 'sent'")

    wait_for(
        lambda: (verified(), analysed(), sent()) == (STAGES,) * 3,
        240,
        "every download, analysis and email",
        details,
    )

    # Each thing once: one row each, one audit entry per fact, one email per stage.
    once = {
        "stages": "SELECT count(*) FROM reviews_stagedversion",
        "stages seen": "SELECT count(*) FROM reviews_auditevent WHERE action = 'stage.seen'",
        "verdicts": "SELECT count(*) FROM reviews_auditevent WHERE action = 'tarball.verified'",
        "tarballs": "SELECT count(*) FROM reviews_tarball",
        "analyses": "SELECT count(*) FROM reviews_analysis",
        "baselines": "SELECT count(*) FROM reviews_stagebaseline",
        "new-stage events": "SELECT count(*) FROM reviews_notificationevent",
        "emails": "SELECT count(*) FROM reviews_notification",
    }
    assert {name: count(shared_db, sql) for name, sql in once.items()} == dict.fromkeys(
        once, STAGES
    )
    assert count(shared_db, "SELECT count(DISTINCT stage_id) FROM reviews_auditevent") == STAGES
    message_ids = re.findall(
        r"^Message-ID: (.+)$", "".join(p.read_text() for p in outbox.iterdir()), re.MULTILINE
    )
    assert len(message_ids) == STAGES, "no email sent twice, none missing"
    assert len(set(message_ids)) == STAGES
    assert all(EMAIL in p.read_text() for p in outbox.iterdir())
