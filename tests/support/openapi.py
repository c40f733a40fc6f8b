"""Validating stage-endpoint responses against devregistry/openapi.yaml, with openapi-core.

devregistry/openapi.yaml is the repository's own description of the six staged-publishing
endpoints, and a tight one: every object in a response is closed and lists all its
properties as required (so a response carries exactly the described fields, and the 401
`oneOf` between `{message}` and `{authUrl, doneUrl}` is decidable), and values carry the
registry's formats (uuid4 ids, millisecond UTC `createdAt`, hex shasums).
`stage_openapi()` only points its `servers` at the registry under test.
tests/devregistry/test_spec_matches_official.py checks it covers npm's published description.

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

REPO_ROOT = Path(__file__).resolve().parents[2]
OPENAPI_YAML = REPO_ROOT / "devregistry" / "openapi.yaml"

_STAGE_PATH = re.compile(r"^/-/stage(?:/|$)")


@functools.cache
def _description() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(OPENAPI_YAML.read_text())
    return doc


def stage_description() -> dict[str, Any]:
    """devregistry/openapi.yaml as a plain document (a copy: change it freely)."""
    return copy.deepcopy(_description())


@functools.cache
def stage_openapi(server_url: str) -> OpenAPI:
    """devregistry/openapi.yaml, served at `server_url`, ready to validate responses."""
    document = stage_description()
    document["servers"] = [{"url": server_url.rstrip("/")}]
    return OpenAPI.from_dict(document)


def is_stage_call(url: str) -> bool:
    return bool(_STAGE_PATH.match(urlsplit(url).path))


def validate_stage_response(request: requests.PreparedRequest, response: requests.Response) -> None:
    """Raises unless `response` is what devregistry/openapi.yaml allows for `request`:
    a declared status, declared headers and content type, a body of the declared shape."""
    assert request.url is not None
    parts = urlsplit(request.url)
    openapi = stage_openapi(f"{parts.scheme}://{parts.netloc}")
    # jsonschema checks `date-time` only when an optional package is installed; the
    # description's `pattern` on createdAt is checked always.
    openapi.validate_response(RequestsOpenAPIRequest(request), RequestsOpenAPIResponse(response))


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
