"""`python -m devregistry ...` as a person or `make run` uses it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pyotp
import pytest
import requests

from devregistry.testing import LiveRegistry
from tests.support import packages

ROOT = Path(__file__).resolve().parents[2]


def devregistry(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devregistry", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_token_prints_only_the_token(tmp_path):
    devregistry("adduser", "ann", "--password", "pw", "--data", str(tmp_path))

    done = devregistry("token", "ann", "--data", str(tmp_path))

    assert done.returncode == 0
    assert re.fullmatch(r"npm_[0-9a-f]{36}\n", done.stdout)


def test_adduser_with_a_secret_makes_a_totp_user(tmp_path):
    secret = pyotp.random_base32()
    data = ["--data", str(tmp_path)]
    done = devregistry("adduser", "ann", "--password", "pw", "--otp-secret", secret, *data)
    token = devregistry("token", "ann", *data).stdout.strip()

    assert done.returncode == 0
    with LiveRegistry(tmp_path) as registry:
        with pytest.raises(packages.RegistryRefused) as refused:
            packages.publish(registry.url, token, "guarded", "1.0.0")
        packages.publish(registry.url, token, "guarded", "1.0.0", otp=pyotp.TOTP(secret).now())
    assert refused.value.response.headers["www-authenticate"] == "OTP"


def test_adduser_twice_fails_clearly(tmp_path):
    devregistry("adduser", "ann", "--password", "pw", "--data", str(tmp_path))

    done = devregistry("adduser", "ann", "--password", "pw", "--data", str(tmp_path))

    assert done.returncode == 1
    assert "already exists" in done.stderr


def test_read_only_tokens_from_the_cli_cannot_write(tmp_path):
    devregistry("adduser", "ann", "--password", "pw", "--data", str(tmp_path))
    token = devregistry("token", "ann", "--read-only", "--data", str(tmp_path)).stdout.strip()

    with LiveRegistry(tmp_path) as registry, pytest.raises(packages.RegistryRefused) as refused:
        packages.publish(registry.url, token, "ro", "1.0.0")

    assert refused.value.response.status_code == 403


def test_owner_add(tmp_path):
    data = ["--data", str(tmp_path)]
    for name in ("ann", "ben"):
        devregistry("adduser", name, "--password", "pw", *data)
    with LiveRegistry(tmp_path) as registry:
        token = registry.token("ann")
        packages.publish(registry.url, token, "owned", "1.0.0")

        done = devregistry("owner", "add", "owned", "ben", *data)

        doc = requests.get(f"{registry.url}owned", timeout=10).json()
    assert done.returncode == 0
    assert [m["name"] for m in doc["maintainers"]] == ["ann", "ben"]


def test_owner_add_of_an_unknown_package_fails(tmp_path):
    devregistry("adduser", "ann", "--password", "pw", "--data", str(tmp_path))

    done = devregistry("owner", "add", "nothing", "ann", "--data", str(tmp_path))

    assert done.returncode == 1
    assert "no package" in done.stderr


def test_data_defaults_to_the_environment(tmp_path):
    env = {**os.environ, "DEVREGISTRY_DATA": str(tmp_path / "from-env")}

    devregistry("adduser", "ann", "--password", "pw", env=env)

    assert (tmp_path / "from-env" / "state.sqlite3").is_file()


def test_serve_prints_its_url_first_and_stops_on_sigterm(tmp_path):
    server = subprocess.Popen(
        [sys.executable, "-m", "devregistry", "serve", "--port", "0", "--data", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        match = re.fullmatch(r"devregistry listening on (http://127\.0\.0\.1:\d+/)\n", first)
        assert match, first
        answer = requests.get(f"{match.group(1)}-/ping", timeout=10)
        assert answer.status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=10)
    assert server.returncode == 0
    assert "GET /-/ping 200" in stderr


def test_revoke_and_recovery_codes(tmp_path):
    data = ["--data", str(tmp_path)]
    devregistry("adduser", "ann", "--password", "pw", "--otp-secret", pyotp.random_base32(), *data)
    token = devregistry("token", "ann", *data).stdout.strip()

    codes = devregistry("recovery-codes", "ann", *data)
    revoked = devregistry("revoke", token, *data)
    unknown = devregistry("revoke", "npm_" + "0" * 36, *data)

    assert codes.returncode == 0
    assert re.fullmatch(r"([0-9a-f]{16}\n){5}", codes.stdout)
    assert (revoked.returncode, revoked.stdout) == (0, "revoked\n")
    assert (unknown.returncode, unknown.stderr) == (1, "no such token\n")
    with LiveRegistry(tmp_path, compat="other") as registry:
        whoami = requests.get(
            f"{registry.url}-/whoami", headers={"authorization": f"Bearer {token}"}, timeout=5
        )
    assert (whoami.status_code, whoami.json()) == (403, {"error": "unauthorized access"})
