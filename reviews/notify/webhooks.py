"""Team webhooks: the only module that speaks HTTP to them.

A webhook URL is the team admin's input and, for Slack and its kin, a credential (the path is
the secret). It is checked before it is kept (http or https, a host, and unless
GREENROOM_WEBHOOK_ALLOW_PRIVATE is on, only public addresses: the portal must not become a way
into its own network), stored encrypted with the npm-token keys, and never shown, logged or
recorded again: pages show its scheme and host, errors name what went wrong, not where.

Every post checks the destination again, because a name can point elsewhere since it was saved
(or between two look-ups: DNS rebinding). The host is resolved once, by `resolve()`, every
address it has is checked, and the connection goes to the checked address and nowhere else
(`PinnedAdapter`), while the Host header, TLS SNI and the certificate check still use the host
name. No proxy from the environment is used: a proxy would resolve the name again.

Each message is a `WebhookDelivery`, claimed like an email, posted once per attempt with short
timeouts and no redirects followed, and retried on connection trouble, 429 and 5xx up to
MAX_ATTEMPTS times; a 4xx (or a redirect) is the endpoint's final word. Every attempt's result
is kept on the row, for the team admin's page: of an error reply, a short, escaped excerpt, and
only from a public address (an internal service's words are not the team admin's to read).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool

from reviews.audit import trail as audit
from reviews.audit.trail import Action, Actor
from reviews.decide import npm_tokens
from reviews.models import (
    DeliveryStatus,
    NotificationEvent,
    StagedVersion,
    Team,
    TeamNotificationSettings,
    WebhookDelivery,
)
from reviews.notify.dispatch import (
    DISCUSSION_KINDS,
    absolute,
    decision_words,
    discussion_words,
    event_summary,
    highlights,
    one_line,
    team_settings,
)

logger = logging.getLogger(__name__)

EventKind = NotificationEvent.Kind

MAX_URL = 2000
MAX_ATTEMPTS = 5
LEASE = timedelta(minutes=2)  # longer than one post can take (connect + read timeouts)
BACKOFF = 5.0  # seconds before the second attempt, doubled each time
BACKOFF_CAP = 300.0
STALE_AFTER = timedelta(minutes=5)
BATCH = 500
USER_AGENT = "Greenroom-Webhook/1"
MAX_REPLY_BYTES = 1024  # of an error reply, read at most
MAX_EXCERPT = 120  # characters of an error reply kept for the admin
SHOWN_DELIVERIES = 20


class WebhookUrlError(ValueError):
    """A URL we will not post to; the message is meant for the team admin."""


class HostNotResolved(WebhookUrlError):
    """The host name does not resolve now (which may pass)."""


# -- The URL --------------------------------------------------------------------------------------


@sensitive_variables()
def validate_url(url: str) -> str:
    """The URL, stripped, if it may be kept; raises WebhookUrlError otherwise."""
    url = url.strip()
    if len(url) > MAX_URL:
        raise WebhookUrlError(f"A webhook URL has at most {MAX_URL} characters.")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise WebhookUrlError("A webhook URL has no spaces or control characters.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        raise WebhookUrlError("That is not a URL.") from None
    if parts.scheme not in ("http", "https"):
        raise WebhookUrlError("A webhook URL starts with https:// (or http://).")
    if not parts.hostname:
        raise WebhookUrlError("A webhook URL names a host.")
    check_destination(url)
    return url


def check_destination(url: str) -> None:
    """Refuse hosts that resolve to an address `is_off_limits` names, unless
    GREENROOM_WEBHOOK_ALLOW_PRIVATE is on (an internal chat server)."""
    if not settings.GREENROOM_WEBHOOK_ALLOW_PRIVATE:
        destination_of(url)


Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 prefixes that carry an IPv4 address to a translator or tunnel: where the packet ends up
# is the IPv4 address inside. The local-use NAT64 prefix 64:ff9b:1::/48 is not decoded: it is a
# translator on this network, and it is refused with the rest of ::/8 (reserved space).
WELL_KNOWN_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True)
class Destination:
    """Where one post goes: the URL's host name (for Host, SNI and the certificate) and the
    one checked address the connection is made to."""

    scheme: str
    host: str  # ASCII (IDNA) form
    port: int
    address: Address
    public: bool  # the address is not off limits (a reply excerpt may be kept)

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def resolve(host: str) -> list[Address]:
    """Every address `host` has now, in the resolver's order. The only place a webhook's host
    is looked up: what is checked is what is connected to. (No port: it does not change the
    addresses, getaddrinfo would only copy it into each.)"""
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise HostNotResolved(f"The host {host} could not be resolved.") from None
    return [ipaddress.ip_address(str(sockaddr[0])) for *_, sockaddr in found]


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, NAT64 (well-known prefix) or 6to4 address leads to."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in WELL_KNOWN_NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return address.sixtofour


def is_off_limits(address: Address) -> bool:
    """True for an address a webhook may not reach without GREENROOM_WEBHOOK_ALLOW_PRIVATE:
    anything not global (loopback, private, link-local, shared 100.64.0.0/10, ...), reserved
    or multicast, judged by the IPv4 address inside for the forms that carry one."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            return is_off_limits(inner)
    return not address.is_global or address.is_reserved or address.is_multicast


