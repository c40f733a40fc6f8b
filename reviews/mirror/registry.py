"""The registry client: the one module that speaks HTTP to the npm registry.

It talks the way the npm CLI does (npm-registry-fetch): a bearer token, `npm-otp` when a second
factor is given, `npm-auth-type: web` to ask for the security-key flow, `npm-command: stage` on
stage routes, scoped names escaped as `@scope%2fname`. Every call has a timeout, and every
failure becomes one of the typed errors below so callers can tell them apart.

Nothing here retries. Reads are retried by their callers (sync, tasks) where that is safe;
approve and reject are never retried at all: a one-time code is spent at most once.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import IO, Any, BinaryIO, Self, cast
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

logger = logging.getLogger(__name__)

USER_AGENT = (
    f"greenroom/0.1.0 python/{sys.version_info.major}.{sys.version_info.minor} "
    f"requests/{requests.__version__}"
)
CHUNK_SIZE = 64 * 1024
SPOOL_MAX_MEMORY = 8 * 1024 * 1024  # tarballs above this go to a temporary file
MAX_ERROR_TEXT = 500
MAX_ERROR_BODY = 64 * 1024
MAX_JSON_BODY = 64 * 1024 * 1024  # the largest packuments are tens of megabytes

Timeout = float | tuple[float, float]


def redact_url(url: str) -> str:
    """The URL without any user:password@ part, safe to log, show or put in an exception."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


def escape_name(name: str) -> str:
    """A package name as a path segment, the way npm-package-arg's escapedName spells it."""
    return quote(name, safe="@").replace("%2F", "%2f")


def _stage_path(stage_id: uuid.UUID | str, suffix: str = "") -> str:
    # Parsing the id is the npm CLI's validateUUID, and keeps anything else out of the path.
    return f"/-/stage/{uuid.UUID(str(stage_id))}{suffix}"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


# -- Errors ---------------------------------------------------------------------------------------


class RegistryError(Exception):
    """The registry refused or could not answer. `status` is None when no response came back."""

    transient = False

    def __init__(self, message: str, *, status: int | None = None, notice: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.notice = notice  # the registry's npm-notice header: a message meant for the human

    def __str__(self) -> str:
        if self.status is None:
            return self.message
        return f"{self.status}: {self.message}"


class Unavailable(RegistryError):
    """Timeout, connection failure, 5xx, a truncated body or an answer that is not what the
    protocol says. Worth trying again later."""

    transient = True


class RateLimited(RegistryError):
    """429. `retry_after` is the wait in seconds the registry asked for (None if it did not)."""

    transient = True

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 429,
        notice: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, notice=notice)
        self.retry_after = retry_after


class Unauthorized(RegistryError):
    """401: the token is missing, wrong or expired."""


class IpNotAllowed(Unauthorized):
    """401 with `www-authenticate: ipaddress`: the token's IP allowlist refused this caller."""


class OtpRequired(RegistryError):
    """401 asking for a one-time password (`www-authenticate: otp`, or a body that says so).
    Also raised when a code was given and the registry refused it."""


class WebAuthRequired(OtpRequired):
    """401 asking for a security key: open `auth_url` in a browser, poll `done_url`."""

    def __init__(
        self,
        message: str,
        *,
        auth_url: str,
        done_url: str,
        status: int | None = 401,
        notice: str = "",
    ) -> None:
        super().__init__(message, status=status, notice=notice)
        self.auth_url = auth_url
        self.done_url = done_url


class Forbidden(RegistryError):
    """403: not allowed (not an owner, 2FA not enabled on the account, ...)."""


class NotFound(RegistryError):
    """404: no such stage or package, or already decided."""


class Conflict(RegistryError):
    """409: the version exists already, or the stage was decided meanwhile."""


class TarballTooLarge(RegistryError):
    """The tarball is bigger than the portal agrees to download."""


def is_transient(error: BaseException) -> bool:
    """Whether trying the same request again later may succeed."""
    return isinstance(error, RegistryError) and error.transient


