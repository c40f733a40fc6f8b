"""Couch-style login/adduser over HTTP, the way npm-profile calls it.

(The real `npm login` and `npm adduser` run in test_npm_cli.py, through a pseudo-terminal.)
"""

from __future__ import annotations

import pyotp
import requests

from tests.devregistry.conftest import People


def couch_put(registry, name: str, headers: dict[str, str] | None = None, **body):
    return requests.put(
        f"{registry.url}-/user/org.couchdb.user:{name}",
        json={"_id": f"org.couchdb.user:{name}", "name": name, "type": "user", "roles": [], **body},
        headers=headers or {},
        timeout=10,
    )


def whoami(registry, token: str) -> str:
    answer = requests.get(
        f"{registry.url}-/whoami", headers={"authorization": f"Bearer {token}"}, timeout=10
    )
    username: str = answer.json()["username"]
    return username


def test_adduser_creates_a_user_and_returns_a_token(live_registry):
    answer = couch_put(live_registry, "newbie", password="pw-1", email="newbie@example.com")

    assert answer.status_code == 201
    doc = answer.json()
    assert doc["ok"] is True
    assert doc["id"] == "org.couchdb.user:newbie"
    assert whoami(live_registry, doc["token"]) == "newbie"


def test_login_with_the_right_password_returns_a_new_token(live_registry, people: People):
    answer = couch_put(live_registry, "bob", password="password-")

    assert answer.status_code == 201
    assert answer.json()["token"] != people.bob.token
    assert whoami(live_registry, answer.json()["token"]) == "bob"


def test_login_with_a_wrong_password_is_401_without_otp(live_registry, people: People):
    answer = couch_put(live_registry, "bob", password="nope", email="bob@example.com")

    assert answer.status_code == 401
    assert "www-authenticate" not in answer.headers
    assert answer.json()["error"]


def test_login_of_an_unknown_user_without_email_is_400(live_registry):
    assert couch_put(live_registry, "ghost", password="pw").status_code == 400


def test_login_of_a_totp_user_needs_the_code(live_registry, people: People):
    challenge = couch_put(live_registry, "alice", password="password-")
    assert challenge.status_code == 401
    assert challenge.headers["www-authenticate"] == "OTP"

    answer = couch_put(
        live_registry, "alice", {"npm-otp": people.alice.code()}, password="password-"
    )

    assert answer.status_code == 201
    assert whoami(live_registry, answer.json()["token"]) == "alice"


def test_login_of_a_totp_user_with_auth_type_web_offers_the_security_key(
    live_registry, people: People
):
    challenge = couch_put(live_registry, "alice", {"npm-auth-type": "web"}, password="password-")
    assert challenge.status_code == 401
    live_registry.complete_web_auth(challenge.json()["authUrl"])
    token = requests.get(challenge.json()["doneUrl"], timeout=10).json()["token"]

    answer = couch_put(live_registry, "alice", {"npm-otp": token}, password="password-")

    assert answer.status_code == 201


def test_web_login_is_not_offered(live_registry):
    # npm (auth-type web) takes a 4xx here as "not supported" and falls back to couch.
    answer = requests.post(f"{live_registry.url}-/v1/login", json={}, timeout=10)

    assert answer.status_code == 404


def test_adduser_refuses_a_body_for_someone_else(live_registry):
    answer = requests.put(
        f"{live_registry.url}-/user/org.couchdb.user:mallory",
        json={"name": "bob", "password": "x"},
        timeout=10,
    )

    assert answer.status_code == 400


def test_a_new_users_totp_is_independent_of_pyotp_defaults(live_registry):
    # The registry's TOTP agrees with pyotp's (RFC 6238: SHA-1, 6 digits, 30 s).
    secret = pyotp.random_base32()
    live_registry.add_user("erin", otp_secret=secret)

    answer = couch_put(
        live_registry, "erin", {"npm-otp": pyotp.TOTP(secret).now()}, password="password-"
    )

    assert answer.status_code == 201
