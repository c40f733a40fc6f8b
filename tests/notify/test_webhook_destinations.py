"""Where a webhook may post: the host is resolved once per post, every address it has is
checked (on saving and on every send), and the connection goes to the checked address only,
so a name that answers differently the second time (DNS rebinding) reaches nothing new. Over
TLS the host name still goes in SNI and Host and is what the certificate must match. Replies
are kept only from public addresses, as a short escaped excerpt.

Real servers on loopback; the resolver (`Dns`) and the route to public addresses (`Network`)
are the test's own (tests/notify/webhook_endpoints.py)."""

from __future__ import annotations

import contextlib
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.conf import LazySettings
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.ssl_ import resolve_cert_reqs

from reviews.audit.trail import Actor
from reviews.models import WebhookDelivery
from reviews.notify import dispatch as notifications
from reviews.notify import webhooks
from tests.notify.conftest import admin_page, verified
from tests.notify.webhook_endpoints import (
    Dns,
    Endpoint,
    Network,
    Reply,
    self_signed,
    serve,
    server_tls,
)
from tests.personas import World, make_stage

pytestmark = pytest.mark.django_db

SECRET = "/services/T000/B000/XXXXtopsekritXXXX"
HOST = "hooks.example.test"
PUBLIC = "1.2.3.4"  # a global address; the test network routes it to a loopback server


@pytest.fixture(autouse=True)
def short_timeouts(settings: LazySettings) -> None:
    settings.GREENROOM_WEBHOOK_TIMEOUT = 0.5


@pytest.fixture
def internal() -> Iterator[Endpoint]:
    """A service on loopback that no webhook may reach (an admin API, a metadata server)."""
    with serve() as ep:
        yield ep


@pytest.fixture
def public() -> Iterator[Endpoint]:
    """The team's real endpoint, reached at PUBLIC through the test network."""
    with serve() as ep:
        yield ep


def delivery_for() -> WebhookDelivery:
    notifications.stage_seen(verified(make_stage("@acme/ui", "3.0.0")))
    [delivery_id] = notifications.dispatch_events().delivery_ids
    return WebhookDelivery.objects.get(pk=delivery_id)


def deliver(delivery: WebhookDelivery) -> WebhookDelivery:
    with contextlib.suppress(webhooks.RetryDelivery):
        webhooks.deliver(delivery.pk)
    delivery.refresh_from_db()
    return delivery


# -- Which addresses ------------------------------------------------------------------------------

OFF_LIMITS = [
    "127.0.0.1",
    "10.1.2.3",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # shared address space (carrier-grade NAT)
    "0.0.0.0",  # noqa: S104 (an answer to refuse, not an address to bind)
    "224.0.0.1",  # multicast
    "240.0.0.1",  # reserved
    "::1",
    "fd00::1",
    "fe80::1",
    "ff02::1",  # multicast
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::ffff:100.64.0.1",
    "64:ff9b::7f00:1",  # NAT64 (well-known prefix) of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # ... of 169.254.169.254
    "64:ff9b::6440:1",  # ... of 100.64.0.1
    "64:ff9b:1::808:808",  # local-use NAT64 prefix: a translator on this network
    "64:ff9b:1:7f00:0:100::",  # ... with 127.0.0.1 inside (/48 layout)
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2002:6440:1::",  # 6to4 of 100.64.0.1
    "::7f00:1",  # IPv4-compatible (deprecated, reserved space)
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
]

ALLOWED = [
    "8.8.8.8",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",  # the forms that carry an IPv4 address are judged by it
    "64:ff9b::808:808",
    "2002:808:808::1",
]


@pytest.mark.parametrize("address", OFF_LIMITS)
def test_a_host_on_a_private_or_local_address_is_refused(dns: Dns, address: str) -> None:
    dns.answer(HOST, [address])

    with pytest.raises(webhooks.WebhookUrlError, match="private or local network"):
        webhooks.validate_url(f"https://{HOST}{SECRET}")


@pytest.mark.parametrize("address", ALLOWED)
def test_a_host_on_a_public_address_is_kept(dns: Dns, address: str) -> None:
    dns.answer(HOST, [address])

    assert webhooks.validate_url(f" https://{HOST}{SECRET} ") == f"https://{HOST}{SECRET}"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            f"https://{HOST}/" + "x" * (2000 - len(f"https://{HOST}/") + 1),
            "at most 2000 characters",
        ),
        (f"https://{HOST}/a b", "no spaces or control characters"),
        (f"https://{HOST}/a\x1fb", "no spaces or control characters"),
        (f"https://{HOST}/a\x7fb", "no spaces or control characters"),
        (f"https://{HOST}:port/", "That is not a URL."),
        (f"ftp://{HOST}/", "starts with https:// (or http://)"),
        ("https:///services/x", "names a host."),
    ],
)
def test_a_url_that_cannot_be_a_webhook_is_refused_with_words(
    dns: Dns, url: str, message: str
) -> None:
    dns.answer(HOST, [PUBLIC])

    with pytest.raises(webhooks.WebhookUrlError) as refused:
        webhooks.validate_url(url)

    assert message in str(refused.value)


