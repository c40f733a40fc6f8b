"""State lives in the data directory: it survives restarts and is shared with CLI commands."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests

from devregistry import accounts
from devregistry.models import State
from devregistry.store import Store, database_rows
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


def test_state_is_a_database_and_tarballs_are_files(live_registry, people: People):
    stage_id = packages.stage(live_registry.url, people.bob.token, "@demo/files", "1.0.0")
    data = live_registry.data_dir

    stages = database_rows(data, "SELECT id, package_name, version FROM stages")
    everything = "\n".join(doc for (doc,) in database_rows(data, "SELECT doc FROM records"))

    assert (stage_id, "@demo/files", "1.0.0") in stages
    assert (data / "staged" / f"{stage_id}.tgz").is_file()
    assert (data / "tarballs" / "@demo%2Ffiles" / "0.0.0-stage.tgz").is_file()
    assert people.bob.token not in everything  # tokens stored hashed
    assert not (data / "state.json").exists()


def test_a_write_saves_only_what_it_touched(tmp_path):
    store = Store(tmp_path)
    with store.write() as state:
        accounts.add_user(state, "ann", "pw")
        accounts.add_user(state, "bea", "pw")
    database_rows(tmp_path, "SELECT 1")  # the file exists
    with store.write() as state:
        state.users["ann"].email = "ann@changed.example"

    # Another store on the directory (another process) sees the change, and only it.
    with Store(tmp_path).read() as state:
        assert state.users["ann"].email == "ann@changed.example"
        assert state.users["bea"].email == "bea@example.com"


def test_a_version_staged_twice_is_refused_by_the_index(live_registry, people: People):
    url, token = live_registry.url, people.bob.token
    packages.stage(url, token, "twice", "1.0.0")

    with pytest.raises(packages.RegistryRefused) as refused:
        packages.stage(url, token, "twice", "1.0.0")

    assert refused.value.response.status_code == 409
    assert database_rows(live_registry.data_dir, "SELECT count(*) FROM stages") == [(1,)]


def test_a_rejected_version_can_be_staged_again(live_registry, people: People, api: StageApi):
    url, token = live_registry.url, people.bob.token
    first = packages.stage(url, token, "again", "1.0.0")
    assert api.reject(people.bob, first).status_code == 204

    second = packages.stage(url, token, "again", "1.0.0")

    assert second != first
    assert api.view(people.bob, second).status_code == 200


def test_a_state_json_from_an_older_registry_is_imported_once(tmp_path):
    legacy = State()
    accounts.add_user(legacy, "old", "pw")
    (tmp_path / "state.json").write_text(json.dumps(legacy.to_json()))

    with Store(tmp_path).read() as state:
        assert "old" in state.users

    assert not (tmp_path / "state.json").exists()
    assert (tmp_path / "state.json.imported").is_file()
    with Store(tmp_path).read() as state:
        assert list(state.users) == ["old"]


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


def test_a_failed_write_puts_back_the_records_it_changed(tmp_path):
    store = Store(tmp_path)
    with store.write() as state:
        accounts.add_user(state, "ann", "pw")

    def half_made_change() -> None:
        with store.write() as state:
            state.users["ann"].email = "half@made.example"
            accounts.add_user(state, "bea", "pw")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        half_made_change()

    with store.read() as state:
        assert state.users["ann"].email == "ann@example.com"
        assert "bea" not in state.users


def test_plain_fields_of_the_state_are_kept_whatever_they_are(tmp_path, monkeypatch):
    """A field added to State later (a setting, a counter) is saved and loaded without the
    store knowing it by name."""
    store = Store(tmp_path)
    with store.write() as state:
        state.next_seq = 41
        state.__dict__["extra_setting"] = {"mode": "strict"}
    monkeypatch.setattr(
        "devregistry.store._plain_fields", lambda state: ["next_seq", "extra_setting"]
    )
    with store.write() as state:
        state.__dict__["extra_setting"] = {"mode": "compatible"}

    fresh = Store(tmp_path)
    with fresh.read() as state:
        assert state.next_seq == 41
        assert state.__dict__["extra_setting"] == {"mode": "compatible"}
