"""Request and response values passed between the transport (server.py) and the routes (api.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from devregistry.errors import bad_request


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # raw, still percent-encoded, without the query
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    base_url: str  # with a trailing slash

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise bad_request("Bad Request - the body is not JSON") from exc


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, doc: Any, headers: dict[str, str] | None = None) -> Response:
        body = json.dumps(doc).encode("utf-8")
        return cls(status, body, "application/json", dict(headers or {}))

    @classmethod
    def html(cls, status: int, page: str) -> Response:
        return cls(status, page.encode("utf-8"), "text/html; charset=utf-8")