def destination_of(url: str) -> Destination:
    """Resolve the URL's host once and check every address it has; the first is the one to
    connect to. Raises WebhookUrlError (HostNotResolved when the name does not resolve now)."""
    parts = urlsplit(url)
    host = ascii_host(parts.hostname or "")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = resolve(host)
    if not addresses:
        raise HostNotResolved(f"The host {host} could not be resolved.")
    if not settings.GREENROOM_WEBHOOK_ALLOW_PRIVATE and any(map(is_off_limits, addresses)):
        raise WebhookUrlError(
            f"The host {host} is on a private or local network, which webhooks may not "
            "reach here (GREENROOM_WEBHOOK_ALLOW_PRIVATE turns this off)."
        )
    pinned = addresses[0]
    return Destination(parts.scheme, host, port, pinned, public=not is_off_limits(pinned))


def ascii_host(host: str) -> str:
    """The host name as DNS, SNI and the Host header carry it."""
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        raise WebhookUrlError(f"The host name {host} is not a valid domain name.") from None


def url_hint(url: str) -> str:
    """What the admin sees of a webhook URL: its scheme and host, never the path."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/…"


class UrlUnreadable(Exception):
    pass


@sensitive_variables()
def stored_url(team_settings_row: TeamNotificationSettings) -> str | None:
    if not team_settings_row.webhook_url_encrypted:
        return None
    try:
        return npm_tokens.decrypt(team_settings_row.webhook_url_encrypted)
    except npm_tokens.TokenUnreadable:
        raise UrlUnreadable from None


# -- Setting it -----------------------------------------------------------------------------------


@sensitive_variables()
def set_webhook(team: Team, url: str, actor: Actor) -> None:
    """Keep the team's webhook URL (validated by the caller), encrypted, audited by host."""
    hint = url_hint(url)
    with transaction.atomic():
        row, _ = TeamNotificationSettings.objects.select_for_update().get_or_create(team=team)
        replaced = bool(row.webhook_url_encrypted)
        now = timezone.now()
        TeamNotificationSettings.objects.filter(pk=row.pk).update(
            webhook_url_encrypted=npm_tokens.encrypt(url),
            webhook_url_hint=hint,
            webhook_set_at=now,
            updated_at=now,
        )
        audit.record(
            Action.TEAM_WEBHOOK_SET,
            actor,
            target=f"team:{team.slug}",
            payload={"destination": hint, "replaced": replaced},
        )
    logger.info("team %s set its webhook to %s", team.slug, hint)


def remove_webhook(team: Team, actor: Actor) -> bool:
    with transaction.atomic():
        row = TeamNotificationSettings.objects.select_for_update().filter(team=team).first()
        if row is None or not row.webhook_url_encrypted:
            return False
        TeamNotificationSettings.objects.filter(pk=row.pk).update(
            webhook_url_encrypted="", webhook_url_hint="", webhook_set_at=None
        )
        # What was waiting for the old URL is not sent anywhere.
        WebhookDelivery.objects.filter(team=team, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.SKIPPED, last_error="the webhook was removed"
        )
        audit.record(
            Action.TEAM_WEBHOOK_REMOVED,
            actor,
            target=f"team:{team.slug}",
            payload={"destination": row.webhook_url_hint},
        )
    return True


def queue_test(team: Team) -> WebhookDelivery | None:
    """A test message for the team's webhook; None if it has none."""
    if not team_settings(team).webhook_url_encrypted:
        return None
    now = timezone.now()
    return WebhookDelivery.objects.create(
        key=f"test:{team.pk}:{uuid.uuid4()}",
        team=team,
        summary="Test message",
        created_at=now,
        updated_at=now,
        next_attempt_at=now,
    )


