"""Validating stage-endpoint responses against the official stage.yaml, with openapi-core.

stage.yaml is a fragment (`paths` and `components` only); `stage_openapi()` adds the header
(`openapi`, `info`, a `servers` entry for the registry under test, the security schemes it
names) and then tightens it in three documented ways:

- every object in a response gets `additionalProperties: false` and all its properties
  `required`, so a response carries exactly the spec's fields. This also makes the 401
  `oneOf` decidable: as published, `{"authUrl", "doneUrl"}` matches both branches.
- POST /-/stage/package/{name} gets a 403 (the Forbidden component): the spec lists none,
  but a registry must refuse a non-maintainer or a read-only token, and answers 403 there.

Two ways in, used together by the dev registry's tests:
- client side, `stage_session()`: a requests Session whose response hook validates every
  /-/stage response it receives (or call `validate_stage_response(request, response)`);
- server side, `StageTraffic` (the `stage_traffic` fixture): records every stage-endpoint
  response a dev registry in this process gives, whoever asked (the npm CLI too), and
  validates them all when the test ends. Injected faults never reach it: they are answered
  before the routes run.
"""

from __future__ import annotations

import copy
import functools
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_core.testing import MockRequest, MockResponse

from devregistry import wire

SHARED_DIR = Path(os.environ.get("GREENROOM_SHARED_DIR", Path(__file__).parents[3] / "shared"))
STAGE_YAML = SHARED_DIR / "npm-api" / "stage.yaml"

_CREATED_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
_STAGE_PATH = re.compile(r"^/-/stage(?:/|$)")


@functools.cache
def _fragment() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(STAGE_YAML.read_text())
    return doc


@functools.cache
def stage_openapi(server_url: str) -> OpenAPI:
    """stage.yaml as a complete, tightened OpenAPI 3.0 document served at `server_url`."""
    fragment = copy.deepcopy(_fragment())
    components = fragment["components"]
    components["securitySchemes"] = {
        "npmAccessToken": {"type": "http", "scheme": "bearer"},
        "granularAccessToken": {"type": "http", "scheme": "bearer"},
    }
    for response in components["responses"].values():
        _tighten(response)
    for name in ("StagePackageList", "StagePackageVersion"):
        _tighten(components["schemas"][name])
    for operations in fragment["paths"].values():
        for operation in operations.values():
            _tighten(operation["responses"])
    staging = fragment["paths"]["/-/stage/package/{package-name}"]["post"]["responses"]
    staging.setdefault("403", {"$ref": "#/components/responses/Forbidden"})
    document = {
        "openapi": "3.0.3",
        "info": {"title": "npm registry: staged publishing", "version": "stage.yaml"},
        "servers": [{"url": server_url.rstrip("/")}],
        **fragment,
    }
    return OpenAPI.from_dict(document)


def is_stage_call(url: str) -> bool:
    return bool(_STAGE_PATH.match(urlsplit(url).path))


def validate_stage_response(request: requests.PreparedRequest, response: requests.Response) -> None:
    """Raises unless `response` is what stage.yaml (tightened) allows for `request`:
    a declared status, declared headers and content type, a body of the declared shape."""
    assert request.url is not None
    parts = urlsplit(request.url)
    openapi = stage_openapi(f"{parts.scheme}://{parts.netloc}")
    openapi.validate_response(RequestsOpenAPIRequest(request), RequestsOpenAPIResponse(response))
    # jsonschema checks `date-time` only when an optional package is installed: check it here.
    if response.status_code == 200 and response.headers.get("content-type") == "application/json":
        doc = response.json()
        for item in doc.get("items", [doc]) if isinstance(doc, dict) else []:
            if "createdAt" in item:
                assert _CREATED_AT.match(item["createdAt"]), item["createdAt"]


def validate_exchange(request: wire.Request, response: wire.Response) -> None:
    """`validate_stage_response` for a request and response seen inside the dev registry."""
    parts = urlsplit(request.base_url)
    openapi = stage_openapi(f"{parts.scheme}://{parts.netloc}")
    headers = dict(response.headers)
    if response.content_type:
        headers["content-type"] = response.content_type
    openapi.validate_response(
        MockRequest(
            f"{parts.scheme}://{parts.netloc}",
            request.method,
            request.path,
            args=dict(request.query),
            headers=dict(request.headers),
            data=request.body,
            content_type=request.headers.get("content-type", ""),
        ),
        MockResponse(response.body, response.status, headers, response.content_type or ""),
    )


class StageTraffic:
    """Stage-endpoint exchanges recorded inside a dev registry, validated on demand."""

    def __init__(self) -> None:
        self.exchanges: list[tuple[wire.Request, wire.Response]] = []

    def record(self, request: wire.Request, response: wire.Response) -> None:
        if _STAGE_PATH.match(request.path):
            self.exchanges.append((request, response))

    def problems(self) -> list[str]:
        found = []
        for request, response in self.exchanges:
            try:
                validate_exchange(request, response)
            except Exception as exc:  # every kind of validation error, reported together
                found.append(f"{request.method} {request.path} -> {response.status}: {exc!r}")
        return found


def _validate_hook(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
    if response.request.url and is_stage_call(response.request.url):
        validate_stage_response(response.request, response)
    return response


def stage_session() -> requests.Session:
    """A requests Session that validates every stage-endpoint response it receives."""
    session = requests.Session()
    session.hooks["response"].append(_validate_hook)
    return session


def _tighten(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
            node.setdefault("required", list(node["properties"]))
        for value in node.values():
            _tighten(value)
    elif isinstance(node, list):
        for value in node:
            _tighten(value)
