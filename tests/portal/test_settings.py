"""Production settings fail loudly when incomplete and pass `check --deploy` when complete."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "k3J9-not-a-real-secret-but-long-and-varied-Qz8wLm2Xp4Rt6Yv0",
    "ALLOWED_HOSTS": "greenroom.example",
    "GREENROOM_BASE_URL": "https://greenroom.example",
    "GREENROOM_REGISTRY_URL": "https://registry.example/",
    "DATABASE_URL": "postgres://greenroom@127.0.0.1:5432/greenroom",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "GREENROOM_TOKEN_KEYS": "GV8eq-WYM3Ev2n6XiB6SRKg2AWnccJ0yKR40NsTc110=",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV}
    clean.pop("DJANGO_SETTINGS_MODULE", None)
    clean.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set by the browser tests, never in production
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={**PRODUCTION_ENV, "GREENROOM_VAR_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = {**PRODUCTION_ENV, "SECRET_KEY": "", "GREENROOM_VAR_DIR": str(tmp_path)}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def test_a_malformed_number_is_named(tmp_path):
    env = {**PRODUCTION_ENV, "GREENROOM_SYNC_INTERVAL": "soon", "GREENROOM_VAR_DIR": str(tmp_path)}
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "GREENROOM_SYNC_INTERVAL must be an integer" in result.stderr


def test_a_web_worker_freezes_what_it_loaded_so_full_collections_skip_it(tmp_path):
    clean = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV}
    clean.pop("DJANGO_SETTINGS_MODULE", None)
    code = (
        "import gc, sys, portal.wsgi; "
        "print(gc.get_freeze_count(), 'reviews.review.views' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, **PRODUCTION_ENV, "GREENROOM_VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    frozen, views_loaded = result.stdout.split()
    assert int(frozen) > 50_000  # Django, the app, the views: never garbage
    assert views_loaded == "True"
