"""Second factor on approve, reject and publish: TOTP codes and the security-key web flow."""

from __future__ import annotations

import pyotp
import pytest
import requests

from devregistry.store import Store
from tests.devregistry.conftest import People, Person, StageApi
from tests.support import packages
from tests.support.packages import RegistryRefused


@pytest.fixture
def alices(live_registry, people: People) -> list[str]:
    """Three stages of alice's package (alice has TOTP 2FA)."""
    url, token = live_registry.url, people.alice.token
    return [packages.stage(url, token, "alices", f"1.{i}.0") for i in range(3)]


def assert_otp_challenge(answer: requests.Response) -> None:
    assert answer.status_code == 401
    assert "otp" in answer.headers["www-authenticate"].lower()
    assert answer.headers["npm-notice"]
    assert "one-time password" in answer.json()["message"]


def test_approve_without_otp_is_an_otp_challenge(people: People, api: StageApi, alices):
    assert_otp_challenge(api.approve(people.alice, alices[0]))


def test_reject_without_otp_is_an_otp_challenge(people: People, api: StageApi, alices):
    assert_otp_challenge(api.reject(people.alice, alices[0]))
    assert api.view(people.alice, alices[0]).status_code == 200


def test_a_wrong_code_is_refused_the_same_way(people: People, api: StageApi, alices):
    wrong = f"{(int(people.alice.code()) + 1) % 1_000_000:06d}"

    assert_otp_challenge(api.approve(people.alice, alices[0], npm_otp=wrong))
    assert_otp_challenge(api.approve(people.alice, alices[0], npm_otp="abcdef"))


def test_a_valid_code_approves(people: People, api: StageApi, alices):
    assert api.approve(people.alice, alices[0], npm_otp=people.alice.code()).status_code == 201


@pytest.mark.parametrize("offset", [-1, 1])
def test_the_adjacent_steps_are_accepted(people: People, api: StageApi, alices, offset):
    code = people.alice.code(offset)

    assert api.reject(people.alice, alices[0], npm_otp=code).status_code == 204


def test_codes_two_steps_away_are_refused(people: People, api: StageApi, alices):
    assert_otp_challenge(api.approve(people.alice, alices[0], npm_otp=people.alice.code(-3)))


def test_a_code_may_be_reused_by_default(people: People, api: StageApi, alices):
    code = people.alice.code()

    assert api.approve(people.alice, alices[0], npm_otp=code).status_code == 201
    assert api.approve(people.alice, alices[1], npm_otp=code).status_code == 201


def test_refuse_otp_reuse_refuses_a_second_use(registry_factory):
    registry = registry_factory(refuse_otp_reuse=True)
    alice = add_totp_user(registry)
    first, second = (
        packages.stage(registry.url, alice.token, "once", v) for v in ("1.0.0", "2.0.0")
    )
    api = StageApi(registry)
    code = alice.code()

    assert api.approve(alice, first, npm_otp=code).status_code == 201
    assert_otp_challenge(api.approve(alice, second, npm_otp=code))
    assert api.approve(alice, second, npm_otp=alice.code(1)).status_code == 201


def test_the_flag_file_switches_reuse_refusal_on_a_running_server(
    live_registry, people: People, api: StageApi, alices
):
    code = people.alice.code()
    assert api.approve(people.alice, alices[0], npm_otp=code).status_code == 201

    (live_registry.data_dir / "refuse-otp-reuse").touch()

    assert_otp_challenge(api.approve(people.alice, alices[1], npm_otp=code))


def test_otp_max_uses_accepts_a_code_n_times_then_refuses_it(
    live_registry, people: People, api: StageApi, alices
):
    live_registry.set_otp_max_uses(2)
    code = people.alice.code()
    assert api.approve(people.alice, alices[0], npm_otp=code).status_code == 201
    assert api.approve(people.alice, alices[1], npm_otp=code).status_code == 201

    assert_otp_challenge(api.approve(people.alice, alices[2], npm_otp=code))
    assert api.view(people.alice, alices[2]).status_code == 200  # still staged

    # The next step's code starts a new count.
    assert api.approve(people.alice, alices[2], npm_otp=people.alice.code(1)).status_code == 201