def test_a_url_of_exactly_the_longest_length_is_kept(dns: Dns) -> None:
    dns.answer(HOST, [PUBLIC])
    url = f"http://{HOST}/" + "x" * (2000 - len(f"http://{HOST}/"))

    assert webhooks.validate_url(url) == url


def test_every_address_of_a_host_is_checked(dns: Dns) -> None:
    dns.answer(HOST, ["8.8.8.8", "2606:4700:4700::1111", "127.0.0.1"])

    with pytest.raises(webhooks.WebhookUrlError, match="private or local network"):
        webhooks.validate_url(f"https://{HOST}{SECRET}")


@pytest.mark.parametrize("answers", [None, []])
def test_a_host_that_does_not_resolve_is_refused_with_words(
    dns: Dns, answers: list[str] | None
) -> None:
    if answers is not None:
        dns.answer(HOST, answers)

    with pytest.raises(webhooks.HostNotResolved, match=f"The host {HOST} could not be resolved"):
        webhooks.validate_url(f"https://{HOST}{SECRET}")


def test_an_international_host_name_is_looked_up_in_its_ascii_form(dns: Dns) -> None:
    dns.answer("xn--hks-snaa.example.test", ["8.8.8.8"])

    webhooks.validate_url(f"https://h\u00f6\u00f6ks.example.test{SECRET}")

    assert dns.asked == ["xn--hks-snaa.example.test"]


def test_a_host_name_that_is_no_domain_name_is_refused_with_words(dns: Dns) -> None:
    with pytest.raises(webhooks.WebhookUrlError, match="is not a valid domain name"):
        webhooks.validate_url("https://" + "\u00f6" * 70 + f".example.test{SECRET}")


# -- On every send --------------------------------------------------------------------------------


