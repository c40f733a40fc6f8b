"""`Authorization: Bearer grn_…` for django-ninja: the token, then its rate limit."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import HttpBearer

from reviews.api import ratelimit, tokens
from reviews.api.errors import ApiError
from reviews.models import ApiToken


class BearerToken(HttpBearer):
    """`Authorization: Bearer grn_…`, then the token's rate limit. Unlike the base class this
    never logs the header, whatever scheme it names."""

    def __call__(self, request: HttpRequest) -> ApiToken | None:
        scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return None
        return self.authenticate(request, secret.strip())

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken:
        record = tokens.authenticate(token)
        wait = ratelimit.retry_after(record.digest[:16])
        if wait is not None:
            raise ApiError(
                429,
                "rate_limited",
                f"Too many requests with this token; try again in {wait} seconds.",
                headers={"Retry-After": str(wait)},
            )
        request.user = record.user
        return record
