"""Load on the web tier: gunicorn on PostgreSQL and Redis, on loopback, under the locust
scenario of bench/locustfile.py, for a few numbers of simulated people.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \\
        .venv/bin/python -m bench.bench_load --users 50 200 --seconds 60

It seeds a dev registry (the demo and --stages more), mirrors, downloads and analyses every
stage into a database of its own (dropped after), signs in --people reviewers of a team owning
every package, starts gunicorn in production mode (DEBUG off) and runs locust headless once per
number of users, each run bounded by --seconds and --max-requests. Everything listens on
127.0.0.1 and stops by itself. Figures go to stdout.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from bench.bench_sync import bench_database

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

PREPARE = """
import json, sys
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from reviews.models import FileChangeRow, Membership, PackagePattern, Role, StagedVersion, Team

team = Team.objects.create(name="Load", slug="load")
PackagePattern.objects.create(team=team, pattern="*")
sessions = []
for n in range(int(sys.argv[1])):
    user = User.objects.create_user(f"reviewer{n}", email=f"reviewer{n}@example.com")
    Membership.objects.create(team=team, user=user, role=Role.REVIEWER)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    sessions.append(session.session_key)
stages = []
for stage in StagedVersion.objects.filter(state="pending").select_related("review_baseline"):
    analysis = getattr(getattr(stage, "review_baseline", None), "analysis_id", None)
    files = list(
        FileChangeRow.objects.filter(analysis_id=analysis)
        .exclude(status="unchanged")
        .values_list("path", flat=True)[:20]
    ) if analysis else []
    stages.append({"id": str(stage.stage_id), "files": files})
print(json.dumps({"sessions": sessions, "stages": stages}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


def run(args: list[str], env: dict[str, str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, env=env, check=True, text=True, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--stages", type=int, default=300, help="bulk stages besides the demo")
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--gunicorn-workers", type=int, default=5)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or not os.environ.get(
        "REDIS_URL"
    ):
        raise SystemExit("set DATABASE_URL (PostgreSQL) and REDIS_URL: this measures those")
    with tempfile.TemporaryDirectory(prefix="greenroom-load-") as tmp:
        work = Path(tmp)
        with bench_database(work) as database_url:
            results = measure(args, work, database_url)
    report(args, results)


def measure(args: argparse.Namespace, work: Path, database_url: str) -> list[dict[str, Any]]:
    registry_dir = work / "registry"
    base_env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run(
        [
            sys.executable,
            "-m",
            "devregistry",
            "seed",
            "--data",
            str(registry_dir),
            "--stages",
            str(args.stages),
        ],
        base_env,
        capture_output=True,
    )
    seed = json.loads((registry_dir / "seed.json").read_text())
    registry_port, web_port = free_port(), free_port()
    env = {
        **base_env,
        "DEBUG": "0",
        "SECRET_KEY": uuid.uuid4().hex * 2,
        "ALLOWED_HOSTS": "127.0.0.1",
        "GREENROOM_BASE_URL": f"http://127.0.0.1:{web_port}",
        "GREENROOM_TOKEN_KEYS": Fernet.generate_key().decode(),
        "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": database_url,
        "DATABASE_CONN_MAX_AGE": "60",
        "GREENROOM_VAR_DIR": str(work / "var"),
        "GREENROOM_REGISTRY_URL": f"http://127.0.0.1:{registry_port}/",
        "GREENROOM_SYNC_TOKEN": seed["sync_token"],
        "GREENROOM_TASK_QUEUE": f"greenroom-load-{uuid.uuid4().hex[:8]}",
        "LOG_LEVEL": "WARNING",
        "GREENROOM_DOWNLOAD_PAUSE": "0",  # the dev registry on loopback needs no gentleness
    }
    processes: list[subprocess.Popen[str]] = []
    try:
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "devregistry",
                    "serve",
                    "--port",
                    str(registry_port),
                    "--data",
                    str(registry_dir),
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        )
        wait_for_port(registry_port)
        run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], env)
        run([sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"], env)
        print("mirroring, downloading and analysing the stages…", flush=True)
        run([sys.executable, "manage.py", "sync_stages"], env, capture_output=True)
        prepared = run(
            [
                sys.executable,
                "manage.py",
                "shell",
                "-c",
                PREPARE.replace("sys.argv[1]", str(args.people)),
            ],
            env,
            capture_output=True,
        )
        plan = work / "plan.json"
        plan.write_text(prepared.stdout.strip().splitlines()[-1])
        processes.append(
            subprocess.Popen(
                [
                    str(BIN / "gunicorn"),
                    "portal.wsgi",
                    "--bind",
                    f"127.0.0.1:{web_port}",
                    "--workers",
                    str(args.gunicorn_workers),
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
                env=env,
                text=True,
            )
        )
        wait_for_port(web_port)
        return [run_locust(users, args, env, plan, web_port, work) for users in args.users]
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=20)


def run_locust(
    users: int, args: argparse.Namespace, env: dict[str, str], plan: Path, port: int, work: Path
) -> dict[str, Any]:
    prefix = work / f"locust-{users}"
    print(f"{users} users for {args.seconds} s…", flush=True)
    run(
        [
            str(BIN / "locust"),
            "-f",
            str(ROOT / "bench" / "locustfile.py"),
            "--headless",
            "--users",
            str(users),
            "--spawn-rate",
            str(max(1, users // 10)),
            "--run-time",
            f"{args.seconds}s",
            "--host",
            f"http://127.0.0.1:{port}",
            "--csv",
            str(prefix),
            "--only-summary",
            "--loglevel",
            "WARNING",
            "--stop-timeout",
            "5",
        ],
        {
            **env,
            "GREENROOM_LOAD_PLAN": str(plan),
            "GREENROOM_LOAD_MAX_REQUESTS": str(args.max_requests),
        },
        capture_output=True,
    )
    with open(f"{prefix}_stats.csv") as stats:
        rows = {row["Name"]: row for row in csv.DictReader(stats)}
    return {"users": users, "rows": rows}


def report(args: argparse.Namespace, results: list[dict[str, Any]]) -> None:
    print(
        f"\ngunicorn {args.gunicorn_workers} sync workers, PostgreSQL, Redis, "
        f"{os.cpu_count()} cores; {args.stages + 6} stages; {args.seconds} s per run"
    )
    names = ["Aggregated", "dashboard", "stage page", "file diff", "decision poll"]
    print(
        f"{'users':>5}  {'what':<14} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'p99 ms':>7} {'requests':>9} {'failures':>9}"
    )
    for result in results:
        for name in names:
            row = result["rows"].get(name)
            if row is None:
                continue
            print(
                f"{result['users']:>5}  {name:<14} {float(row['Requests/s']):>7.1f} "
                f"{row['50%']:>7} {row['95%']:>7} {row['99%']:>7} "
                f"{row['Request Count']:>9} {row['Failure Count']:>9}"
            )


if __name__ == "__main__":
    main()
