"""API tests: a token per persona (tests/personas.py), and a client that sends it."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.test import Client

from reviews.api import tokens
from reviews.audit.trail import SYSTEM

# The dev registry with npm people who approve with TOTP, for the end-to-end test.
from tests.decide.conftest import registry, traffic  # noqa: F401

API = "/api/v1"


def token_for(user: User, **options: Any) -> str:
    return tokens.create(user, "test", SYSTEM, **options).secret


class ApiClient:
    """Django's test client with `Authorization: Bearer …` on every request."""

    def __init__(self, secret: str | None) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {secret}"} if secret else {}

    def get(
        self, path: str, data: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> Any:
        return self.client.get(API + path, data or {}, headers={**self.headers, **(headers or {})})

    def post(self, path: str, body: dict[str, Any]) -> Any:
        json = "application/json"
        return self.client.post(API + path, body, content_type=json, headers=self.headers)

    def send(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if method == "post":
            return self.post(path, body or {})
        return self.get(path)


def api_as(user: User | None, **options: Any) -> ApiClient:
    return ApiClient(token_for(user, **options) if user else None)


def error_of(response: Any) -> dict[str, Any]:
    """The error body, checked for the one shape every error has."""
    body = response.json()
    assert set(body) == {"error"}
    assert isinstance(body["error"]["code"], str)
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    return dict(body["error"])
