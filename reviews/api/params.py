"""The API's query parameters: their types and bounds (which the OpenAPI document states),
ISO dates only, no parameter an endpoint does not take, and pages."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import P
from ninja.params import QueryEx
from pydantic import BeforeValidator

from reviews.api import longpoll
from reviews.api.errors import ApiError

NDJSON = "application/x-ndjson"
MAX_PAGE = 100_000
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200


ISO_START = re.compile(r"\d{4}-\d{2}-\d{2}")


def iso_text(value: object) -> object:
    # pydantic would read a number as a Unix timestamp; the parameters say ISO 8601.
    if not isinstance(value, str) or not ISO_START.match(value):
        raise ValueError("use an ISO 8601 date, e.g. 2026-01-31 or 2026-01-31T12:00:00Z")
    return value


IsoDateTime = Annotated[datetime, BeforeValidator(iso_text)]
IsoDate = Annotated[date, BeforeValidator(iso_text)]
PageNumber = QueryEx[int, P(ge=1, le=MAX_PAGE)]
PerPage = QueryEx[int, P(ge=1, le=MAX_PER_PAGE)]
WaitSeconds = QueryEx[
    int, P(ge=0, le=longpoll.MAX_WAIT, description="seconds to wait while it is pending")
]
ExportFormat = QueryEx[
    Literal["json", "ndjson"], P(description=f"ndjson (or Accept: {NDJSON}) streams every entry")
]


def refuse_unknown_query(request: HttpRequest, *known: str) -> None:
    """A parameter the endpoint does not take is an error, not ignored: `?wiat=30` must not
    pass silently as "do not wait", nor `?stat=pending` as "every stage"."""
    unknown = sorted(set(request.GET) - set(known))
    if not unknown:
        return
    takes = ", ".join(known) or "none"
    details = [
        {"location": f"query.{name[:50]}", "message": "not a parameter", "type": "extra_forbidden"}
        for name in unknown
    ]
    raise ApiError(
        422,
        "invalid_request",
        f"{details[0]['location']}: not a parameter of this endpoint (it takes: {takes})",
        details=details,
    )


def paged(
    request: HttpRequest, items: QuerySet[Any], page: int, per_page: int
) -> tuple[list[Any], dict[str, Any]]:
    """One page of `items` and the envelope's fields, with the next page's URL."""
    offset = (page - 1) * per_page
    rows = list(items[offset : offset + per_page])
    total = items.count()
    following = None
    if offset + per_page < total:
        query = request.GET.copy()
        query["page"] = str(page + 1)
        following = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
    return rows, {"page": page, "per_page": per_page, "total": total, "next": following}
