"""The JSON API for CI and release tools, at /api/v1/ (OpenAPI at /api/v1/openapi.json, docs at
/api/v1/docs).

A token acts as its owner: every operation asks reviews.teams.access exactly as the pages do,
so a stage outside the owner's teams is a 404 and an action above their role a 403.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from csp.constants import SELF
from csp.decorators import csp_update
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotModified,
    StreamingHttpResponse,
)
from django.urls import URLPattern, path, re_path
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from ninja import NinjaAPI, P, Status, Swagger
from ninja.params import HeaderEx, PathEx, QueryEx

from reviews.api import documents, longpoll, schemas
from reviews.api.auth import BearerToken
from reviews.api.errors import install, json_method_errors, not_found_view
from reviews.api.params import (
    DEFAULT_PER_PAGE,
    NDJSON,
    ExportFormat,
    IsoDate,
    IsoDateTime,
    PageNumber,
    PerPage,
    WaitSeconds,
    paged,
    refuse_unknown_query,
)
from reviews.audit.trail import Actor
from reviews.audit.views import events_matching, export_row
from reviews.models import Role, StagedVersion
from reviews.teams.access import (
    get_visible_stage,
    require_stage_role,
    role_for_package,
    visible_stages,
)

DESCRIPTION = """\
Greenroom's API for CI and release tools: list staged versions, read one with its findings,
wait for its decision, post a review, export the audit trail.

Authenticate with a token from your settings page: `Authorization: Bearer grn_…`. A token acts
with its owner's teams and role, never more. Every error is `{"error": {"code", "message"}}`.
"""


def docs_csp(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Swagger UI's stylesheet draws its icons as `data:` SVG images; allow those images on the
    docs page alone. Scripts and styles still come only from our own static files."""
    return csp_update({"img-src": [SELF, "data:"]})(view)


api = NinjaAPI(
    title="Greenroom API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api",
    auth=BearerToken(),
    # The token typed into the docs page stays in that page, never in localStorage.
    docs=Swagger(settings={"persistAuthorization": False}),
    docs_decorator=docs_csp,
)
install(api)

ERRORS: dict[int, Any] = {
    401: schemas.ErrorOut,
    404: schemas.ErrorOut,
    422: schemas.ErrorOut,
    429: schemas.ErrorOut,
}


def owner(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)  # set by BearerToken
    return user


def stage_page(
    request: HttpRequest, stages: QuerySet[StagedVersion], page: int, per_page: int
) -> schemas.StagePage:
    rows, envelope = paged(request, stages, page, per_page)
    items = [documents.stage_summary(stage, request) for stage in rows]
    return schemas.StagePage(items=items, **envelope)


def aware(moment: datetime) -> datetime:
    """The moment in UTC: ISO 8601 and Python allow offsets up to ±23:59, PostgreSQL only up
    to ±15:59. A moment past either end of the calendar once in UTC is held at that end."""
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        edge = datetime.min if moment.year == datetime.min.year else datetime.max
        return edge.replace(tzinfo=UTC)


# -- Stages ---------------------------------------------------------------------------------------


@api.get(
    "/stages",
    response={200: schemas.StagePage, **ERRORS},
    url_name="stages",
    tags=["stages"],
    summary="Staged versions you may see, newest first",
)
def list_stages(
    request: HttpRequest,
    state: schemas.StageState | None = None,
    package: QueryEx[str, P(max_length=214, description="exact package name")] = "",
    tag: QueryEx[str, P(max_length=256, description="the dist-tag it was staged for")] = "",
    risk: QueryEx[schemas.RiskLevel | None, P(description="this risk level or higher")] = None,
    since: QueryEx[IsoDateTime | None, P(description="staged at or after (ISO 8601)")] = None,
    page: PageNumber = 1,
    per_page: PerPage = DEFAULT_PER_PAGE,
) -> schemas.StagePage:
    refuse_unknown_query(request, "state", "package", "tag", "risk", "since", "page", "per_page")
    stages = visible_stages(owner(request)).select_related("tarball")
    if state:
        stages = stages.filter(documents.STATE_FILTERS[state])
    if package:
        stages = stages.filter(package_name=package)
    if tag:
        stages = stages.filter(tag=tag)
    if risk:
        stages = documents.with_risk_at_least(stages, risk)
    if since:
        stages = stages.filter(staged_at__gte=aware(since))
    return stage_page(request, stages.order_by("-staged_at", "-id"), page, per_page)


@api.get(
    "/stages/{stage_id}",
    response={200: schemas.StageDocument, 304: None, **ERRORS},
    url_name="stage",
    tags=["stages"],
    summary="One staged version: integrity, baseline, counts, risk, findings, reviews, decision",
)
def get_stage(
    request: HttpRequest,
    stage_id: UUID,
    if_none_match: HeaderEx[str | None, P(alias="If-None-Match", max_length=1000)] = None,
) -> HttpResponse:
    refuse_unknown_query(request)
    stage = get_visible_stage(owner(request), stage_id)
    document = documents.stage_document(stage, request)
    return conditional_json(request, document.model_dump_json(), if_none_match)


def conditional_json(request: HttpRequest, body: str, if_none_match: str | None) -> HttpResponse:
    """The body with a strong ETag of its bytes; 304 when the client has it already."""
    etag = f'"{hashlib.sha256(body.encode()).hexdigest()[:32]}"'
    offered = {tag.strip().removeprefix("W/") for tag in (if_none_match or "").split(",")}
    response: HttpResponse
    if etag in offered or "*" in offered:
        response = HttpResponseNotModified()
    else:
        response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    patch_vary_headers(response, ["Authorization"])
    return response


