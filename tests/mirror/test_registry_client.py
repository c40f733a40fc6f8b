"""The registry client against a live dev registry: what it sends, and the typed errors."""

from __future__ import annotations

import json
import uuid

import pyotp
import pytest
import requests
from django.core.exceptions import ImproperlyConfigured

from devregistry.tarballs import integrity, shasum
from reviews.mirror.registry import (
    USER_AGENT,
    Conflict,
    Forbidden,
    IpNotAllowed,
    NotFound,
    OtpRequired,
    RateLimited,
    RegistryClient,
    RegistryError,
    TarballTooLarge,
    Unauthorized,
    Unavailable,
    WebAuthRequired,
    _error_for,
    _parse_json,
    escape_name,
    is_transient,
    redact_url,
    sync_client,
)
from tests.mirror.live import Registry
from tests.support.packages import build_tarball

SECRET = pyotp.random_base32()


def client_for(registry: Registry, token: str | None = None, **kwargs: object) -> RegistryClient:
    return RegistryClient(registry.url, registry.sync_token if token is None else token, **kwargs)  # type: ignore[arg-type]


def sent_headers(client: RegistryClient) -> list[requests.structures.CaseInsensitiveDict[str]]:
    """The headers of every request the client sends from now on, as they left it."""
    sent: list[requests.structures.CaseInsensitiveDict[str]] = []
    client.session.hooks["response"].append(
        lambda response, *args, **kwargs: sent.append(response.request.headers)
    )
    return sent


@pytest.fixture
def two_factor(registry: Registry) -> tuple[str, str]:
    """A stage of a package whose maintainer (bob) has TOTP 2FA; bob's read-write token."""
    registry.live.add_user("bob", otp_secret=SECRET)
    bob = registry.live.token("bob")
    stage_id = registry.stage("twofa-pkg", "1.0.0")
    registry.live.add_owner("twofa-pkg", "bob")
    return stage_id, bob


def test_lists_views_and_downloads_a_scoped_stage(registry: Registry) -> None:
    data = build_tarball("@acme/widget", "1.0.0")
    stage_id = registry.stage("@acme/widget", tarball=data, tag="next")

    with client_for(registry) as client:
        sent = sent_headers(client)
        page = client.list_stages(package="@acme/widget")
        stage = client.get_stage(stage_id)
        with client.download_stage_tarball(stage_id, max_bytes=10_000) as tarball:
            body = tarball.open().read()

    assert page.total == 1
    assert page.items == [stage]
    assert str(stage.id) == stage_id
    assert (stage.package_name, stage.tag, stage.shasum) == ("@acme/widget", "next", shasum(data))
    assert body == data
    assert (tarball.sha1, tarball.integrity, tarball.size) == (
        shasum(data),
        integrity(data),
        len(data),
    )
    for headers in sent:
        assert headers["authorization"] == f"Bearer {registry.sync_token}"
        assert headers["npm-command"] == "stage"
        assert headers["user-agent"] == USER_AGENT
        assert "npm-otp" not in headers
        assert "npm-auth-type" not in headers
    assert len(sent) == 3


def test_packument_whoami_and_a_published_tarball(registry: Registry) -> None:
    data = build_tarball("@acme/widget", "1.0.0")
    registry.publish("@acme/widget", "1.0.0", tarball=data)

    with client_for(registry) as client:
        sent = sent_headers(client)
        packument = client.get_packument("@acme/widget")
        dist = packument.dist("1.0.0")
        assert dist is not None
        with client.download_tarball(dist["tarball"], max_bytes=10_000) as tarball:
            assert tarball.sha1 == shasum(data) == dist["shasum"]
        assert client.whoami() == "alice"

    assert packument.dist_tags == {"latest": "1.0.0"}
    assert packument.dist("9.9.9") is None
    assert sent[0].get("npm-command") is None, "npm-command is for stage routes only"
    assert escape_name("@acme/widget") == "@acme%2fwidget"
    assert escape_name("left-pad") == "left-pad"


def test_a_tarball_url_off_the_registry_is_refused_without_a_request(registry: Registry) -> None:
    with client_for(registry) as client:
        sent = sent_headers(client)
        with pytest.raises(RegistryError, match="off the registry"):
            client.download_tarball("http://127.0.0.2:9/left-pad/-/left-pad-1.0.0.tgz", 10_000)
    assert sent == []


