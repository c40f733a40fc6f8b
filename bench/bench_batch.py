"""Batch approval of 100 stages against the dev registry on loopback: wall time, requests, and
the portal's own time per item (everything but waiting for the registry's answers).

    .venv/bin/python -m bench.bench_batch                 # 100 stages, 3 runs
    .venv/bin/python -m bench.bench_batch --stages 30 --runs 5
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python -m bench.bench_batch

Each run: a fresh dev registry (a child process, as in production), the stages staged over
HTTP by a CI user and maintained by a person with TOTP 2FA, a portal database (SQLite in a
temporary folder) that synced and downloaded them; then `batches.run()` approves them with one
code, as the approve view does. With DATABASE_URL naming PostgreSQL, the portal's database is
one of its own beside it (dropped after), as in bench_sync. Requests are counted from the
registry's own log (one line per request); the registry's share is the time spent inside HTTP
calls. Figures go to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from bench.bench_sync import bench_database

ROOT = Path(__file__).resolve().parent.parent
OVERHEAD_TARGET_MS = 50.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stages", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [one_run(args.stages) for _ in range(args.runs)]
    report(args.stages, runs)


def one_run(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="greenroom-bench-batch-") as tmp:
        work = Path(tmp)
        secret, tokens = make_users(work / "registry")
        log = work / "registry.log"
        with log.open("w") as log_file:
            serve = ["serve", "--port", "0", "--data", str(work / "registry")]
            registry = subprocess.Popen(
                [sys.executable, "-m", "devregistry", *serve],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=log_file,
                text=True,
            )
            try:
                assert registry.stdout is not None
                url = registry.stdout.readline().rsplit(" ", 1)[-1].strip()
                stage_monorepo(url, tokens["ci"], count)
                share_packages(work / "registry", count)
                with bench_database(work) as database_url:
                    return run_portal(work, url, tokens, secret, log, database_url)
            finally:
                registry.terminate()
                registry.wait(timeout=10)


def make_users(data: Path) -> tuple[str, dict[str, str]]:
    from devregistry import accounts, otp
    from devregistry.store import Store

    secret = otp.new_secret()
    store = Store(data)
    with store.write() as state:
        accounts.add_user(state, "ci", "ci-password")
        accounts.add_user(state, "alice", "alice-password", None, secret)
        tokens = {
            "ci": accounts.create_token(state, "ci"),
            "sync": accounts.create_token(state, "ci", read_only=True),
            "alice": accounts.create_token(state, "alice"),
        }
    store.close()
    return secret, tokens


def name_of(index: int) -> str:
    return f"@mono/p{index:03d}"


def stage_monorepo(url: str, token: str, count: int) -> None:
    """Each package depends on the one staged before it, half of them on two: a deep chain."""
    from tests.support.packages import build_tarball, escaped, publish_body

    with requests.Session() as session:
        for index in range(count):
            name = name_of(index)
            dependencies = {name_of(i): "^1.0.0" for i in (index - 1, index // 2) if 0 <= i < index}
            manifest = {"gitHead": "0" * 40, "dependencies": dependencies}
            tarball = build_tarball(name, "1.0.0", manifest=manifest)
            answer = session.post(
                f"{url}-/stage/package/{escaped(name)}",
                json=publish_body(name, "1.0.0", tarball, "latest", manifest),
                headers={"authorization": f"Bearer {token}", "npm-command": "stage"},
                timeout=30,
            )
            answer.raise_for_status()


def share_packages(data: Path, count: int) -> None:
    from devregistry import packages
    from devregistry.store import Store

    store = Store(data)
    with store.write() as state:
        for index in range(count):
            packages.add_maintainer(state, name_of(index), "alice")
    store.close()


def run_portal(
    work: Path, url: str, tokens: dict[str, str], secret: str, log: Path, database_url: str
) -> dict[str, Any]:
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": database_url,
        "GREENROOM_VAR_DIR": str(work / "var"),
        "GREENROOM_REGISTRY_URL": url,
        "GREENROOM_SYNC_TOKEN": tokens["sync"],
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "REDIS_URL": "",
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_batch", "--portal", tokens["alice"], secret, str(log)],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def portal_side(alice_token: str, secret: str, log: Path) -> None:
    """In a child process with the bench's settings: sync, then one timed batch run."""
    import django

    django.setup()
    import pyotp
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from reviews.audit.trail import Actor
    from reviews.decide import batches, npm_tokens
    from reviews.mirror import sync
    from reviews.models import Batch, Membership, PackagePattern, Role, StagedVersion, Team

    sync.sync_stages()
    for stage in StagedVersion.objects.all():
        sync.download_stage(stage.pk)
    team = Team.objects.create(name="Mono", slug="mono")
    PackagePattern.objects.create(team=team, pattern="@mono/*")
    user = User.objects.create_user("approver")
    Membership.objects.create(team=team, user=user, role=Role.APPROVER)
    actor = Actor(user=user)
    npm_tokens.link(user, alice_token, actor)
    stages = list(StagedVersion.objects.select_related("tarball"))
    started = time.perf_counter()
    batch = batches.create(stages, user, actor)
    created = time.perf_counter() - started

    in_http = [0.0]
    send = requests.Session.send

    def timed_send(self: requests.Session, request: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return send(self, request, **kwargs)
        finally:
            in_http[0] += time.perf_counter() - began

    requests.Session.send = timed_send  # type: ignore[method-assign]
    commit_ms = commit_latency(batch)
    lines_before = len(log.read_text().splitlines())
    started, cpu_started = time.perf_counter(), time.process_time()
    with CaptureQueriesContext(connection) as queries:
        if os.environ.get("BENCH_PROFILE"):
            import cProfile
            import pstats

            with cProfile.Profile() as profile:
                batches.run(batch, user, pyotp.TOTP(secret).now(), actor)
            stats = pstats.Stats(profile, stream=sys.stderr)
            stats.sort_stats(os.environ["BENCH_PROFILE"]).print_stats(30)
        else:
            batches.run(batch, user, pyotp.TOTP(secret).now(), actor)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    requests.Session.send = send  # type: ignore[method-assign]
    request_lines = log.read_text().splitlines()[lines_before:]
    batch.refresh_from_db()
    items = batch.items.count()
    statements = [query["sql"] for query in queries.captured_queries]
    if os.environ.get("BENCH_QUERIES"):
        print("\n".join(sql[:150] for sql in statements), file=sys.stderr)
    print(
        json.dumps(
            {
                "items": items,
                "done": batch.items.filter(state="done").count(),
                "state": batch.state,
                "finished": batch.state == Batch.State.FINISHED,
                "create seconds": created,
                "wall seconds": wall,
                "registry seconds": in_http[0],
                "portal cpu seconds": cpu,
                "requests": len(request_lines),
                "request kinds": _kinds(request_lines),
                "statements": len(statements),
                "durable writes": durable_writes(statements),
                "commit ms": commit_ms,
            }
        )
    )


def commit_latency(batch: Any) -> float:
    """What one small durable write costs on this machine now (median of 20), in ms."""
    from django.utils import timezone

    from reviews.models import Batch

    times = []
    for _ in range(20):
        began = time.perf_counter()
        Batch.objects.filter(pk=batch.pk).update(finished_at=timezone.now())
        times.append(1000 * (time.perf_counter() - began))
    Batch.objects.filter(pk=batch.pk).update(finished_at=None)
    return statistics.median(times)


def durable_writes(statements: list[str]) -> int:
    """Commits: each transaction's COMMIT, and each write outside a transaction (SQLite shows
    both; PostgreSQL's BEGIN and COMMIT are not statements Django records)."""
    count, in_transaction = 0, False
    for sql in statements:
        verb = sql.split(" ", 1)[0].upper()
        if verb == "BEGIN":
            in_transaction = True
        elif verb == "COMMIT":
            in_transaction = False
            count += 1
        elif verb in {"UPDATE", "INSERT", "DELETE"} and not in_transaction:
            count += 1
    return count


def _kinds(lines: list[str]) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for line in lines:
        method, path = line.split(" ")[:2]
        kind = f"{method} {'…/approve' if path.endswith('/approve') else path.split('/')[1:3]}"
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def report(count: int, runs: list[dict[str, Any]]) -> None:
    def median(key: str) -> float:
        return statistics.median(float(run[key]) for run in runs)

    overhead = [
        1000 * (run["wall seconds"] - run["registry seconds"]) / run["items"] for run in runs
    ]
    database = (
        "PostgreSQL" if os.environ.get("DATABASE_URL", "").startswith("postgres") else "SQLite"
    )
    print(f"{count} stages, {len(runs)} runs (medians), {os.cpu_count()} cores, {database}")
    rows = [
        ("approved", f"{min(run['done'] for run in runs)} of {count}", "all"),
        ("creating the batch (order, checks)", f"{median('create seconds'):.2f} s", ""),
        ("approving: wall time", f"{median('wall seconds'):.2f} s", ""),
        ("  of which waiting for the registry", f"{median('registry seconds'):.2f} s", ""),
        ("registry requests", f"{median('requests'):.0f}", f"{2 * count} (GET + approve each)"),
        (
            "portal overhead per item",
            f"{statistics.median(overhead):.1f} ms",
            f"< {OVERHEAD_TARGET_MS:.0f} ms",
        ),
        (
            "  of which the portal's own CPU",
            f"{1000 * median('portal cpu seconds') / count:.1f} ms",
            "(the rest: waiting for a core, the database)",
        ),
        ("  SQL statements per item", f"{median('statements') / count:.1f}", ""),
        ("  durable writes (commits) per item", f"{median('durable writes') / count:.1f}", ""),
        ("  one small commit on this machine now", f"{median('commit ms'):.1f} ms", ""),
    ]
    width = max(len(row[0]) for row in rows)
    for what, measured, target in rows:
        print(f"  {what:<{width}}  {measured:>12}  {target}")
    print(f"  request kinds (last run): {runs[-1]['request kinds']}")
    print(f"  overhead per run, ms/item: {', '.join(f'{o:.1f}' for o in overhead)}")
    print(f"  load average before the last run: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--portal":
        sys.path.insert(0, str(ROOT))
        portal_side(sys.argv[2], sys.argv[3], Path(sys.argv[4]))
    else:
        main()
