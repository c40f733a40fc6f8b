"""State lives in the data directory: it survives restarts and is shared with CLI commands."""

from __future__ import annotations

import json
import subprocess
import sys

import requests

from devregistry.store import Store
from devregistry.testing import LiveRegistry
from tests.devregistry.conftest import People, StageApi
from tests.support import packages


def test_everything_survives_a_restart(live_registry, people: People, api: StageApi):
    url, token = live_registry.url, people.bob.token
    packages.publish(url, token, "kept", "1.0.0")
    stage_id = packages.stage(url, token, "kept", "1.1.0", tag="next")
    staged_before = api.tarball(people.bob, stage_id).content

    live_registry.restart()

    assert live_registry.url == url
    assert api.view(people.bob, stage_id).json()["tag"] == "next"
    assert api.tarball(people.bob, stage_id).content == staged_before
    assert requests.get(f"{url}kept", timeout=10).json()["dist-tags"] == {"latest": "1.0.0"}
    assert api.approve(people.bob, stage_id).status_code == 201
    assert "1.1.0" in requests.get(f"{url}kept", timeout=10).json()["versions"]


def test_a_second_registry_on_the_same_directory_sees_the_same_state(live_registry, people):
    stage_id = packages.stage(live_registry.url, people.bob.token, "shared-dir", "1.0.0")
    live_registry.stop()

    with LiveRegistry(live_registry.data_dir) as again:
        answer = StageApi(again).view(people.bob, stage_id)

    assert answer.status_code == 200


def test_state_is_json_and_tarballs_are_files(live_registry, people: People):
    stage_id = packages.stage(live_registry.url, people.bob.token, "@demo/files", "1.0.0")
    data = live_registry.data_dir

    state = json.loads((data / "state.json").read_text())

    assert stage_id in state["stages"]
    assert (data / "staged" / f"{stage_id}.tgz").is_file()
    assert (data / "tarballs" / "@demo%2Ffiles" / "0.0.0-stage.tgz").is_file()
    assert people.bob.token not in (data / "state.json").read_text()  # tokens stored hashed


def test_the_cli_changes_a_running_registry(live_registry, people: People):
    cli = [sys.executable, "-m", "devregistry"]
    data = ["--data", str(live_registry.data_dir)]
    subprocess.run([*cli, "adduser", "frank", "--password", "pw", *data], check=True)
    token = subprocess.run(
        [*cli, "token", "frank", *data], check=True, capture_output=True, text=True
    ).stdout.strip()

    answer = requests.get(
        f"{live_registry.url}-/whoami", headers={"authorization": f"Bearer {token}"}, timeout=10
    )

    assert answer.json() == {"username": "frank"}


def test_a_failed_write_leaves_no_trace(tmp_path):
    store = Store(tmp_path)
    with store.write() as state:
        state.next_seq = 5
    try:
        with store.write() as state:
            state.next_seq = 99
            raise RuntimeError("boom")
    except RuntimeError:
        pass

    with store.read() as state:
        assert state.next_seq == 5
