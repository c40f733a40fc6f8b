"""The openapi.yaml checks themselves catch what they should (a checker that passes everything
would make every other test here weaker)."""

from __future__ import annotations

import json

import pytest
import requests

from devregistry.wire import Request, Response
from tests.support.openapi import StageTraffic, validate_stage_response

URL = "http://127.0.0.1:9/"
STAGE_ID = "1de6f3db-2ed9-4d72-b3dd-8f0e2b474a2f"
ITEM = {
    "id": STAGE_ID,
    "packageName": "x",
    "version": "1.0.0",
    "tag": "latest",
    "createdAt": "2026-03-16T09:00:00.000Z",
    "actor": "a",
    "actorType": "user",
    "access": "public",
    "shasum": "4f7f5f1d5bcf2f72f6e4d6c4f3b2812d8a2f6c19",
}


def exchange(method: str, path: str, status: int, doc: object, **headers: str) -> StageTraffic:
    traffic = StageTraffic()
    request = Request(method, path, {}, {"authorization": "Bearer t"}, b"", URL)
    traffic.record(request, Response.json(status, doc, headers))
    return traffic


def test_a_spec_item_passes():
    assert exchange("GET", f"/-/stage/{STAGE_ID}", 200, ITEM).problems() == []


def test_an_extra_field_fails():
    assert exchange("GET", f"/-/stage/{STAGE_ID}", 200, {**ITEM, "extra": 1}).problems()


def test_a_missing_field_fails():
    item = {k: v for k, v in ITEM.items() if k != "actorType"}

    assert exchange("GET", f"/-/stage/{STAGE_ID}", 200, item).problems()


def test_an_undeclared_status_fails():
    assert exchange("GET", f"/-/stage/{STAGE_ID}", 409, {"message": "no"}).problems()


def test_a_bad_access_value_fails():
    item = {**ITEM, "access": "restricted"}

    assert exchange(
        "GET", "/-/stage", 200, {"items": [item], "page": 0, "perPage": 10, "total": 1}
    ).problems()


def test_the_web_auth_body_passes_and_a_mixed_one_fails():
    web = {"authUrl": f"{URL}-/auth/x", "doneUrl": f"{URL}-/v1/done?authId=x"}
    path = f"/-/stage/{STAGE_ID}/approve"

    assert exchange("POST", path, 401, web, **{"npm-notice": "open it"}).problems() == []
    assert exchange("POST", path, 401, {**web, "message": "both"}).problems()


def test_non_stage_paths_are_not_recorded():
    assert exchange("GET", "/some-package", 200, {"anything": True}).exchanges == []


def test_the_requests_hook_validates_on_the_client_side():
    response = requests.Response()
    response.status_code = 200
    response.headers["content-type"] = "application/json"
    response._content = json.dumps({**ITEM, "extra": 1}).encode()
    response.request = requests.Request(
        "GET", f"{URL}-/stage/{STAGE_ID}", headers={"authorization": "Bearer t"}
    ).prepare()

    with pytest.raises(Exception, match=r"extra|additional"):
        validate_stage_response(response.request, response)
