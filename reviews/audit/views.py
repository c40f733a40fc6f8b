"""The audit page and its CSV / JSON export: the same filters, the same visible rows."""

import csv
import json
from collections.abc import Iterator
from datetime import date, datetime, time
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from reviews.audit.trail import Action
from reviews.models import AuditEvent
from reviews.teams.access import AnyUser, visible_audit_events

EVENTS_PER_PAGE = 50
EXPORT_FIELDS = [
    "id",
    "created_at",
    "action",
    "username",
    "npm_user",
    "stage_uuid",
    "package_name",
    "version",
    "shasum",
    "target",
    "ip",
    "user_agent",
    "registry_status",
    "registry_message",
    "payload",
    "prev_hash",
    "hash",
]


def parse_day(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def read_filters(request: HttpRequest) -> dict[str, str]:
    names = ("package", "stage", "person", "action", "since", "until")
    return {name: request.GET.get(name, "").strip() for name in names}


def filtered_events(request: HttpRequest, filters: dict[str, str]) -> QuerySet[AuditEvent]:
    return events_matching(request.user, filters)


def events_matching(user: AnyUser, filters: dict[str, str]) -> QuerySet[AuditEvent]:
    """The entries this person may read that match the page's filters (the API's too)."""
    events = visible_audit_events(user)
    if filters["package"]:
        events = events.filter(package_name=filters["package"])
    if filters["stage"]:
        events = events.filter(stage_uuid=filters["stage"])
    if filters["person"]:
        events = events.filter(username=filters["person"])
    if filters["action"]:
        events = events.filter(action=filters["action"])
    if since := parse_day(filters["since"]):
        events = events.filter(
            created_at__gte=timezone.make_aware(datetime.combine(since, time.min))
        )
    if until := parse_day(filters["until"]):
        events = events.filter(
            created_at__lte=timezone.make_aware(datetime.combine(until, time.max))
        )
    return events.order_by("-id")


@login_required
@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    filters = read_filters(request)
    page_obj = Paginator(filtered_events(request, filters), EVENTS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    ctx = {
        "page_obj": page_obj,
        "filters": filters,
        "actions": [action.value for action in Action],
        "query": query.urlencode(),
        "query_without_page": f"{query.urlencode()}&" if query else "",
    }
    return render(request, "reviews/audit.html", ctx)


def export_row(event: AuditEvent) -> dict[str, Any]:
    row = {name: getattr(event, name) for name in EXPORT_FIELDS}
    row["created_at"] = event.created_at.isoformat()
    return row


class Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(events: QuerySet[AuditEvent]) -> Iterator[str]:
    writer = csv.writer(Echo())
    yield writer.writerow(EXPORT_FIELDS)
    for event in events.iterator(chunk_size=1000):
        row = export_row(event)
        row["payload"] = json.dumps(row["payload"], sort_keys=True)
        yield writer.writerow([neutralise_formula(row[name]) for name in EXPORT_FIELDS])


def neutralise_formula(value: Any) -> Any:
    # A spreadsheet would run "=HYPERLINK(...)" from a package name; prefix it so it stays text.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def json_lines(events: QuerySet[AuditEvent]) -> Iterator[str]:
    yield "["
    for index, event in enumerate(events.iterator(chunk_size=1000)):
        yield ("," if index else "") + json.dumps(export_row(event), sort_keys=True)
    yield "]\n"


@login_required
@require_GET
def audit_export(request: HttpRequest, fmt: str) -> StreamingHttpResponse:
    events = filtered_events(request, read_filters(request))
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    if fmt == "csv":
        response = StreamingHttpResponse(csv_lines(events), content_type="text/csv")
    else:
        response = StreamingHttpResponse(json_lines(events), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="greenroom-audit-{stamp}.{fmt}"'
    return response
