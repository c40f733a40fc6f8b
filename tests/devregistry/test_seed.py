"""`python -m devregistry seed`: the demo holds what a reviewer must catch."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pyotp
import pytest
import requests

from devregistry.testing import LiveRegistry
from tests.devregistry.conftest import Person, StageApi
from tests.support.packages import escaped

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> tuple[Path, str]:
    data = tmp_path_factory.mktemp("seeded")
    done = subprocess.run(
        [sys.executable, "-m", "devregistry", "seed", "--data", str(data)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return data, done.stdout


@pytest.fixture
def demo(seeded) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((seeded[0] / "seed.json").read_text())
    return doc


@pytest.fixture
def registry(seeded):
    with LiveRegistry(seeded[0]) as live:
        yield live


@pytest.fixture
def sync(registry, demo) -> Person:
    return Person("portal-sync", demo["sync_token"])


@pytest.fixture
def stages(registry, sync) -> dict[str, dict[str, str]]:
    items = StageApi(registry).list(sync, perPage=100).json()["items"]
    return {f"{i['packageName']}@{i['version']}": i for i in items}


def members(registry, sync: Person, stage_id: str) -> dict[str, bytes]:
    data = StageApi(registry).tarball(sync, stage_id).content
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
        return {
            m.name.removeprefix("package/"): tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
        }


def packument(registry, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = requests.get(f"{registry.url}{escaped(name)}", timeout=10).json()
    return doc


def test_seed_json_has_users_and_the_sync_token(demo, seeded):
    users = {u["name"]: u for u in demo["users"]}

    assert {"alice", "bob"} <= set(users)
    assert set(users["alice"]) == {"name", "password", "email", "otp_secret", "token"}
    assert users["alice"]["otp_secret"]
    assert users["bob"]["otp_secret"] is None
    assert demo["sync_token"]
    for user in users.values():
        assert user["password"] in seeded[1]
        assert user["token"] in seeded[1]
    assert users["alice"]["otp_secret"] in seeded[1]
    assert demo["sync_token"] in seeded[1]


def test_users_can_log_in_with_the_printed_passwords(registry, demo):
    alice = next(u for u in demo["users"] if u["name"] == "alice")
    answer = requests.put(
        f"{registry.url}-/user/org.couchdb.user:alice",
        json={"name": "alice", "password": alice["password"]},
        headers={"npm-otp": pyotp.TOTP(alice["otp_secret"]).now()},
        timeout=10,
    )

    assert answer.status_code == 201


def test_the_sync_token_sees_every_stage_and_cannot_approve(registry, sync, stages):
    assert len(stages) == 6
    some = next(iter(stages.values()))

    assert StageApi(registry).approve(sync, some["id"]).status_code == 403


def test_a_stage_adds_an_install_script_and_a_dependency(registry, sync, stages):
    stage = stages["tiny-colors@1.3.0"]
    files = members(registry, sync, stage["id"])
    manifest = json.loads(files["package.json"])

    assert stage["actorType"] == "trusted automation"
    assert "postinstall" in manifest["scripts"]
    assert "node-fetch-lite" in manifest["dependencies"]
    published = packument(registry, "tiny-colors")
    assert list(published["versions"]) == ["1.0.0", "1.1.0", "1.2.0"]
    assert "scripts" not in published["versions"]["1.2.0"]


def test_a_stage_adds_a_bundle_and_a_binary_and_renames_files(registry, sync, stages):
    files = members(registry, sync, stages["fmt-kit@2.2.0"]["id"])

    assert len(files["dist/fmt.min.js"].split(b"\n")[0]) > 5000
    assert b"\x00" in files["native/fmt.node"][:8000]
    assert {"src/format.js", "src/util.js"} <= set(files)
    assert not any(name.startswith("lib/") for name in files)
    old = packument(registry, "fmt-kit")["versions"]["2.1.0"]
    assert old["main"] == "lib/format.js"


def test_a_first_release_has_only_the_placeholder(registry, stages):
    doc = packument(registry, "brand-new-thing")

    assert "brand-new-thing@1.0.0" in stages
    assert list(doc["versions"]) == ["0.0.0-stage"]


def test_a_prerelease_is_staged_on_next(stages):
    assert stages["query-lens@3.1.0-rc.1"]["tag"] == "next"


def test_a_stage_would_downgrade_latest(registry, stages):
    assert stages["date-tools@1.4.1"]["tag"] == "latest"
    assert packument(registry, "date-tools")["dist-tags"]["latest"] == "2.0.0"


def test_a_scoped_package(registry, sync, stages):
    files = members(registry, sync, stages["@demo/widgets@1.1.0"]["id"])

    assert ".env" in files
    assert "\u202e" in files["index.js"].decode()
    assert packument(registry, "@demo/widgets")["dist-tags"]["latest"] == "1.0.0"


def test_alice_needs_her_code_and_bob_does_not_maintain_everything(registry, demo, stages):
    users = {u["name"]: u for u in demo["users"]}
    api = StageApi(registry)
    alice = Person("alice", users["alice"]["token"], users["alice"]["otp_secret"])
    bob = Person("bob", users["bob"]["token"])

    # Both are refused here (nothing changes in the shared seed), for different reasons.
    assert api.approve(alice, stages["query-lens@3.1.0-rc.1"]["id"]).status_code == 401
    assert api.approve(bob, stages["query-lens@3.1.0-rc.1"]["id"]).status_code == 403


def test_carol_may_decide_every_demo_stage_she_did_not_stage(registry, demo, stages):
    users = {u["name"]: u for u in demo["users"]}
    carol = Person("carol", users["carol"]["token"], users["carol"]["otp_secret"])
    api = StageApi(registry)
    for key, stage in stages.items():
        # Asked for her code (401), never refused as a non-maintainer (403).
        assert api.approve(carol, stage["id"]).status_code == 401, key
        assert "carol" in [
            m["name"] for m in packument(registry, stage["packageName"])["maintainers"]
        ]


def test_seeding_again_refuses_without_force(seeded, tmp_path):
    data = tmp_path / "again"
    command = [sys.executable, "-m", "devregistry", "seed", "--data", str(data)]
    subprocess.run(command, cwd=ROOT, capture_output=True, check=True, timeout=60)
    first = json.loads((data / "seed.json").read_text())

    refused = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    forced = subprocess.run([*command, "--force"], cwd=ROOT, capture_output=True, timeout=60)

    assert refused.returncode == 2
    assert "--force" in refused.stderr
    assert forced.returncode == 0
    second = json.loads((data / "seed.json").read_text())
    assert second["sync_token"] != first["sync_token"]
    with LiveRegistry(data) as live:
        assert StageApi(live).list(Person("x", first["sync_token"])).status_code == 401
        total = StageApi(live).list(Person("x", second["sync_token"])).json()["total"]
    assert total == 6


def test_seed_stages_adds_bulk_stages_the_sync_token_lists(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "devregistry", "seed", "--data", str(tmp_path), "--stages", "150"],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=True,
    )
    doc = json.loads((tmp_path / "seed.json").read_text())
    with LiveRegistry(tmp_path) as live:
        api = StageApi(live)
        sync = Person("portal-sync", doc["sync_token"])
        first = api.list(sync, perPage=100).json()
        second = api.list(sync, perPage=100, page=1).json()

    assert doc["extra_stages"] == 150
    assert first["total"] == 156  # the six demo stages and the bulk ones
    listed = {f"{i['packageName']}@{i['version']}" for i in first["items"] + second["items"]}
    assert len(listed) == 156
    assert {"bulk-0@1.0.0", "bulk-0@1.0.99", "bulk-1@1.0.49"} <= listed
    assert {i["actorType"] for i in first["items"] if i["packageName"].startswith("bulk-")} == {
        "trusted automation"
    }
