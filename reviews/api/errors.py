"""One error shape for every API error: `{"error": {"code", "message"}}`, whatever the status.

django-ninja's own answers ({"detail": …}, a plain-text 405, a traceback in DEBUG) are all
replaced here, so a client parses one shape and never sees a stack trace.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from reviews.api.tokens import TokenRefused

logger = logging.getLogger(__name__)

JSON = "application/json; charset=utf-8"
CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    422: "invalid_request",
    429: "rate_limited",
    500: "server_error",
    501: "not_implemented",
}


class ApiError(Exception):
    """An answer other than success, raised from anywhere below an operation."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    response = HttpResponse(json.dumps({"error": error}), status=status, content_type=JSON)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def unauthenticated(message: str, code: str = "unauthenticated") -> HttpResponse:
    return error_response(401, code, message, headers={"WWW-Authenticate": 'Bearer realm="api"'})


def error_for(request: HttpRequest, exc: Exception | type[Exception]) -> HttpResponse:
    """Every exception an operation raises, as the API's error shape."""
    if isinstance(exc, type):  # ninja's type allows raising a class
        exc = exc()
    match exc:
        case ApiError():
            return error_response(
                exc.status, exc.code, exc.message, details=exc.details, headers=exc.headers
            )
        case TokenRefused():
            return unauthenticated(exc.message, exc.code)
        case AuthenticationError():  # no token at all (a subclass of HttpError: first)
            return unauthenticated(
                "Send an API token: Authorization: Bearer grn_… (make one on your settings page)."
            )
        case ValidationError():
            return invalid_request(exc)
        case HttpError():
            status = exc.status_code
            return error_response(status, CODES.get(status, "error"), str(exc))
        case Http404():
            return error_response(404, "not_found", str(exc) or "Not found.")
        case PermissionDenied():
            return error_response(403, "forbidden", str(exc) or "You may not do this.")
    failure = (type(exc), exc, exc.__traceback__)
    logger.error("API request %s %s failed", request.method, request.path, exc_info=failure)
    return error_response(
        500, "server_error", "Something went wrong on our side. It was logged; try again later."
    )


def invalid_request(exc: ValidationError) -> HttpResponse:
    details = [
        {
            "location": ".".join(str(part) for part in error.get("loc", ())),
            "message": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in exc.errors
    ]
    first = details[0] if details else {"location": "request", "message": "invalid"}
    message = f"{first['location']}: {first['message']}"
    return error_response(422, "invalid_request", message, details=details)


def install(api: NinjaAPI) -> None:
    # ninja registers its own handlers for these (looked up along the exception's MRO before
    # Exception's): replace every one of them.
    for kind in (Exception, HttpError, ValidationError, Http404):
        api.add_exception_handler(kind, error_for)


def json_method_errors(view: Callable[..., Any]) -> Callable[..., Any]:
    """django-ninja answers a method an operation does not have with plain text; say it in the
    API's shape, with the same `Allow` header."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        response = view(request, *args, **kwargs)
        if isinstance(response, HttpResponseNotAllowed):
            return error_response(
                405,
                "method_not_allowed",
                f"{request.method} is not allowed here; use {response['Allow']}.",
                headers={"Allow": response["Allow"]},
            )
        return response

    return wrapped


def not_found_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    return error_response(404, "not_found", "There is no such API endpoint; see /api/v1/docs.")