# -- Results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    id: uuid.UUID
    package_name: str
    version: str
    tag: str
    created_at: datetime
    actor: str
    actor_type: str
    access: str
    shasum: str

    @classmethod
    def from_json(cls, item: object) -> Stage:
        """Parse one stage as the registry sent it; anything off-protocol is `Unavailable`."""
        if not isinstance(item, dict):
            raise Unavailable("malformed stage: not an object")
        try:
            created_at = datetime.fromisoformat(_text(item, "createdAt", required=True))
            if timezone.is_naive(created_at):
                raise ValueError("no time zone")
            stage = cls(
                id=uuid.UUID(_text(item, "id", required=True)),
                package_name=_text(item, "packageName", required=True, max_length=214),
                version=_text(item, "version", required=True, max_length=256),
                tag=_text(item, "tag", max_length=256),
                created_at=created_at,
                actor=_text(item, "actor", max_length=214),
                actor_type=_text(item, "actorType", max_length=64),
                access=_text(item, "access", max_length=16),
                shasum=_text(item, "shasum", required=True).lower(),
            )
        except (TypeError, ValueError) as e:
            raise Unavailable(f"malformed stage: {e}") from None
        if not re.fullmatch(r"[0-9a-f]{40}", stage.shasum):
            raise Unavailable("malformed stage: shasum is not a SHA-1 hex digest")
        return stage


def _text(item: Mapping[str, Any], key: str, *, required: bool = False, max_length: int = 0) -> str:
    value = item.get(key)
    if value is None and not required:
        return ""  # actorType and friends may be missing or null
    if not isinstance(value, str) or (required and not value):
        raise ValueError(f"{key} is missing or not a string")
    if max_length and len(value) > max_length:
        raise ValueError(f"{key} is longer than {max_length} characters")
    return value


@dataclass(frozen=True)
class StagePage:
    items: list[Stage]
    page: int
    per_page: int
    total: int


@dataclass(frozen=True)
class Reply:
    """A successful answer to approve or reject: its status and what to show the person."""

    status: int
    message: str
    notice: str


@dataclass(frozen=True)
class WebAuthPoll:
    """One poll of a security-key login: `token` once the person is done, else wait."""

    token: str | None
    retry_after: float


@dataclass(frozen=True)
class Packument:
    name: str
    dist_tags: dict[str, str]
    versions: dict[str, dict[str, Any]]
    raw: dict[str, Any] = field(repr=False)

    def dist(self, version: str) -> dict[str, Any] | None:
        """The `dist` object of a published version (shasum, integrity, tarball), if any."""
        manifest = self.versions.get(version)
        if manifest is None:
            return None
        dist = manifest.get("dist")
        return dist if isinstance(dist, dict) else {}


class DownloadedTarball:
    """A tarball's bytes in a temporary file, with the digests computed while they arrived."""

    def __init__(self, file: BinaryIO, size: int, sha1: str, sha256: str, integrity: str) -> None:
        self.file = file
        self.size = size
        self.sha1 = sha1
        self.sha256 = sha256
        self.integrity = integrity  # sha512 SRI string, as npm writes it

    def open(self) -> BinaryIO:
        """The file, rewound to its start."""
        self.file.seek(0)
        return self.file

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# -- The client -----------------------------------------------------------------------------------