def rotate_keys() -> int:
    """Re-encrypt every stored webhook URL with the first of GREENROOM_TOKEN_KEYS (run with
    `rotate_token_keys`, before an old key is dropped); how many were rotated."""
    multi = npm_tokens.fernet()
    rotated = 0
    for row in TeamNotificationSettings.objects.exclude(webhook_url_encrypted="").iterator():
        try:
            fresh = multi.rotate(row.webhook_url_encrypted.encode()).decode()
        except Exception:
            logger.warning("the webhook URL of team %s is unreadable", row.team_id)
            continue
        TeamNotificationSettings.objects.filter(
            pk=row.pk, webhook_url_encrypted=row.webhook_url_encrypted
        ).update(webhook_url_encrypted=fresh)
        rotated += 1
    return rotated


# -- The message ----------------------------------------------------------------------------------


def slack_escape(text: str) -> str:
    """Slack's mrkdwn needs &, < and > escaped, or text could smuggle links and mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload_for(delivery: WebhookDelivery) -> dict[str, Any]:
    """Slack-compatible JSON: `text`, an attachment with fields (Slack and Mattermost show
    both), and the same facts under `greenroom` for machines."""
    event = delivery.event
    if event is None:
        text = f"Test message from Greenroom for team {delivery.team.name}."
        return {
            "text": slack_escape(text),
            "greenroom": {"event": "webhook.test", "team": delivery.team.slug},
        }
    stage = event.stage
    if stage is None:
        return team_payload(delivery.team, event)
    url = absolute(reverse("reviews:stage", args=[stage.stage_id]))
    name = f"{stage.package_name}@{stage.version}"
    facts: dict[str, Any] = {
        "event": str(event.kind),
        "team": delivery.team.slug,
        "package": stage.package_name,
        "version": stage.version,
        "tag": stage.tag,
        "staged_by": stage.actor_label,
        "staged_at": stage.staged_at.isoformat(),
        "state": stage.state,
        "integrity": stage.integrity,
        "stage_id": str(stage.stage_id),
        "url": url,
    }
    fields = [
        ("Package", name),
        ("Tag", stage.tag or "none"),
        ("Staged by", stage.actor_label or "unknown"),
        ("Tarball", stage.get_integrity_display()),
    ]
    if event.kind == EventKind.NEW_STAGE:
        found = highlights(stage)
        if found is not None:
            facts.update(
                changed_files=found.counts,
                install_scripts=found.install_scripts,
                new_dependencies=found.new_dependencies,
                risk=found.risk or "none",
                top_findings=found.findings,
            )
            fields.insert(0, ("Risk", found.risk or "none found"))
            if found.findings:
                more = f" (and {found.more_findings} more)" if found.more_findings else ""
                fields.insert(1, ("Findings", "; ".join(found.findings) + more))
            counts = ", ".join(f"{n} {status}" for status, n in found.counts.items())
            fields.append(("Files", counts or "no changes"))
            if found.install_scripts:
                fields.append(("Install scripts", "; ".join(found.install_scripts)))
            if found.new_dependencies:
                fields.append(("New dependencies", ", ".join(found.new_dependencies)))
        headline = f"New stage: {name} ({stage.tag or 'no tag'}) by {stage.actor_label}"
    elif event.kind == EventKind.DECIDED:
        words = decision_words(stage)
        facts.update(
            decided_by=stage.decided_by.get_username() if stage.decided_by else None,
            decided_npm_user=stage.decided_npm_user or None,
            decided_in_greenroom=stage.decided_in_portal,
        )
        fields.append(("Decision", words))
        headline = f"{name} was {words}"
    elif event.kind in DISCUSSION_KINDS:
        headline = event_summary(event)
        facts.update(review_event=discussion_words(event))
    else:
        days = max((timezone.now() - stage.staged_at).days, 0)
        facts.update(reminder=event.number, waiting_days=days)
        headline = f"Reminder: {name} has been waiting {days} days for a decision"
    summary = one_line(headline, 300)
    return {
        "text": f"{slack_escape(summary)} <{url}|Review it in Greenroom>",
        "attachments": [
            {
                "fallback": slack_escape(summary),
                "color": _colour(event, stage),
                "title": slack_escape(one_line(event_summary(event), 300)),
                "title_link": url,
                "fields": [
                    {"title": title, "value": slack_escape(one_line(value, 1000)), "short": True}
                    for title, value in fields
                ],
            }
        ],
        "greenroom": facts,
    }


def team_payload(team: Team, event: NotificationEvent) -> dict[str, Any]:
    """A team's own event (its review policy changed): a line and a link to the team page."""
    url = absolute(reverse("reviews:team", args=[team.slug]))
    summary = one_line(event_summary(event), 300)
    return {
        "text": f"{slack_escape(summary)} <{url}|See it in Greenroom>",
        "greenroom": {"event": str(event.kind), "team": team.slug, "url": url},
    }


