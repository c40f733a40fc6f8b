"""The one exception the registry's rules raise; the server turns it into a response."""

from __future__ import annotations

from typing import Any


class RegistryError(Exception):
    """An HTTP answer other than success: status, a human message, optional headers and body.

    `body` replaces the default `{"message": ...}` (or `{"error": ...}` on classic routes)
    when a route must answer a specific shape, like the web-auth challenge.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.body = body


def bad_request(message: str) -> RegistryError:
    return RegistryError(400, message)


def unauthorized() -> RegistryError:
    return RegistryError(401, "Unauthorized")


def forbidden(message: str = "Insufficient permissions to access this resource") -> RegistryError:
    return RegistryError(403, message)


def not_found(message: str = "Not Found") -> RegistryError:
    return RegistryError(404, message)


def stage_not_found() -> RegistryError:
    return RegistryError(404, "Not Found - No staged package version found with the provided ID.")


def conflict(message: str) -> RegistryError:
    return RegistryError(409, message)
