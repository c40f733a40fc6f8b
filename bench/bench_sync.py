"""The sync at the scale of a large organisation: 10,000 stages staged over HTTP into the dev
registry, then a first sync pass and a pass with no change, against the targets of issue 21.

    .venv/bin/python -m bench.bench_sync                     # 10,000 stages
    .venv/bin/python -m bench.bench_sync --stages 2000       # a quicker look
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python -m bench.bench_sync                 # on PostgreSQL and Redis

On PostgreSQL it creates a database of its own beside the one DATABASE_URL names (and drops it
after); on SQLite a file in a temporary folder. With REDIS_URL, each pass also queues what it
hands out (a download per new stage) on a queue of its own, deleted after. Figures go to stdout.
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
VERSIONS_PER_PACKAGE = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stages", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="greenroom-bench-") as tmp:
        work = Path(tmp)
        registry, tokens = start_registry(work / "registry")
        try:
            url = registry_url(registry)
            staged_seconds = stage_over_http(url, tokens["write"], args.stages)
            figures = measure_sync(url, tokens["sync"], work, args.stages)
        finally:
            registry.terminate()
            registry.wait(timeout=10)
    figures["staging over HTTP"] = staged_seconds
    report(args.stages, figures)


# -- The dev registry, over HTTP ------------------------------------------------------------------


def start_registry(data: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    from devregistry import accounts
    from devregistry.store import Store

    store = Store(data)
    with store.write() as state:
        accounts.add_user(state, "bench", "bench-password")
        tokens = {
            "write": accounts.create_token(state, "bench"),
            "sync": accounts.create_token(state, "bench", read_only=True),
        }
    store.close()
    process = subprocess.Popen(
        [sys.executable, "-m", "devregistry", "serve", "--port", "0", "--data", str(data)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # one line per request: 10,000s of them
        text=True,
    )
    return process, tokens


def registry_url(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    return line.rsplit(" ", 1)[-1].strip()


def stage_body(name: str, version: str) -> dict[str, Any]:
    from devregistry import tarballs

    tarball = tarballs.build_tarball(name, version)
    meta: dict[str, Any] = {"name": name, "version": version, "_id": f"{name}@{version}"}
    meta["dist"] = {"integrity": tarballs.integrity(tarball), "shasum": tarballs.shasum(tarball)}
    return {
        "_id": name,
        "name": name,
        "dist-tags": {"latest": version},
        "versions": {version: meta},
        "access": "public",
        "_attachments": {
            f"{name}-{version}.tgz": {
                "content_type": "application/octet-stream",
                "data": base64.b64encode(tarball).decode("ascii"),
                "length": len(tarball),
            }
        },
    }


def stage_over_http(url: str, token: str, count: int) -> float:
    """Stages `count` versions one request after the other on a kept-alive connection."""
    bodies = [
        stage_body(f"bulk-{n // VERSIONS_PER_PACKAGE}", f"1.0.{n % VERSIONS_PER_PACKAGE}")
        for n in range(count)
    ]
    headers = {"authorization": f"Bearer {token}"}
    started = time.perf_counter()
    with requests.Session() as session:
        for body in bodies:
            answer = session.post(
                f"{url}-/stage/package/{body['name']}", json=body, headers=headers, timeout=30
            )
            answer.raise_for_status()
    return time.perf_counter() - started


# -- The portal's side ----------------------------------------------------------------------------


@contextmanager
def bench_database(work: Path) -> Iterator[str]:
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        yield f"sqlite:///{work / 'bench.sqlite3'}"
        return
    import psycopg

    name = f"greenroom_bench_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(base, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def measure_sync(url: str, sync_token: str, work: Path, count: int) -> dict[str, Any]:
    with bench_database(work) as database_url:
        env = {
            **os.environ,
            "DEBUG": "1",
            "DATABASE_URL": database_url,
            "GREENROOM_VAR_DIR": str(work / "var"),
            "GREENROOM_REGISTRY_URL": url,
            "GREENROOM_SYNC_TOKEN": sync_token,
            "GREENROOM_TASK_QUEUE": f"greenroom-bench-{uuid.uuid4().hex[:8]}",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "portal.settings",
        }
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        done = subprocess.run(
            [sys.executable, "-m", "bench.bench_sync", "--passes", str(count)],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
    import json

    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def run_passes(count: int) -> None:
    """In a child process with the bench's settings: two timed passes, statements counted."""
    import json

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from reviews.mirror import sync
    from reviews.models import StagedVersion
    from reviews.tasks import enqueue_pending_work

    broker = bool(settings.REDIS_URL)
    figures: dict[str, Any] = {"database": connection.vendor, "broker": broker}
    for name in ("first pass", "no-change pass"):
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            summary = sync.sync_stages()
        synced = time.perf_counter() - started
        pages = count // sync.PAGE_SIZE + 1
        figures[name] = {
            "sync seconds": synced,
            "statements": len(queries),
            "statements per page": len(queries) / pages,
            "new": summary.new,
            "listed": summary.listed,
        }
        if broker:
            started = time.perf_counter()
            downloads, analyses = enqueue_pending_work()
            figures[name]["enqueue seconds"] = time.perf_counter() - started
            figures[name]["messages"] = downloads + analyses
    figures["stages mirrored"] = StagedVersion.objects.count()
    if broker:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        queue = settings.CELERY_TASK_DEFAULT_QUEUE
        figures["queue length after both passes"] = client.llen(queue)
        client.delete(queue, f"_kombu.binding.{queue}")
    print(json.dumps(figures))


def report(count: int, figures: dict[str, Any]) -> None:
    first, again = figures["first pass"], figures["no-change pass"]
    print(f"{count} stages, database {figures['database']}, {os.cpu_count()} cores")
    rows = [
        ("staging over HTTP", f"{figures['staging over HTTP']:.1f} s", "≤ 120 s"),
        ("first pass (sync)", f"{first['sync seconds']:.1f} s", "≤ 30 s"),
        ("no-change pass (sync)", f"{again['sync seconds']:.1f} s", "≤ 5 s"),
        ("statements, first pass", f"{first['statements']}", "(was 150,102)"),
        ("statements per page, first", f"{first['statements per page']:.1f}", "constant"),
        ("statements per page, no change", f"{again['statements per page']:.1f}", "constant"),
        ("stages mirrored", f"{figures['stages mirrored']}", f"{count}"),
    ]
    if figures["broker"]:
        rows += [
            ("first pass, enqueue", f"{first['enqueue seconds']:.1f} s", ""),
            ("messages queued, first pass", f"{first['messages']}", f"{count}"),
            ("no-change pass, enqueue", f"{again['enqueue seconds']:.1f} s", ""),
            ("messages queued, no-change pass", f"{again['messages']}", "0"),
            ("queue length after both", f"{figures['queue length after both passes']}", "= count"),
        ]
    width = max(len(row[0]) for row in rows)
    for what, measured, target in rows:
        print(f"  {what:<{width}}  {measured:>10}  {target}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--passes":
        sys.path.insert(0, str(ROOT))
        run_passes(int(sys.argv[2]))
    else:
        main()