def _colour(event: NotificationEvent, stage: StagedVersion) -> str:
    if stage.integrity == StagedVersion.Integrity.MISMATCH:
        return "danger"
    if event.kind == EventKind.DECIDED:
        return "good" if stage.state == StagedVersion.State.APPROVED else "#888888"
    return "warning" if event.kind == EventKind.REMINDER else "#439FE0"


# -- Posting --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """How one post went, in words that never include the URL."""

    ok: bool
    status: int | None = None
    error: str = ""
    transient: bool = False
    retry_after: float | None = None


class PinnedAdapter(HTTPAdapter):
    """Sends every request to `destination.address`, whatever its URL says (proxies included:
    `get_connection_with_tls_context` never looks at them); for https, SNI and the
    certificate's name check use the host name."""

    def __init__(self, destination: Destination) -> None:
        self.destination = destination
        super().__init__(max_retries=0)

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: bool | str | None,
        proxies: Mapping[str, str] | None = None,
        cert: str | tuple[str, str] | None = None,
    ) -> HTTPConnectionPool:
        to = self.destination
        # requests' own TLS settings from `verify` and `cert`: only where the pool connects is
        # ours. A `verify` of None (which requests' send never passes) verifies, as True does.
        _, tls = self.build_connection_pool_key_attributes(
            request, True if verify is None else verify, cert
        )
        pool_kwargs: dict[str, Any] = dict(tls)
        if to.scheme == "https":
            # urllib3's HTTPSConnectionPool sends server_hostname as SNI and has the ssl module
            # match the certificate against it (without it, against the address). Setting
            # assert_hostname too would only move that match into urllib3.
            pool_kwargs.update(server_hostname=to.host)
        pool: HTTPConnectionPool = self.poolmanager.connection_from_host(
            str(to.address), to.port, to.scheme, pool_kwargs=pool_kwargs
        )
        return pool