def test_malformed_stage_ids_never_reach_the_registry(registry: Registry) -> None:
    with client_for(registry) as client:
        sent = sent_headers(client)
        for bad in ("../../-/whoami", "not-a-uuid", ""):
            with pytest.raises(ValueError, match="UUID"):
                client.get_stage(bad)
            with pytest.raises(ValueError, match="UUID"):
                client.approve_stage(bad)
    assert sent == []


def test_unknown_stage_is_not_found(registry: Registry) -> None:
    with client_for(registry) as client, pytest.raises(NotFound) as raised:
        client.get_stage(uuid.uuid4())
    assert raised.value.status == 404
    assert not is_transient(raised.value)


def test_a_wrong_token_is_unauthorized(registry: Registry) -> None:
    with client_for(registry, token="npm_not-a-token") as client, pytest.raises(Unauthorized):
        client.list_stages()


def test_a_read_only_token_may_not_approve(registry: Registry) -> None:
    stage_id = registry.stage("left-pad")
    with client_for(registry) as client, pytest.raises(Forbidden) as raised:
        client.approve_stage(stage_id)
    assert raised.value.status == 403


def test_approve_and_reject_answer_and_a_decided_stage_is_gone(registry: Registry) -> None:
    approved, rejected = registry.stage("left-pad", "1.0.0"), registry.stage("left-pad", "1.0.1")

    with registry.maintainer_client() as client:
        sent = sent_headers(client)
        assert client.approve_stage(approved).status == 201
        assert client.reject_stage(rejected).status == 204
        with pytest.raises(NotFound):
            client.approve_stage(approved)

    assert [h["npm-command"] for h in sent] == ["stage", "stage", "stage"]
    with client_for(registry) as client:
        assert client.get_packument("left-pad").dist("1.0.0") is not None


def test_a_2fa_maintainer_is_asked_for_a_one_time_password(
    registry: Registry, two_factor: tuple[str, str]
) -> None:
    stage_id, bob = two_factor
    with client_for(registry, token=bob) as client:
        with pytest.raises(OtpRequired) as raised:
            client.approve_stage(stage_id)
        assert not isinstance(raised.value, WebAuthRequired)
        assert raised.value.status == 401
        assert "one-time password" in raised.value.notice

        with pytest.raises(OtpRequired, match="Invalid"):
            client.approve_stage(stage_id, otp="000000")

        sent = sent_headers(client)
        reply = client.approve_stage(stage_id, otp=pyotp.TOTP(SECRET).now())

    assert reply.status == 201
    assert sent[0]["npm-otp"].isdigit()


def test_a_security_key_login_is_offered_polled_and_used(
    registry: Registry, two_factor: tuple[str, str]
) -> None:
    stage_id, bob = two_factor
    with client_for(registry, token=bob) as client:
        sent = sent_headers(client)
        with pytest.raises(WebAuthRequired) as raised:
            client.reject_stage(stage_id, web=True)
        challenge = raised.value
        assert sent[0]["npm-auth-type"] == "web"
        assert challenge.auth_url.startswith(registry.url)
        assert challenge.auth_url in challenge.notice

        waiting = client.poll_web_auth_done(challenge.done_url)
        assert (waiting.token, waiting.retry_after) == (None, 1.0)

        registry.live.complete_web_auth(challenge.auth_url)
        done = client.poll_web_auth_done(challenge.done_url)
        assert done.token

        assert client.reject_stage(stage_id, otp=done.token).status == 204
        with pytest.raises(NotFound):
            client.get_stage(stage_id)


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        ({"status": 500}, Unavailable, 500),
        ({"status": 502}, Unavailable, 502),
        ({"status": 429, "retry_after": 7}, RateLimited, 429),
        ({"malformed": True}, Unavailable, 200),
        ({"truncate": True}, Unavailable, None),
        ({"delay": 1.5}, Unavailable, None),
    ],
    ids=["500", "502", "429", "malformed", "truncated", "timeout"],
)
def test_registry_faults_are_transient_errors(
    registry: Registry, fault: dict[str, object], error: type[RegistryError], status: int | None
) -> None:
    registry.set_faults([{"method": "GET", "path": "^/-/stage$", **fault}])
    with client_for(registry, timeout=0.5) as client, pytest.raises(error) as raised:
        client.list_stages()
    assert is_transient(raised.value)
    if status is not None:
        assert raised.value.status == status
    if isinstance(raised.value, RateLimited):
        assert raised.value.retry_after == 7


