"""The real npm CLI (11.15 or later, for `npm stage`) against the dev registry.

npm runs without a terminal (stdin is a pipe), as in CI, so it never prompts: a missing
one-time password is an EOTP error. `npm login`/`npm adduser` need a terminal to read the
username and password: they run on a pseudo-terminal.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import requests

from devregistry.testing import LiveRegistry
from tests.devregistry.conftest import People
from tests.support import packages
from tests.support.npm import run_npm, run_npm_in_terminal

pytestmark = pytest.mark.npm


def write_package(root: Path, name: str, version: str, **manifest) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    doc = {"name": name, "version": version, "main": "index.js", **manifest}
    (root / "package.json").write_text(json.dumps(doc, indent=2))
    (root / "index.js").write_text(f"module.exports = {json.dumps(version)}\n")
    return root


def ok(done) -> str:
    assert done.returncode == 0, done.stderr
    out: str = done.stdout
    return out


@pytest.fixture
def alice_env(live_registry, people: People, npm_env):
    return npm_env(live_registry, people.alice.token)


@pytest.fixture
def bob_env(live_registry, people: People, npm_env):
    return npm_env(live_registry, people.bob.token)


def test_stage_publish_list_view_download(tmp_path, live_registry, alice_env, people: People):
    first = write_package(tmp_path / "v1", "npm-staged", "1.0.0")
    second = write_package(tmp_path / "v2", "npm-staged", "1.1.0-beta.0")

    ok(run_npm(["stage", "publish"], alice_env, first))
    published = ok(run_npm(["stage", "publish", "--tag", "beta"], alice_env, second))
    listed = json.loads(ok(run_npm(["stage", "list", "--json"], alice_env, tmp_path)))

    assert [(i["version"], i["tag"]) for i in listed] == [
        ("1.1.0-beta.0", "beta"),
        ("1.0.0", "latest"),
    ]
    assert all(i["actor"] == "alice" and i["packageName"] == "npm-staged" for i in listed)
    beta = listed[0]
    assert beta["id"] in published

    viewed = json.loads(ok(run_npm(["stage", "view", beta["id"], "--json"], alice_env, tmp_path)))
    assert viewed == beta

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    ok(run_npm(["stage", "download", beta["id"]], alice_env, downloads))
    (tarball,) = downloads.glob("*.tgz")
    assert tarball.name == f"npm-staged-1.1.0-beta.0-{beta['id']}.tgz"
    assert hashlib.sha1(tarball.read_bytes(), usedforsecurity=False).hexdigest() == beta["shasum"]
    staged = requests.get(
        f"{live_registry.url}-/stage/{beta['id']}/tarball", headers=people.alice.auth(), timeout=10
    )
    assert tarball.read_bytes() == staged.content


def test_list_follows_pages_past_100_and_filters(tmp_path, live_registry, people, alice_env):
    url, token = live_registry.url, people.alice.token
    ids = {packages.stage(url, token, "@bulk/many", f"1.0.{i}") for i in range(105)}
    packages.stage(url, token, "other", "1.0.0")

    listed = json.loads(ok(run_npm(["stage", "list", "--json"], alice_env, tmp_path)))
    filtered = json.loads(
        ok(run_npm(["stage", "list", "@bulk/many", "--json"], alice_env, tmp_path))
    )

    assert len(listed) == 106
    assert {i["id"] for i in filtered} == ids


def test_approve_needs_the_otp_then_the_version_installs(tmp_path, alice_env, people: People):
    ok(run_npm(["stage", "publish"], alice_env, write_package(tmp_path / "p", "npm-ok", "1.0.0")))
    (stage,) = json.loads(ok(run_npm(["stage", "list", "--json"], alice_env, tmp_path)))

    refused = run_npm(["stage", "approve", stage["id"]], alice_env, tmp_path)
    assert refused.returncode != 0
    assert "EOTP" in refused.stderr
    assert "one-time" in refused.stderr

    approved = run_npm(
        ["stage", "approve", stage["id"], "--otp", people.alice.code()], alice_env, tmp_path
    )
    assert "approved and published successfully" in ok(approved)

    viewed = json.loads(ok(run_npm(["view", "npm-ok@1.0.0", "--json"], alice_env, tmp_path)))
    assert viewed["version"] == "1.0.0"
    assert viewed["dist"]["shasum"] == stage["shasum"]

    project = tmp_path / "project"
    project.mkdir()
    (project / "package.json").write_text("{}")
    ok(run_npm(["install", "npm-ok@1.0.0"], alice_env, project))
    installed = json.loads((project / "node_modules" / "npm-ok" / "package.json").read_text())
    assert installed["version"] == "1.0.0"


def test_a_staged_version_cannot_be_installed_before_approval(tmp_path, bob_env):
    ok(run_npm(["stage", "publish"], bob_env, write_package(tmp_path / "p", "npm-wait", "1.0.0")))
    project = tmp_path / "project"
    project.mkdir()
    (project / "package.json").write_text("{}")

    done = run_npm(["install", "npm-wait@1.0.0"], bob_env, project)

    assert done.returncode != 0
    assert "ETARGET" in done.stderr


def test_reject_with_the_otp(tmp_path, alice_env, people: People):
    ok(run_npm(["stage", "publish"], alice_env, write_package(tmp_path / "p", "npm-no", "1.0.0")))
    (stage,) = json.loads(ok(run_npm(["stage", "list", "--json"], alice_env, tmp_path)))

    ok(run_npm(["stage", "reject", stage["id"], "--otp", people.alice.code()], alice_env, tmp_path))

    assert json.loads(ok(run_npm(["stage", "list", "--json"], alice_env, tmp_path))) == []


def test_publish_over_a_staged_version_is_409(tmp_path, bob_env):
    package = write_package(tmp_path / "p", "npm-clash", "1.0.0")
    ok(run_npm(["stage", "publish"], bob_env, package))

    done = run_npm(["publish"], bob_env, package)

    assert done.returncode != 0
    assert "E409" in done.stderr


def test_approve_with_a_security_key_token(tmp_path, live_registry, alice_env):
    ok(run_npm(["stage", "publish"], alice_env, write_package(tmp_path / "p", "npm-key", "1.0.0")))
    (stage,) = json.loads(ok(run_npm(["stage", "list", "--json"], alice_env, tmp_path)))

    refused = run_npm(["stage", "approve", stage["id"]], alice_env, tmp_path)
    # npm hides the auth id in its error text, but prints the registry's npm-notice as is.
    auth_url = re.search(r"Open (http://\S+/-/auth/([0-9a-f-]{36}))", refused.stderr)
    assert refused.returncode != 0
    assert auth_url, refused.stderr
    live_registry.complete_web_auth(auth_url.group(1))
    done = requests.get(f"{live_registry.url}-/v1/done?authId={auth_url.group(2)}", timeout=10)
    token = done.json()["token"]

    ok(run_npm(["stage", "approve", stage["id"], "--otp", token], alice_env, tmp_path))
    assert "1.0.0" in requests.get(f"{live_registry.url}npm-key", timeout=10).json()["versions"]


def test_login_and_adduser_on_a_terminal(tmp_path, live_registry: LiveRegistry, npm_env):
    live_registry.add_user("gina", password="gina-pw")
    login_env = npm_env(live_registry, None)

    code, printed = run_npm_in_terminal(
        ["login"], login_env, tmp_path, [("Username:", "gina"), ("Password:", "gina-pw")]
    )

    assert code == 0, printed
    assert ok(run_npm(["whoami"], login_env, tmp_path)).strip() == "gina"

    adduser_env = npm_env(live_registry, None)
    code, printed = run_npm_in_terminal(
        ["adduser"],
        adduser_env,
        tmp_path,
        [("Username:", "hank"), ("Password:", "hank-pw"), ("Email", "hank@example.com")],
    )

    assert code == 0, printed
    assert ok(run_npm(["whoami"], adduser_env, tmp_path)).strip() == "hank"


def test_login_with_a_wrong_password_fails(tmp_path, live_registry: LiveRegistry, npm_env):
    live_registry.add_user("gina", password="gina-pw")
    env = npm_env(live_registry, None)

    code, printed = run_npm_in_terminal(
        ["login"], env, tmp_path, [("Username:", "gina"), ("Password:", "wrong")]
    )

    assert code != 0
    assert "E401" in printed