class RegistryClient:
    """One registry, one token. Not thread-safe: make one per thread or task."""

    def __init__(self, base_url: str, token: str = "", *, timeout: Timeout | None = None) -> None:
        if not base_url:
            raise ImproperlyConfigured("the registry URL is empty")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ImproperlyConfigured(f"not an http(s) registry URL: {redact_url(base_url)}")
        # Credentials in the URL are basic auth, as npm treats them, unless there is a token.
        self._basic_auth: tuple[str, str] | None = None
        if parts.username is not None and not token:
            self._basic_auth = (parts.username or "", parts.password or "")
        netloc = parts.netloc.rpartition("@")[2]
        self.base_url = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self._origin = _origin(self.base_url)
        self._token = token
        if timeout is None:
            timeout = settings.GREENROOM_REGISTRY_TIMEOUT
        self.timeout: tuple[float, float] = (
            timeout if isinstance(timeout, tuple) else (timeout, timeout)
        )
        # A plain session: requests' default adapter does not retry, and nothing here adds one.
        self.session = requests.Session()
        self.session.headers.update({"user-agent": USER_AGENT, "accept": "application/json"})

    def __repr__(self) -> str:
        return f"<RegistryClient {self.base_url}>"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # Stage routes

    def list_stages(
        self, page: int = 0, per_page: int = 100, package: str | None = None
    ) -> StagePage:
        params: dict[str, str | int] = {"page": page, "perPage": per_page}
        if package:
            params["package"] = package
        body = self._json("GET", "/-/stage", params=params, stage=True)
        items = body.get("items")
        total = body.get("total")
        if not isinstance(items, list) or not isinstance(total, int) or isinstance(total, bool):
            raise Unavailable("malformed stage list: items or total missing")
        return StagePage(
            items=[Stage.from_json(item) for item in items],
            page=_int_or(body.get("page"), page),
            per_page=_int_or(body.get("perPage"), per_page),
            total=total,
        )

    def get_stage(self, stage_id: uuid.UUID | str) -> Stage:
        return Stage.from_json(self._json("GET", _stage_path(stage_id), stage=True))

    def download_stage_tarball(
        self, stage_id: uuid.UUID | str, max_bytes: int, *, max_seconds: float | None = None
    ) -> DownloadedTarball:
        url = self.base_url + _stage_path(stage_id, "/tarball")
        return self._download(url, max_bytes, max_seconds=max_seconds, stage=True)

    def approve_stage(
        self, stage_id: uuid.UUID | str, otp: str | None = None, web: bool = False
    ) -> Reply:
        """Publish a staged version. Sent once; a refused code raises and is not re-sent."""
        response = self._request(
            "POST", _stage_path(stage_id, "/approve"), otp=otp, web=web, stage=True
        )
        return _reply(response)

    def reject_stage(
        self, stage_id: uuid.UUID | str, otp: str | None = None, web: bool = False
    ) -> Reply:
        """Delete a staged version and its tarball at the registry. Sent once, never retried."""
        response = self._request("DELETE", _stage_path(stage_id), otp=otp, web=web, stage=True)
        return _reply(response)

    def poll_web_auth_done(self, done_url: str) -> WebAuthPoll:
        """One look at a security-key login: 202 means wait `retry_after`, 200 carries the token
        to send as `npm-otp` with the request that was challenged."""
        if urlsplit(done_url).scheme not in ("http", "https"):
            raise Unavailable("the registry sent a doneUrl that is not an http(s) URL")
        # The token goes only to the registry itself, wherever the doneUrl points.
        response = self._send(
            "GET", done_url, authenticate=self._same_origin(done_url), allow_redirects=False
        )
        if response.status_code != 200:
            response.close()
        if response.status_code == 202:
            return WebAuthPoll(token=None, retry_after=_retry_after(response) or 1.0)
        if response.status_code != 200:
            raise Unavailable(
                f"unexpected answer {response.status_code} while waiting for the security key",
                status=response.status_code,
            )
        body = _parse_json(response)
        token = body.get("token")
        if not isinstance(token, str) or not token:
            raise Unavailable("the security-key login finished without a token", status=200)
        return WebAuthPoll(token=token, retry_after=0.0)

    # Other routes

    def whoami(self) -> str:
        username = self._json("GET", "/-/whoami").get("username")
        if not isinstance(username, str):
            raise Unavailable("malformed whoami answer")
        return username

    def get_packument(self, name: str) -> Packument:
        body = self._json("GET", "/" + escape_name(name))
        versions = body.get("versions", {})
        dist_tags = body.get("dist-tags", {})
        if not isinstance(versions, dict) or not isinstance(dist_tags, dict):
            raise Unavailable("malformed packument: versions or dist-tags is not an object")
        return Packument(
            name=str(body.get("name", name)),
            dist_tags={str(k): str(v) for k, v in dist_tags.items()},
            versions={str(k): v for k, v in versions.items() if isinstance(v, dict)},
            raw=body,
        )

    def download_tarball(
        self, url: str, max_bytes: int, *, max_seconds: float | None = None
    ) -> DownloadedTarball:
        """A published version's tarball, from its `dist.tarball` URL on this registry only."""
        if not self._same_origin(url):
            raise RegistryError(f"refusing a tarball URL off the registry: {redact_url(url)}")
        return self._download(url, max_bytes, max_seconds=max_seconds)

    # Plumbing

    def _same_origin(self, url: str) -> bool:
        try:
            return _origin(url) == self._origin
        except ValueError:
            return False

    def _headers(self, *, otp: str | None, web: bool, stage: bool) -> dict[str, str]:
        headers = {}
        if stage:
            headers["npm-command"] = "stage"
        if web:
            headers["npm-auth-type"] = "web"
        if otp:
            headers["npm-otp"] = otp
        return headers

    def _send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str | int] | None = None,
        authenticate: bool = True,
        allow_redirects: bool = True,
    ) -> requests.Response:
        """Send one request and return the response with its body unread; 4xx/5xx raise."""
        all_headers = dict(headers or {})
        auth = None
        if authenticate and self._token:
            all_headers["authorization"] = f"Bearer {self._token}"
        elif authenticate:
            auth = self._basic_auth
        started = time.monotonic()
        try:
            response = self.session.request(
                method,
                url,
                headers=all_headers,
                params=params,
                auth=auth,
                stream=True,
                timeout=self.timeout,
                allow_redirects=allow_redirects,
            )
        except requests.Timeout:
            raise Unavailable(f"{method} {redact_url(url)} timed out") from None
        except requests.RequestException as e:
            raise Unavailable(f"{method} {redact_url(url)} failed: {type(e).__name__}") from None
        logger.debug(
            "registry %s %s -> %s in %.0f ms",
            method,
            redact_url(response.url),
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        if response.status_code >= 400:
            with response:
                raise _error_for(response, _read_body(response, MAX_ERROR_BODY, truncate=True))
        return response

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        otp: str | None = None,
        web: bool = False,
        stage: bool = False,
    ) -> requests.Response:
        headers = self._headers(otp=otp, web=web, stage=stage)
        # A write is sent exactly once and not re-sent to wherever a redirect points.
        return self._send(
            method,
            self.base_url + path,
            headers=headers,
            params=params,
            allow_redirects=method == "GET",
        )

    def _json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        stage: bool = False,
    ) -> dict[str, Any]:
        return _parse_json(self._request(method, path, params=params, stage=stage))

    def _download(
        self, url: str, max_bytes: int, *, max_seconds: float | None, stage: bool = False
    ) -> DownloadedTarball:
        headers = self._headers(otp=None, web=False, stage=stage)
        # Identity, so the length on the wire is the length of the tarball.
        headers.update({"accept": "application/octet-stream", "accept-encoding": "identity"})
        response = self._send("GET", url, headers=headers)
        with response:
            expected = _content_length(response)
            if expected is not None and expected > max_bytes:
                raise TarballTooLarge(
                    f"tarball is {expected} bytes, more than the {max_bytes} allowed",
                    status=response.status_code,
                )
            # Handed to the caller open, inside a DownloadedTarball that closes it.
            spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_MEMORY)  # noqa: SIM115
            try:
                size, digests = _stream_to(spool, response, url, max_bytes, max_seconds)
            except BaseException:
                spool.close()
                raise
        if expected is not None and size != expected:
            spool.close()
            raise Unavailable(
                f"tarball truncated: got {size} of {expected} bytes", status=response.status_code
            )
        spool.seek(0)
        return DownloadedTarball(
            file=cast(BinaryIO, spool),
            size=size,
            sha1=digests[0].hexdigest(),
            sha256=digests[1].hexdigest(),
            integrity="sha512-" + base64.b64encode(digests[2].digest()).decode(),
        )