def test_a_stored_url_that_now_resolves_to_loopback_is_not_posted_to(
    people: World, dns: Dns, internal: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    # No GREENROOM_WEBHOOK_ALLOW_PRIVATE: the name was public when the URL was saved...
    dns.answer(HOST, [PUBLIC])
    url = webhooks.validate_url(f"http://{HOST}:{internal.port}{SECRET}")
    webhooks.set_webhook(people.acme, url, Actor())
    delivery = delivery_for()
    dns.answer(HOST, ["127.0.0.1"])  # ... and points at the portal's own machine now.

    delivery = deliver(delivery)

    assert internal.received == []
    assert delivery.status == "failed"
    assert delivery.last_status_code is None
    assert "private or local network" in delivery.last_error
    assert "topsekrit" not in delivery.last_error + caplog.text


def test_a_rebinding_name_is_connected_to_at_the_address_that_was_checked(
    people: World, dns: Dns, network: Network, public: Endpoint, internal: Endpoint
) -> None:
    # Public for the check, loopback for any later look-up: the classic rebinding.
    dns.answer(HOST, [PUBLIC], ["127.0.0.1"])
    network.route(PUBLIC, public)
    webhooks.set_webhook(people.acme, f"http://{HOST}:{internal.port}{SECRET}", Actor())
    delivery = delivery_for()

    delivery = deliver(delivery)

    assert (delivery.status, delivery.last_status_code) == ("sent", 200)
    assert network.dialled == [(PUBLIC, internal.port)]  # the checked address, not the name
    assert dns.asked == [HOST]  # one look-up for the post
    assert internal.received == []
    [request] = public.received
    assert request["path"] == SECRET
    assert request["headers"]["Host"] == f"{HOST}:{internal.port}"


def test_a_proxy_in_the_environment_is_not_used(
    people: World,
    dns: Dns,
    network: Network,
    public: Endpoint,
    internal: Endpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A proxy would resolve the name again (and reach what it can reach): posts go direct.
    monkeypatch.setenv("HTTP_PROXY", internal.url)
    monkeypatch.setenv("http_proxy", internal.url)
    dns.answer(HOST, [PUBLIC])
    network.route(PUBLIC, public)
    webhooks.set_webhook(people.acme, f"http://{HOST}{SECRET}", Actor())

    delivery = deliver(delivery_for())

    assert delivery.status == "sent"
    assert internal.received == []
    assert [r["path"] for r in public.received] == [SECRET]


@pytest.mark.parametrize(
    ("host", "answer", "host_header"),
    [
        ("h\u00f6\u00f6ks.example.test:8080", "8.8.8.8", "xn--hks-snaa.example.test:8080"),
        (f"{HOST}:8080", "2606:4700:4700::1111", f"{HOST}:8080"),
        ("[2606:4700:4700::1111]:8080", "2606:4700:4700::1111", "[2606:4700:4700::1111]:8080"),
        (HOST, "8.8.8.8", HOST),  # port 80 goes without saying
    ],
)
def test_the_host_header_names_the_host_and_the_connection_goes_to_its_address(
    people: World,
    dns: Dns,
    network: Network,
    public: Endpoint,
    host: str,
    answer: str,
    host_header: str,
) -> None:
    dns.answer("xn--hks-snaa.example.test", [answer])
    dns.answer(HOST, [answer])
    network.route(answer, public)
    webhooks.set_webhook(people.acme, f"http://{host}{SECRET}", Actor())

    delivery = deliver(delivery_for())

    assert delivery.status == "sent"
    assert [address for address, _ in network.dialled] == [answer]
    [request] = public.received
    assert request["headers"]["Host"] == host_header


# -- What is kept of a reply ----------------------------------------------------------------------


def test_a_private_address_reply_is_not_kept(
    people: World, dns: Dns, internal: Endpoint, settings: LazySettings
) -> None:
    settings.GREENROOM_WEBHOOK_ALLOW_PRIVATE = True
    dns.answer(HOST, ["127.0.0.1"])
    internal.replies = [Reply(403, b'{"admin_token": "internal-secret"}')]
    webhooks.set_webhook(people.acme, f"http://{HOST}:{internal.port}{SECRET}", Actor())

    delivery = deliver(delivery_for())

    assert len(internal.received) == 1  # allowed here, so posted...
    assert delivery.last_error == "403 (the reply of a private address is not kept)"
    assert "internal-secret" not in admin_page(people)  # ... but its answer is not shown


def test_a_public_address_reply_is_kept_as_a_short_escaped_line(
    people: World, dns: Dns, network: Network, public: Endpoint
) -> None:
    dns.answer(HOST, [PUBLIC])
    network.route(PUBLIC, public)
    body = "<b>no_service</b>\n\u202egnp.exe caf\u00e9 \u0430pple " + "x" * 500
    public.replies = [Reply(404, body.encode())]
    webhooks.set_webhook(people.acme, f"http://{HOST}{SECRET}", Actor())

    delivery = deliver(delivery_for())

    error = delivery.last_error
    assert error.startswith("404 <b>no_service</b> gnp.exe caf\\xe9 \\u0430pple xxx")
    assert error.endswith("…")
    assert len(error) <= len("404 ") + webhooks.MAX_EXCERPT
    assert error[:-1].isascii()
    assert "\n" not in error
    page = admin_page(people)
    assert "&lt;b&gt;no_service&lt;/b&gt;" in page
    assert "<b>no_service" not in page


# -- TLS ------------------------------------------------------------------------------------------

TLS_HOST = "hooks.greenroom.test"


@pytest.fixture
def certificates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[Path, Path]]:
    """Self-signed certificates for TLS_HOST, another name, and TLS_HOST again from an issuer
    nobody trusts; the portal trusts the first two (REQUESTS_CA_BUNDLE)."""
    made = {
        "right": self_signed(TLS_HOST, tmp_path / "right"),
        "other name": self_signed("other.greenroom.test", tmp_path / "other"),
        "unknown issuer": self_signed(TLS_HOST, tmp_path / "unknown"),
    }
    bundle = tmp_path / "trusted.pem"
    bundle.write_bytes(made["right"][0].read_bytes() + made["other name"][0].read_bytes())
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    return made


def test_over_tls_the_host_name_is_in_sni_and_host_and_its_certificate_is_checked(
    people: World, dns: Dns, settings: LazySettings, certificates: dict[str, tuple[Path, Path]]
) -> None:
    settings.GREENROOM_WEBHOOK_ALLOW_PRIVATE = True  # the server is on loopback
    dns.answer(TLS_HOST, ["127.0.0.1"])
    with serve(tls=server_tls(*certificates["right"])) as server:
        webhooks.set_webhook(people.acme, f"https://{TLS_HOST}:{server.port}{SECRET}", Actor())

        delivery = deliver(delivery_for())

    assert (delivery.status, delivery.last_error) == ("sent", "")
    assert server.server_names == [TLS_HOST]
    [request] = server.received
    assert request["headers"]["Host"] == f"{TLS_HOST}:{server.port}"
    assert request["path"] == SECRET


@pytest.mark.parametrize("served", ["other name", "unknown issuer"])
def test_over_tls_a_certificate_not_for_the_host_is_refused(
    people: World,
    dns: Dns,
    settings: LazySettings,
    certificates: dict[str, tuple[Path, Path]],
    served: str,
) -> None:
    settings.GREENROOM_WEBHOOK_ALLOW_PRIVATE = True
    dns.answer(TLS_HOST, ["127.0.0.1"])
    with serve(tls=server_tls(*certificates[served])) as server:
        webhooks.set_webhook(people.acme, f"https://{TLS_HOST}:{server.port}{SECRET}", Actor())

        delivery = deliver(delivery_for())

    assert server.received == []
    assert delivery.status == "pending"  # retried later: a certificate can be renewed
    assert (
        delivery.last_error == "the endpoint's TLS certificate was not accepted for its host name"
    )


# -- The pinned connection on its own -------------------------------------------------------------
# What `PinnedAdapter` hands urllib3, whatever requests does with the connection afterwards
# (today it applies `verify` again): the checked address and port, and for https the host name
# for SNI and the certificate's name check, a certificate required, the CA bundle given. Only
# pools are made here; nothing is dialled.


def pinned_pool(
    dns: Dns, url: str, verify: bool | str | None, cert: tuple[str, str] | None = None
) -> HTTPConnectionPool:
    dns.answer(TLS_HOST, [PUBLIC])
    adapter = webhooks.PinnedAdapter(webhooks.destination_of(url))
    request = requests.Request("POST", url).prepare()
    return adapter.get_connection_with_tls_context(request, verify, cert=cert)


@pytest.mark.parametrize("verify", [None, True])
def test_the_pinned_https_pool_goes_to_the_address_and_checks_the_certificate_for_the_name(
    dns: Dns, verify: bool | None
) -> None:
    pool = pinned_pool(dns, f"https://{TLS_HOST}:8443{SECRET}", verify)

    assert type(pool) is HTTPSConnectionPool
    assert (pool.scheme, pool.host, pool.port) == ("https", PUBLIC, 8443)
    assert pool.conn_kw["server_hostname"] == TLS_HOST  # SNI, and the name the check matches
    assert resolve_cert_reqs(pool.cert_reqs) == ssl.CERT_REQUIRED
    assert pool.ca_certs is None  # requests' own bundle


def test_the_pinned_https_pool_keeps_the_ca_bundle_and_client_certificate_it_is_given(
    dns: Dns, tmp_path: Path
) -> None:
    bundle = tmp_path / "trusted.pem"
    bundle.write_text("")

    pool = pinned_pool(
        dns, f"https://{TLS_HOST}{SECRET}", str(bundle), cert=("client.crt", "client.key")
    )

    assert type(pool) is HTTPSConnectionPool
    assert (pool.host, pool.port, pool.conn_kw["server_hostname"]) == (PUBLIC, 443, TLS_HOST)
    assert resolve_cert_reqs(pool.cert_reqs) == ssl.CERT_REQUIRED
    assert pool.ca_certs == str(bundle)
    assert (pool.cert_file, pool.key_file) == ("client.crt", "client.key")


def test_the_pinned_http_pool_goes_to_the_address_without_tls(dns: Dns) -> None:
    pool = pinned_pool(dns, f"http://{TLS_HOST}{SECRET}", True)

    assert type(pool) is HTTPConnectionPool
    assert (pool.scheme, pool.host, pool.port) == ("http", PUBLIC, 80)
    assert "server_hostname" not in pool.conn_kw


def test_the_real_resolver_gives_each_address_once() -> None:
    # The one place a webhook's host is looked up (the other tests stand in for it): a stream
    # socket's addresses, each once.
    assert webhooks.resolve("127.0.0.1") == [ipaddress.IPv4Address("127.0.0.1")]
    assert webhooks.resolve("::1") == [ipaddress.IPv6Address("::1")]
    # A name no resolver can take (an empty label) is refused without a lookup, in words.
    with pytest.raises(webhooks.HostNotResolved) as refused:
        webhooks.resolve("hooks..example.test")
    assert str(refused.value) == "The host hooks..example.test could not be resolved."


@pytest.mark.parametrize(
    ("url", "port"),
    [(f"https://{HOST}/x", 443), (f"http://{HOST}/x", 80), (f"https://{HOST}:8443/x", 8443)],
)
def test_the_port_is_the_schemes_unless_the_url_names_one(dns: Dns, url: str, port: int) -> None:
    dns.answer(HOST, [PUBLIC])

    assert webhooks.destination_of(url).port == port


def test_a_private_destination_is_refused_in_words_that_name_the_switch(dns: Dns) -> None:
    dns.answer(HOST, ["10.0.0.1"])

    with pytest.raises(webhooks.WebhookUrlError) as refused:
        webhooks.destination_of(f"https://{HOST}/x")

    assert str(refused.value) == (
        f"The host {HOST} is on a private or local network, which webhooks may not reach here "
        "(GREENROOM_WEBHOOK_ALLOW_PRIVATE turns this off)."
    )
