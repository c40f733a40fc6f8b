"""A new user's first minute: `make run` (portal.localrun), then at once the dashboard.

The whole stack runs as `make run` starts it (dev registry seeded, migrations, demo people,
first sync, portal, worker, beat) in a temporary folder on free ports; the test reads the pages
over HTTP the moment the banner says the portal is up.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
BANNER = "Greenroom is running at "
STARTUP_SECONDS = 120


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def first_run(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}
    }
    port = free_port()
    env.update(
        GREENROOM_VAR_DIR=str(tmp_path / "var"),
        GREENROOM_PORT=str(port),
        GREENROOM_DEV_REGISTRY_PORT=str(free_port()),
    )
    log = tmp_path / "run.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "portal.localrun"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while BANNER not in log.read_text(errors="replace"):
            assert process.poll() is None, "make run stopped:\n" + log.read_text()
            assert time.monotonic() < deadline, "no banner:\n" + log.read_text()
            time.sleep(0.2)
        seed = json.loads((tmp_path / "var" / "devregistry" / "seed.json").read_text())
        passwords = {user["name"]: user["password"] for user in seed["users"]}
        yield f"http://127.0.0.1:{port}", passwords
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def logged_in(base: str, name: str, password: str) -> requests.Session:
    session = requests.Session()
    form = session.get(f"{base}/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token is not None
    answer = session.post(
        f"{base}/login/",
        data={"username": name, "password": password, "csrfmiddlewaretoken": token.group(1)},
        headers={"Referer": f"{base}/login/"},
        timeout=10,
    )
    assert answer.ok
    assert "Log out" in answer.text, "the login failed"
    return session


@pytest.mark.integration
def test_the_dashboard_shows_six_analysed_stages_as_soon_as_the_url_is_printed(
    first_run: tuple[str, dict[str, str]],
) -> None:
    base, passwords = first_run
    carol = logged_in(base, "carol", passwords["carol"])
    dashboard = carol.get(f"{base}/", timeout=10).text
    stage_links = sorted(set(re.findall(r'href="(/stages/[0-9a-f-]{36}/)"', dashboard)))
    assert len(stage_links) == 6, dashboard

    for link in stage_links:
        page = carol.get(base + link, timeout=10).text
        assert "Not analysed yet" not in page, link
        assert 'id="review-pending"' not in page, link
        assert 'id="tree"' in page, link

    # The demo shows team review: a two-approval policy, and one stage already under review.
    reviewed = [carol.get(base + link, timeout=10).text for link in stage_links]
    under_review = [page for page in reviewed if "Changes requested by bob" in page]
    assert len(under_review) == 1
    assert "tiny-colors@1.3.0" in under_review[0]
    assert "Why does line 4 send the npm token" in under_review[0]
    assert "1 unresolved" in under_review[0]
    assert all("<strong>2</strong> approving reviews" in page for page in reviewed)