def _stream_to(
    spool: IO[bytes],
    response: requests.Response,
    url: str,
    max_bytes: int,
    max_seconds: float | None,
) -> tuple[int, tuple[Any, Any, Any]]:
    digests = (hashlib.sha1(usedforsecurity=False), hashlib.sha256(), hashlib.sha512())
    size = 0
    started = time.monotonic()
    try:
        for chunk in response.iter_content(CHUNK_SIZE):
            size += len(chunk)
            if size > max_bytes:
                raise TarballTooLarge(
                    f"tarball is more than the {max_bytes} bytes allowed",
                    status=response.status_code,
                )
            if max_seconds is not None and time.monotonic() - started > max_seconds:
                raise Unavailable(f"tarball download took more than {max_seconds:.0f} s")
            for digest in digests:
                digest.update(chunk)
            spool.write(chunk)
    except requests.RequestException as e:
        # urllib3 notices a body shorter than its content-length and lands here too.
        raise Unavailable(
            f"tarball download from {redact_url(url)} broke off: {type(e).__name__}",
            status=response.status_code,
        ) from None
    return size, digests


def _error_for(response: requests.Response, content: bytes) -> RegistryError:
    """The typed error for a 4xx/5xx answer, as npm-registry-fetch's check-response decides."""
    status = response.status_code
    notice = response.headers.get("npm-notice", "")[:MAX_ERROR_TEXT]
    text = content.decode("utf-8", errors="replace")
    try:
        body = json.loads(text) if text else None
    except (ValueError, RecursionError):
        body = None
    message = _message(body, text, response.reason or "")
    if status == 401:
        challenges = [
            part.strip().lower() for part in response.headers.get("www-authenticate", "").split(",")
        ]
        if "ipaddress" in challenges:
            return IpNotAllowed(message, status=status, notice=notice)
        if isinstance(body, dict):
            auth_url, done_url = body.get("authUrl"), body.get("doneUrl")
            if _is_http_url(auth_url) and _is_http_url(done_url):
                return WebAuthRequired(
                    message or "security-key authentication required",
                    auth_url=str(auth_url),
                    done_url=str(done_url),
                    status=status,
                    notice=notice,
                )
        if "otp" in challenges or "one-time pass" in text:
            return OtpRequired(message, status=status, notice=notice)
        return Unauthorized(message, status=status, notice=notice)
    if status == 429:
        return RateLimited(
            message, status=status, notice=notice, retry_after=_retry_after(response)
        )
    if status >= 500:
        return Unavailable(message, status=status, notice=notice)
    error_class: type[RegistryError] = {403: Forbidden, 404: NotFound, 409: Conflict}.get(
        status, RegistryError
    )
    return error_class(message, status=status, notice=notice)


