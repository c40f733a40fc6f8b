"""The OpenAPI document and the docs page: public, generated from the code, and the docs page
under the site's policy with one exception (Swagger UI's data: icons)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.api.conftest import API
from tests.portal.test_csp import EXPECTED_POLICY, inline_code, policy_of

pytestmark = pytest.mark.django_db


def test_the_openapi_document_describes_every_endpoint_and_the_token():
    document = Client().get(f"{API}/openapi.json").json()
    assert document["info"]["title"] == "Greenroom API"
    assert set(document["paths"]) == {
        "/api/v1/stages",
        "/api/v1/stages/{stage_id}",
        "/api/v1/stages/{stage_id}/decision",
        "/api/v1/packages/{name}/stages",
        "/api/v1/stages/{stage_id}/reviews",
        "/api/v1/audit",
    }
    assert document["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    decision = document["paths"]["/api/v1/stages/{stage_id}/decision"]["get"]
    (wait,) = [p for p in decision["parameters"] if p["name"] == "wait"]
    assert (wait["schema"]["minimum"], wait["schema"]["maximum"]) == (0, 60)
    for operation in (op for item in document["paths"].values() for op in item.values()):
        assert {"401", "404", "422", "429"} <= set(operation["responses"])
        error = operation["responses"]["401"]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/ErrorOut"}
    audit = document["paths"]["/api/v1/audit"]["get"]["responses"]["200"]["content"]
    assert set(audit) == {"application/json", "application/x-ndjson"}


def test_the_docs_page_loads_nothing_but_our_own_files():
    response = Client().get(f"{API}/docs")
    assert response.status_code == 200
    # Swagger UI's stylesheet draws icons as data: SVG images; nothing else is loosened.
    assert policy_of(response) == {**EXPECTED_POLICY, "img-src": ["'self'", "data:"]}
    html = response.content.decode()
    assert '<script src="/static/ninja/swagger-ui-bundle.js"></script>' in html
    assert '<script src="/static/ninja/swagger-ui-init.js"></script>' in html
    assert "https://" not in html
    assert "http://" not in html
    # The one script without src is Swagger's settings as JSON data, which never runs.
    assert '<script type="application/json" id="swagger-settings">' in html
    assert inline_code(html) == ["<script> without src", "inline script text"]


def test_api_answers_carry_the_strict_policy():
    response = Client().get(f"{API}/stages")
    assert policy_of(response) == EXPECTED_POLICY