def test_without_the_max_uses_file_a_code_is_reused_freely(
    live_registry, people: People, api: StageApi, alices
):
    live_registry.set_otp_max_uses(1)
    live_registry.set_otp_max_uses(None)
    code = people.alice.code()
    for stage_id in alices:
        assert api.approve(people.alice, stage_id, npm_otp=code).status_code == 201


def test_users_without_a_secret_are_never_challenged(live_registry, people: People, api):
    stage_id = packages.stage(live_registry.url, people.bob.token, "bobs", "1.0.0")

    assert api.approve(people.bob, stage_id).status_code == 201
    packages.publish(live_registry.url, people.bob.token, "bobs", "1.1.0")


def test_staging_listing_viewing_downloading_never_ask(people: People, api, alices):
    assert api.list(people.alice).status_code == 200
    assert api.view(people.alice, alices[0]).status_code == 200
    assert api.tarball(people.alice, alices[0]).status_code == 200


def test_classic_publish_needs_the_code(live_registry, people: People):
    url, token = live_registry.url, people.alice.token
    with pytest.raises(RegistryRefused) as refused:
        packages.publish(url, token, "alices-classic", "1.0.0")
    assert refused.value.response.headers["www-authenticate"] == "OTP"
    assert "one-time password" in refused.value.response.json()["error"]

    packages.publish(url, token, "alices-classic", "1.0.0", otp=people.alice.code())


def test_the_security_key_flow(live_registry, people: People, api: StageApi, alices):
    challenge = api.approve(people.alice, alices[0], npm_auth_type="web")

    assert challenge.status_code == 401
    assert "otp" in challenge.headers["www-authenticate"].lower()
    auth_url, done_url = challenge.json()["authUrl"], challenge.json()["doneUrl"]
    assert set(challenge.json()) == {"authUrl", "doneUrl"}
    assert auth_url in challenge.headers["npm-notice"]
    assert auth_url.startswith(live_registry.url)
    assert done_url.startswith(live_registry.url)

    waiting = requests.get(done_url, timeout=10)
    assert waiting.status_code == 202
    assert waiting.headers["retry-after"] == "1"

    page = requests.get(auth_url, timeout=10)
    assert page.headers["content-type"].startswith("text/html")
    assert '<form method="post">' in page.text
    assert "Use my security key" in page.text

    live_registry.complete_web_auth(auth_url)
    done = requests.get(done_url, timeout=10)
    assert done.status_code == 200
    token = done.json()["token"]

    assert api.approve(people.alice, alices[0], npm_otp=token).status_code == 201
    assert_otp_challenge(api.approve(people.alice, alices[1], npm_otp=token))


def test_a_security_key_token_works_only_for_its_user(live_registry, people, api, alices):
    other = add_totp_user(live_registry, "dave")
    live_registry.add_owner("alices", "dave")
    challenge = api.reject(other, alices[0], npm_auth_type="web").json()
    live_registry.complete_web_auth(challenge["authUrl"])
    token = requests.get(challenge["doneUrl"], timeout=10).json()["token"]

    assert_otp_challenge(api.reject(people.alice, alices[0], npm_otp=token))
    assert api.reject(other, alices[0], npm_otp=token).status_code == 204


def test_unknown_web_challenges_are_404(live_registry):
    unknown = "00000000-0000-4000-8000-000000000000"

    assert (
        requests.get(f"{live_registry.url}-/v1/done?authId={unknown}", timeout=10).status_code
        == 404
    )
    assert requests.get(f"{live_registry.url}-/auth/{unknown}", timeout=10).status_code == 404
    assert requests.post(f"{live_registry.url}-/auth/{unknown}", timeout=10).status_code == 404


def add_totp_user(registry, name: str = "alice") -> Person:
    secret = pyotp.random_base32()
    registry.add_user(name, otp_secret=secret)
    return Person(name, registry.token(name), secret)


def test_security_key_challenges_expire(live_registry, people: People, api: StageApi, alices):
    challenge = api.approve(people.alice, alices[0], npm_auth_type="web").json()
    live_registry.complete_web_auth(challenge["authUrl"])
    token = requests.get(challenge["doneUrl"], timeout=10).json()["token"]
    with Store(live_registry.data_dir).write() as state:
        for pending in state.web_challenges.values():
            pending.created = "2000-01-01T00:00:00.000Z"

    assert requests.get(challenge["doneUrl"], timeout=10).status_code == 404
    assert_otp_challenge(api.approve(people.alice, alices[0], npm_otp=token))