def _message(body: object, text: str, reason: str) -> str:
    if isinstance(body, dict):
        for key in ("message", "error", "reason"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value[:MAX_ERROR_TEXT]
    if text and body is None and not text.lstrip().startswith("<"):
        return text.strip()[:MAX_ERROR_TEXT]
    return reason


def _reply(response: requests.Response) -> Reply:
    # The status is the answer: a body that breaks off after a 201 or 204 does not undo it.
    with response:
        try:
            content = _read_body(response, MAX_ERROR_BODY, truncate=True)
        except Unavailable:
            content = b""
    try:
        body = json.loads(content) if content else None
    except (ValueError, RecursionError):
        body = None
    return Reply(
        status=response.status_code,
        message=_message(body, "", ""),
        notice=response.headers.get("npm-notice", "")[:MAX_ERROR_TEXT],
    )


def _read_body(response: requests.Response, limit: int, *, truncate: bool = False) -> bytes:
    """At most `limit` bytes of the body: cut there, or refused as `Unavailable`."""
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in response.iter_content(CHUNK_SIZE):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                if truncate:
                    break
                raise Unavailable(
                    f"the answer is larger than {limit} bytes", status=response.status_code
                )
    except requests.RequestException as e:
        raise Unavailable(
            f"the answer broke off: {type(e).__name__}", status=response.status_code
        ) from None
    return b"".join(chunks)[:limit]


def _parse_json(response: requests.Response) -> dict[str, Any]:
    with response:
        content = _read_body(response, MAX_JSON_BODY)
    try:
        body = json.loads(content)
    except (ValueError, RecursionError):  # nesting too deep for Python's parser: malformed too
        raise Unavailable(
            "the registry answered with malformed JSON", status=response.status_code
        ) from None
    if not isinstance(body, dict):
        raise Unavailable(
            "the registry answered with JSON that is not an object", status=response.status_code
        )
    return body


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if timezone.is_naive(when):
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("content-length")
    if value is None or response.headers.get("content-encoding", "identity") != "identity":
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _int_or(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _is_http_url(value: object) -> bool:
    return isinstance(value, str) and urlsplit(value).scheme in ("http", "https")


def sync_client(*, timeout: Timeout | None = None) -> RegistryClient:
    """The client the sync uses: the configured registry and the read-only sync token."""
    if not settings.GREENROOM_REGISTRY_URL:
        raise ImproperlyConfigured(
            "GREENROOM_REGISTRY_URL is not set: there is no registry to sync"
        )
    return RegistryClient(
        settings.GREENROOM_REGISTRY_URL, settings.GREENROOM_SYNC_TOKEN, timeout=timeout
    )