def trusted_cas() -> bool | str:
    """What `verify` gets: the CA bundle the operator named the way requests reads it (the
    environment is otherwise ignored, for its proxies), or requests' own."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


@sensitive_variables()
def post(url: str, payload: dict[str, Any]) -> Answer:
    """One POST of `payload` as JSON to the address checked now; no redirects followed, short
    timeouts."""
    try:
        to = destination_of(url)
    except WebhookUrlError as e:
        return Answer(False, error=str(e), transient=isinstance(e, HostNotResolved))
    try:
        status, retry_after, reply = _send(url, to, payload)
    except requests.Timeout:
        return Answer(False, error="the endpoint did not answer in time", transient=True)
    except requests.exceptions.SSLError:
        return Answer(
            False,
            error="the endpoint's TLS certificate was not accepted for its host name",
            transient=True,
        )
    except requests.ConnectionError:
        return Answer(False, error="could not connect to the endpoint", transient=True)
    except requests.RequestException as e:
        # The exception's own text quotes the URL; say only what kind of failure it was.
        return Answer(False, error=f"the request failed ({type(e).__name__})")
    return answer_for(status, retry_after, reply)


@sensitive_variables()
def _send(url: str, to: Destination, payload: dict[str, Any]) -> tuple[int, str, bytes | None]:
    """Status, Retry-After and, for an error from a public address, the start of the reply."""
    timeout = settings.GREENROOM_WEBHOOK_TIMEOUT
    with requests.Session() as session:
        session.trust_env = False  # no proxies, no .netrc: the checked address, as is
        adapter = PinnedAdapter(to)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        with session.post(
            url,
            json=payload,
            timeout=(timeout, timeout),
            allow_redirects=False,
            stream=True,
            verify=trusted_cas(),
            headers={"User-Agent": USER_AGENT, "Host": to.host_header},
        ) as response:
            status = response.status_code
            retry_after = response.headers.get("Retry-After", "")
            reply = None
            if to.public and not 200 <= status < 300:
                reply = next(response.iter_content(MAX_REPLY_BYTES), b"")
    return status, retry_after, reply


def answer_for(status: int, retry_after: str, reply: bytes | None) -> Answer:
    """The endpoint's answer in the admin's words; `reply` is None when it is not to be kept."""
    if 200 <= status < 300:
        return Answer(True, status)
    if 300 <= status < 400:
        return Answer(
            False, status, "the endpoint redirected; redirects are not followed, set the final URL"
        )
    said = "(the reply of a private address is not kept)" if reply is None else excerpt(reply)
    error = f"{status} {said}".strip()
    if status == 429 or status >= 500:
        return Answer(False, status, error, transient=True, retry_after=_seconds(retry_after))
    return Answer(False, status, error)


def excerpt(reply: bytes) -> str:
    """A few words of an error reply for the admin's page: one line, without control or
    format characters, anything outside printable ASCII escaped (\\xe9, \\u0430: no
    look-alike letters or bidi tricks), cut at MAX_EXCERPT."""
    text = one_line(reply.decode(errors="replace"), MAX_REPLY_BYTES)
    escaped = text.encode("ascii", "backslashreplace").decode("ascii")
    return escaped if len(escaped) <= MAX_EXCERPT else escaped[: MAX_EXCERPT - 1] + "…"


def _seconds(value: str) -> float | None:
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


# -- One delivery ---------------------------------------------------------------------------------


class RetryDelivery(Exception):
    def __init__(self, error: str, retry_in: float) -> None:
        super().__init__(error)
        self.retry_in = retry_in


DELIVERED = "delivered"
FAILED = "failed"
SKIPPED = "skipped"
BUSY = "busy"


def deliver(delivery_id: int) -> str:
    """Post one delivery once. Raises RetryDelivery for a transient failure while attempts
    remain; records every attempt's answer on the row."""
    now = timezone.now()
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - LEASE))
        .update(claimed_at=now, attempts=F("attempts") + 1)
    )
    if not claimed:
        return BUSY
    delivery = WebhookDelivery.objects.select_related(
        "team__notification_settings", "event__stage__decided_by"
    ).get(pk=delivery_id)
    try:
        url = stored_url(team_settings(delivery.team))
    except UrlUnreadable:
        _record(
            delivery,
            now,
            DeliveryStatus.FAILED,
            None,
            "the webhook URL can no longer be read; set it again",
        )
        return FAILED
    if url is None:
        _record(delivery, now, DeliveryStatus.SKIPPED, None, "no webhook is set")
        return SKIPPED
    answer = post(url, payload_for(delivery))
    if answer.ok:
        _record(delivery, now, DeliveryStatus.SENT, answer.status, "")
        return DELIVERED
    if answer.transient and delivery.attempts < MAX_ATTEMPTS:
        delay = min(BACKOFF * 2.0 ** (delivery.attempts - 1), BACKOFF_CAP)
        delay = min(max(delay, answer.retry_after or 0.0), BACKOFF_CAP)
        WebhookDelivery.objects.filter(pk=delivery.pk, claimed_at=now).update(
            claimed_at=None,
            next_attempt_at=now + timedelta(seconds=delay),
            last_status_code=answer.status,
            last_error=answer.error[:500],
            updated_at=timezone.now(),
        )
        logger.info(
            "webhook delivery %s of team %s deferred: %s",
            delivery.pk,
            delivery.team.slug,
            answer.error,
        )
        raise RetryDelivery(answer.error, delay)
    _record(delivery, now, DeliveryStatus.FAILED, answer.status, answer.error)
    logger.warning(
        "webhook delivery %s of team %s failed: %s", delivery.pk, delivery.team.slug, answer.error
    )
    return FAILED


def _record(
    delivery: WebhookDelivery, claim: datetime, status: str, code: int | None, error: str
) -> None:
    now = timezone.now()
    WebhookDelivery.objects.filter(pk=delivery.pk, claimed_at=claim).update(
        status=status,
        claimed_at=None,
        delivered_at=now if status == DeliveryStatus.SENT else None,
        last_status_code=code,
        last_error=error[:500],
        updated_at=now,
    )


def stale_deliveries(now: datetime | None = None) -> list[int]:
    """Pending deliveries whose task was lost: post them again."""
    now = now or timezone.now()
    return list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lt=now - STALE_AFTER
        )
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - LEASE))
        .order_by("id")
        .values_list("id", flat=True)[:BATCH]
    )


def recent_deliveries(team: Team) -> list[WebhookDelivery]:
    return list(team.webhook_deliveries.order_by("-created_at", "-id")[:SHOWN_DELIVERIES])
