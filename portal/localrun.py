"""`make run`: the whole of Greenroom on one machine, in the foreground, with no outside services.

Starts the dev registry (seeded on first run), migrates, creates the demo portal users, runs the
first sync (downloads and analyses included), then runs the portal, two Celery workers (the
default queue and the analysis queue) and Celery beat together. Ctrl-C stops everything. With
DATABASE_URL and REDIS_URL set, the same stack runs on PostgreSQL and Redis.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Mirrors reviews/management/commands/create_demo_users.py (this file runs before Django).
DEMO_ROLES = {"alice": "team admin", "carol": "approver", "bob": "reviewer"}
PYTHON = sys.executable


def local_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DEBUG", "1")
    env.setdefault("GREENROOM_VAR_DIR", str(ROOT / "var"))
    env.setdefault("GREENROOM_DEV_REGISTRY_PORT", "4873")
    env.setdefault("GREENROOM_PORT", "8000")
    env.setdefault("LOG_FORMAT", "console")  # people read these; production logs JSON
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_step(args: list[str], env: dict[str, str]) -> None:
    subprocess.run(args, cwd=ROOT, env=env, check=True)


def seed_registry(data_dir: Path, env: dict[str, str]) -> dict[str, Any]:
    seed_file = data_dir / "seed.json"
    if not seed_file.exists():
        run_step([PYTHON, "-m", "devregistry", "seed", "--data", str(data_dir)], env)
    seed: dict[str, Any] = json.loads(seed_file.read_text())
    return seed


def first_sync(env: dict[str, str]) -> None:
    """Mirror, download and analyse the demo stages before the URL is printed, so the first
    look at the dashboard shows them ready (beat's first pass would come a minute later)."""
    print("Mirroring and analysing the staged versions…", flush=True)
    done = subprocess.run([PYTHON, "manage.py", "sync_stages"], cwd=ROOT, env=env, check=False)
    if done.returncode != 0:
        print("The first sync did not complete; the worker tries again within a minute.")


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing is listening on 127.0.0.1:{port} after {timeout:.0f} s")


def start(name: str, args: list[str], env: dict[str, str]) -> tuple[str, subprocess.Popen[bytes]]:
    # A process group of its own, so Ctrl-C reaches each child once, through us.
    return name, subprocess.Popen(args, cwd=ROOT, env=env, start_new_session=True)


def stop_all(processes: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    # SIGTERM to each main process only: Celery's worker shuts its own pool down cleanly, and
    # hangs if the pool's children are killed under it. What is left after 10 s gets SIGKILL.
    for _, process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + 10
    for _, process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def print_banner(env: dict[str, str], seed: dict[str, Any]) -> None:
    port = env["GREENROOM_PORT"]
    print("\n" + "=" * 72)
    print(f"Greenroom is running at http://127.0.0.1:{port}/   (Ctrl-C stops everything)")
    print(f"Dev registry: {env['GREENROOM_REGISTRY_URL']}")
    print("Portal logins (same names and passwords as the dev registry's users):")
    for user in seed["users"]:
        if user["name"] not in DEMO_ROLES:
            continue
        otp = f", TOTP secret {user['otp_secret']}" if user.get("otp_secret") else ""
        role = DEMO_ROLES[user["name"]]
        print(f"  {user['name']} / {user['password']}  ({role} in team Demo{otp})")
    print(f"  admin / {env['GREENROOM_DEMO_ADMIN_PASSWORD']} (staff)")
    print("Team Demo asks for 2 approving reviews; bob already requested changes on")
    print("tiny-colors 1.3.0, with a comment on line 4 of scripts/setup.js.")
    print("=" * 72 + "\n", flush=True)


def main() -> None:
    env = local_environment()
    var_dir = Path(env["GREENROOM_VAR_DIR"])
    var_dir.mkdir(parents=True, exist_ok=True)
    registry_dir = var_dir / "devregistry"
    registry_port = env["GREENROOM_DEV_REGISTRY_PORT"]

    seed = seed_registry(registry_dir, env)
    env.setdefault("GREENROOM_REGISTRY_URL", f"http://127.0.0.1:{registry_port}/")
    env.setdefault("GREENROOM_SYNC_TOKEN", seed["sync_token"])
    env.setdefault("GREENROOM_DEMO_ADMIN_PASSWORD", "greenroom-admin")

    registry = [PYTHON, "-m", "devregistry", "serve", "--host", "127.0.0.1"]
    processes = [
        start("registry", [*registry, "--port", registry_port, "--data", str(registry_dir)], env)
    ]
    try:
        wait_for_port(int(registry_port))
        run_step([PYTHON, "manage.py", "migrate", "--no-input", "-v", "0"], env)
        # Links the demo people's npm tokens, which asks the running registry who they are.
        run_step([PYTHON, "manage.py", "create_demo_users", str(registry_dir / "seed.json")], env)
        first_sync(env)
        # A stage already under review (bob's verdict and line comment), once it is analysed.
        seed_file = str(registry_dir / "seed.json")
        run_step([PYTHON, "manage.py", "create_demo_users", seed_file, "--reviews"], env)
    except BaseException:
        stop_all(processes)
        raise
    celery = [PYTHON, "-m", "celery", "-A", "portal"]
    beat_schedule = str(var_dir / "celerybeat-schedule")
    # Two workers, one per queue (settings.CELERY_TASK_ROUTES): analyses have their own, so a
    # large one never holds up downloads, sync passes or emails.
    default_queue = env.get("GREENROOM_TASK_QUEUE") or "celery"
    analysis_queue = env.get("GREENROOM_ANALYSIS_QUEUE") or "analysis"
    worker = [*celery, "worker", "--loglevel", "INFO"]
    processes += [
        start("worker", [*worker, "-Q", default_queue, "-n", "default@%h", "-c", "2"], env),
        start("analysis", [*worker, "-Q", analysis_queue, "-n", "analysis@%h", "-c", "1"], env),
        start("beat", [*celery, "beat", "--loglevel", "INFO", "--schedule", beat_schedule], env),
        start(
            "portal",
            [PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{env['GREENROOM_PORT']}"],
            env,
        ),
    ]
    wait_for_port(int(env["GREENROOM_PORT"]))
    print_banner(env, seed)
    supervise(processes)


def stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def supervise(processes: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    # Even when started where SIGINT is ignored (a background job), Ctrl-C must stop us.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        while True:
            for name, process in processes:
                if process.poll() is not None:
                    print(f"{name} exited with status {process.returncode}; stopping.", flush=True)
                    raise SystemExit(1)
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nStopping Greenroom…", flush=True)
    finally:
        # Stopping is bounded (10 s, then SIGKILL); a second Ctrl-C must not leave orphans.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_all(processes)


if __name__ == "__main__":
    main()