@api.get(
    "/stages/{stage_id}/decision",
    response={200: schemas.DecisionOut, **ERRORS},
    url_name="stage-decision",
    tags=["stages"],
    summary="The decision; with ?wait=N, wait up to N seconds (60 at most) while it is pending",
)
def get_decision(
    request: HttpRequest,
    stage_id: UUID,
    wait: WaitSeconds = 0,
) -> schemas.DecisionOut:
    refuse_unknown_query(request, "wait")
    stage = get_visible_stage(owner(request), stage_id)
    stage = longpoll.wait_while_pending(stage, wait)
    return documents.decision_of(stage)


@api.get(
    "/packages/{path:name}/stages",
    response={200: schemas.StagePage, **ERRORS},
    url_name="package-stages",
    tags=["stages"],
    summary="A package's staged versions (?version= for one version), newest first",
)
def package_stages(
    request: HttpRequest,
    name: PathEx[str, P(max_length=214, description="e.g. left-pad or @acme/ui")],
    version: QueryEx[str, P(max_length=256)] = "",
    page: PageNumber = 1,
    per_page: PerPage = DEFAULT_PER_PAGE,
) -> schemas.StagePage:
    refuse_unknown_query(request, "version", "page", "per_page")
    user = owner(request)
    # Outside the person's teams a package does not exist, staged or not (as on the pages).
    if role_for_package(user, name) is None:
        raise Http404("No such package")
    stages = visible_stages(user).filter(package_name=name).select_related("tarball")
    if version:
        stages = stages.filter(version=version)
    return stage_page(request, stages.order_by("-staged_at", "-id"), page, per_page)


@api.post(
    "/stages/{stage_id}/reviews",
    response={
        201: schemas.ReviewOut,
        400: schemas.ErrorOut,
        403: schemas.ErrorOut,
        409: schemas.ErrorOut,
        **ERRORS,
    },
    url_name="stage-reviews",
    tags=["reviews"],
    summary="Review a stage: a verdict and a comment (reviewer role or above)",
)
def post_review(
    request: HttpRequest, stage_id: UUID, review: schemas.ReviewIn
) -> Status[schemas.ReviewOut]:
    refuse_unknown_query(request)
    user = owner(request)
    stage = get_visible_stage(user, stage_id)
    require_stage_role(user, stage, Role.REVIEWER)
    return Status(201, documents.submit_review(stage, user, review, Actor.from_request(request)))


# -- Audit ----------------------------------------------------------------------------------------


@api.get(
    "/audit",
    response={200: schemas.AuditPage, **ERRORS},
    url_name="audit",
    tags=["audit"],
    summary="The audit trail you may read, newest first; NDJSON streams every matching entry",
    openapi_extra={
        "responses": {
            200: {"content": {NDJSON: {"schema": {"$ref": "#/components/schemas/AuditEntryOut"}}}}
        }
    },
)
def audit_entries(
    request: HttpRequest,
    package: QueryEx[str, P(max_length=214)] = "",
    stage: QueryEx[str, P(max_length=36, description="a stage id")] = "",
    person: QueryEx[str, P(max_length=150, description="a Greenroom user name")] = "",
    action: QueryEx[str, P(max_length=64, description="e.g. stage.approved")] = "",
    since: QueryEx[IsoDate | None, P(description="from this day (UTC)")] = None,
    until: QueryEx[IsoDate | None, P(description="to this day (UTC), included")] = None,
    format: ExportFormat = "json",
    page: PageNumber = 1,
    per_page: PerPage = DEFAULT_PER_PAGE,
) -> HttpResponse | StreamingHttpResponse | schemas.AuditPage:
    refuse_unknown_query(
        request, "package", "stage", "person", "action", "since", "until", "format", "page",
        "per_page",
    )  # fmt: skip
    filters = {
        "package": package,
        "stage": stage,
        "person": person,
        "action": action,
        "since": since.isoformat() if since else "",
        "until": until.isoformat() if until else "",
    }
    events = events_matching(owner(request), filters)
    if format == "ndjson" or NDJSON in request.headers.get("Accept", ""):
        return StreamingHttpResponse(ndjson_lines(events), content_type=NDJSON)
    rows, envelope = paged(request, events, page, per_page)
    items = [schemas.AuditEntryOut.model_validate(export_row(event)) for event in rows]
    return schemas.AuditPage(items=items, **envelope)


def ndjson_lines(events: QuerySet[Any]) -> Iterator[str]:
    for event in events.iterator(chunk_size=1000):
        yield json.dumps(export_row(event), sort_keys=True, default=str) + "\n"


# -- URLs -----------------------------------------------------------------------------------------


def api_index(request: HttpRequest) -> HttpResponse:
    return HttpResponse(
        json.dumps({"openapi": "/api/v1/openapi.json", "docs": "/api/v1/docs"}),
        content_type="application/json",
    )


def urlpatterns() -> tuple[list[Any], str]:
    """The API's URLs and namespace for `include()`: ninja's, with JSON for a wrong method, the
    root and any path that matches no endpoint."""
    patterns, _app, namespace = api.urls
    routes: list[Any] = []
    for pattern in patterns:
        assert isinstance(pattern, URLPattern)
        if pattern.name == "api-root":
            routes.append(path("", api_index, name="api-root"))
        else:
            routes.append(
                URLPattern(
                    pattern.pattern,
                    json_method_errors(pattern.callback),
                    pattern.default_args,
                    pattern.name,
                )
            )
    # Any other path under /api/v1/, newlines included, is a JSON 404 rather than a page.
    routes.append(re_path(r"^[\s\S]*$", not_found_view, name="not-found"))
    return routes, namespace