def test_a_truncated_tarball_is_unavailable(registry: Registry) -> None:
    stage_id = registry.stage("left-pad")
    registry.set_faults([{"path": "/tarball$", "truncate": True}])
    with client_for(registry) as client, pytest.raises(Unavailable, match="tarball"):
        client.download_stage_tarball(stage_id, max_bytes=10_000)


def test_a_tarball_over_the_limit_is_refused(registry: Registry) -> None:
    stage_id = registry.stage("left-pad")
    with client_for(registry) as client, pytest.raises(TarballTooLarge) as raised:
        client.download_stage_tarball(stage_id, max_bytes=10)
    assert not is_transient(raised.value)


def test_credentials_in_the_registry_url_never_show(registry: Registry) -> None:
    with_secret = registry.url.replace("http://", "http://carol:s3cret@")
    client = RegistryClient(with_secret, timeout=0.5)
    assert "s3cret" not in repr(client)
    with pytest.raises(Unauthorized) as raised:
        client.list_stages()
    assert "s3cret" not in str(raised.value)

    closed = RegistryClient("http://carol:s3cret@127.0.0.1:9/", timeout=0.5)
    with pytest.raises(Unavailable) as raised_unavailable:
        closed.list_stages()
    assert "s3cret" not in str(raised_unavailable.value)
    assert "127.0.0.1:9" in str(raised_unavailable.value)
    assert (
        redact_url("https://u:p@registry.test:8443/x?q=1") == "https://***@registry.test:8443/x?q=1"
    )
    assert redact_url("https://registry.test/") == "https://registry.test/"


def test_sync_client_needs_a_registry_url(settings) -> None:
    settings.GREENROOM_REGISTRY_URL = ""
    with pytest.raises(ImproperlyConfigured, match="GREENROOM_REGISTRY_URL"):
        sync_client()


def test_timeouts_come_from_settings_unless_given(settings) -> None:
    settings.GREENROOM_REGISTRY_URL = "http://127.0.0.1:9/"
    settings.GREENROOM_REGISTRY_TIMEOUT = 3.5
    assert sync_client().timeout == (3.5, 3.5)
    assert sync_client(timeout=(1, 20)).timeout == (1, 20)


def response(status: int, body: object = None, **headers: str) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer.headers.update(headers)
    answer._content = b"" if body is None else json.dumps(body).encode()
    return answer


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (
            response(401, {"message": "nope"}, **{"www-authenticate": "Basic, IPAddress"}),
            IpNotAllowed,
        ),
        (response(401, {"message": "otp"}, **{"www-authenticate": "Basic, oTp"}), OtpRequired),
        (response(401, {"error": "You must provide a one-time pass."}), OtpRequired),
        (response(401, {"error": "bad token"}), Unauthorized),
        (
            response(401, {"authUrl": "https://r.test/a", "doneUrl": "https://r.test/d"}),
            WebAuthRequired,
        ),
        (response(403, {"message": "Please enable 2fa"}), Forbidden),
        (response(404), NotFound),
        (response(409, {"message": "already"}), Conflict),
        (response(429, **{"retry-after": "3"}), RateLimited),
        (response(503), Unavailable),
        (response(418), RegistryError),
    ],
)
def test_error_classification_follows_npm_registry_fetch(
    answer: requests.Response, error: type[RegistryError]
) -> None:
    found = _error_for(answer, answer.content)
    assert type(found) is error
    assert found.status == answer.status_code


DEEP_JSON = b"[" * 100_000 + b"]" * 100_000


def test_an_answer_nested_too_deep_for_python_is_malformed_json_not_a_crash() -> None:
    answer = response(200)
    answer._content = DEEP_JSON
    answer._content_consumed = True  # type: ignore[attr-defined]  # read from `_content`
    with pytest.raises(Unavailable, match="malformed JSON"):
        _parse_json(answer)


def test_an_error_body_nested_too_deep_is_still_classified() -> None:
    answer = response(404)
    answer._content = DEEP_JSON
    assert type(_error_for(answer, answer.content)) is NotFound
