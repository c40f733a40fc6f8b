"""`--compat other`: the dev registry answers as another open-source implementation of the stage
API does, where the spec is silent or ignored (issue 14). Each difference is checked against the
default (npm) answer, so a test fails if the switch stops switching."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import pyotp
import pytest
import requests

from devregistry.store import Store
from devregistry.testing import LiveRegistry
from tests.devregistry.conftest import People, Person, StageApi
from tests.support import packages
from tests.support.npm import run_npm

UNKNOWN_STAGE = "6f1e1c2a-52b4-4b7e-9a3e-1f2d3c4b5a69"


@pytest.fixture(params=["npm", "other"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def registry(registry_factory: Callable[..., LiveRegistry], mode: str) -> LiveRegistry:
    return registry_factory(compat=mode)


@pytest.fixture
def folks(registry: LiveRegistry) -> People:
    secrets = {name: pyotp.random_base32() for name in ("alice", "carol")}
    registry.add_user("alice", otp_secret=secrets["alice"])
    registry.add_user("bob")
    registry.add_user("carol", otp_secret=secrets["carol"])
    return People(
        alice=Person("alice", registry.token("alice"), secrets["alice"]),
        bob=Person("bob", registry.token("bob")),
        carol=Person("carol", registry.token("carol"), secrets["carol"]),
    )


@pytest.fixture
def client(registry: LiveRegistry) -> Iterator[StageApi]:
    api = StageApi(registry)
    yield api
    api.session.close()


@pytest.fixture
def staged(registry: LiveRegistry, folks: People) -> str:
    """A stage of `pkg` (bob stages it; alice maintains it too, carol does not)."""
    stage_id = packages.stage(registry.url, folks.bob.token, "pkg", "1.0.0")
    registry.add_owner("pkg", "alice")
    return stage_id


def fresh_code(person: Person) -> str:
    """The code of the next step: never used before in these tests."""
    assert person.otp_secret is not None
    return person.code(1)


def challenge_of(answer: requests.Response) -> tuple[int, str, object]:
    return answer.status_code, answer.headers.get("www-authenticate", ""), answer.json()


def test_a_non_maintainer_is_told_not_found_instead_of_forbidden(
    client: StageApi, folks: People, staged: str, mode: str
):
    carol = folks.carol
    answer = client.approve(carol, staged, npm_otp=fresh_code(carol))

    assert answer.status_code == {"npm": 403, "other": 404}[mode]
    assert client.view(folks.bob, staged).status_code == 200  # still staged


def test_the_code_is_checked_before_the_stage_is_looked_up(
    client: StageApi, folks: People, staged: str, mode: str
):
    alice = folks.alice
    no_code = client.approve(alice, UNKNOWN_STAGE)
    code = fresh_code(alice)
    vanished = client.approve(alice, UNKNOWN_STAGE, npm_otp=code)
    again = client.approve(alice, staged, npm_otp=code)

    if mode == "other":
        assert no_code.status_code == 401  # a challenge, for a stage that does not exist
        assert vanished.status_code == 404
        assert again.status_code == 401  # that code was spent on the missing stage
    else:
        assert (no_code.status_code, vanished.status_code, again.status_code) == (404, 404, 201)


def test_a_revoked_token_is_forbidden_rather_than_unauthorized(
    registry: LiveRegistry, client: StageApi, folks: People, staged: str, mode: str
):
    registry.revoke_token(folks.bob.token)

    answers = [
        client.list(folks.bob),
        client.view(folks.bob, staged),
        client.approve(folks.bob, staged),
        requests.get(f"{registry.url}-/whoami", headers=folks.bob.auth(), timeout=5),
    ]

    expected = {"npm": 401, "other": 403}[mode]
    assert [a.status_code for a in answers] == [expected] * 4
    assert all("www-authenticate" not in a.headers for a in answers)
    if mode == "other":
        assert answers[1].json() == {"message": "unauthorized access"}
    # A token the registry never issued is 401 in both.
    stranger = Person("nobody", "npm_" + "0" * 36)
    assert client.list(stranger).status_code == 401


def test_every_refused_code_gets_the_same_challenge(
    registry: LiveRegistry, client: StageApi, folks: People, mode: str
):
    alice = folks.alice
    stages = [packages.stage(registry.url, folks.bob.token, "pkg", f"1.{i}.0") for i in range(2)]
    registry.add_owner("pkg", "alice")
    right = fresh_code(alice)
    accepted = {alice.code(step) for step in (-1, 0, 1, 2)}
    wrong_code = next(c for c in ("000000", "111111", "222222") if c not in accepted)
    assert client.approve(alice, stages[0], npm_otp=right).status_code == 201

    missing = client.approve(alice, stages[1])
    missing_web = client.approve(alice, stages[1], npm_auth_type="web")
    wrong = client.approve(alice, stages[1], npm_otp=wrong_code)
    replayed = client.approve(alice, stages[1], npm_otp=right)

    first = challenge_of(missing)
    assert first == (401, "OTP", {"message": "This operation requires a one-time password."})
    if mode == "other":
        assert challenge_of(missing_web) == first  # no security-key flow
        assert challenge_of(wrong) == first
        assert challenge_of(replayed) == first
    else:  # npm's answers tell them apart, and a code may be reused in its window
        assert set(missing_web.json()) == {"authUrl", "doneUrl"}
        assert wrong.json() == {"message": "Invalid one-time password."}
        assert replayed.status_code == 201


def test_five_failures_lock_the_account_even_for_a_right_code(
    registry: LiveRegistry, client: StageApi, folks: People, staged: str, mode: str
):
    alice = folks.alice
    accepted = {alice.code(step) for step in (-1, 0, 1, 2)}
    wrong = next(c for c in ("000000", "111111", "222222", "333333", "444444") if c not in accepted)
    refusals = [client.approve(alice, staged, npm_otp=wrong) for _ in range(5)]
    assert {r.status_code for r in refusals} == {401}

    right = client.approve(alice, staged, npm_otp=fresh_code(alice))

    if mode == "other":
        assert challenge_of(right) == challenge_of(refusals[0])
        assert client.view(alice, staged).status_code == 200
        with Store(registry.data_dir).read() as state:
            assert state.users["alice"].otp_locked_until is not None
    else:
        assert right.status_code == 201


def test_a_recovery_code_works_once(
    registry: LiveRegistry, client: StageApi, folks: People, mode: str
):
    codes = registry.recovery_codes("alice")
    assert all(len(code) == 16 and int(code, 16) >= 0 for code in codes)
    first, second = (
        packages.stage(registry.url, folks.bob.token, "pkg", v) for v in ("1.0.0", "2.0.0")
    )
    registry.add_owner("pkg", "alice")

    used = client.approve(folks.alice, first, npm_otp=codes[0])
    reused = client.approve(folks.alice, second, npm_otp=codes[0])

    if mode == "other":
        assert (used.status_code, reused.status_code) == (201, 401)
        with Store(registry.data_dir).read() as state:
            assert len(state.users["alice"].recovery_codes) == 4  # hashes, one gone
            assert codes[1] not in repr(state.users["alice"])
    else:
        assert (used.status_code, reused.status_code) == (401, 401)


@pytest.mark.npm
def test_the_real_npm_cli_is_satisfied_by_the_other_answers(
    registry_factory: Callable[..., LiveRegistry], npm_env: Callable[..., dict[str, str]], tmp_path
):
    """npm's client against `compat="other"`: EOTP without a code (no security-key flow, no
    terminal), a recovery code through `--otp` approves, the same code again is EOTP, a
    non-maintainer gets npm's 404 error, and a revoked token npm's 403."""
    registry = registry_factory(compat="other")
    secret = pyotp.random_base32()
    registry.add_user("alice", otp_secret=secret)
    registry.add_user("carol")
    alice_env = npm_env(registry, registry.token("alice"))
    carol_token = registry.token("carol")
    carol_env = npm_env(registry, carol_token)
    first, second = (
        packages.stage(registry.url, registry.token("alice"), "npm-compat", version)
        for version in ("1.0.0", "1.1.0")
    )
    recovery = registry.recovery_codes("alice")[0]

    no_code = run_npm(["stage", "approve", first], alice_env, tmp_path)
    approved = run_npm(["stage", "approve", first, "--otp", recovery], alice_env, tmp_path)
    replayed = run_npm(["stage", "approve", second, "--otp", recovery], alice_env, tmp_path)
    outsider = run_npm(["stage", "reject", second], carol_env, tmp_path)
    registry.revoke_token(carol_token)
    revoked = run_npm(["stage", "list"], carol_env, tmp_path)

    assert "EOTP" in failed(no_code)
    assert approved.returncode == 0, approved.stderr
    assert f"Staged package {first} approved and published successfully." in approved.stdout
    packument = requests.get(f"{registry.url}npm-compat", timeout=5).json()
    assert packument["dist-tags"]["latest"] == "1.0.0"
    assert "EOTP" in failed(replayed)
    assert "E404" in failed(outsider)
    assert "E403" in failed(revoked)


def failed(done: subprocess.CompletedProcess[str]) -> str:
    """What npm said on stderr, once it is sure it failed."""
    assert done.returncode != 0, done.stdout
    return done.stderr
