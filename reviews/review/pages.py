from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from reviews.models import StagedVersion
from reviews.review import discussion_views, search
from reviews.review import views as review_views
from reviews.teams.access import get_visible_stage, is_staff, unowned_stages, visible_stages

STAGES_PER_PAGE = 50
STAGE_HISTORY_ROWS = 50
ALL_STATES = "all"
STATE_CHOICES = [*StagedVersion.State.choices, (ALL_STATES, "All")]
# The risk filter keeps stages whose risk is at least this (StageBaseline.risk_rank).
RISK_CHOICES = [
    ("", "Any"),
    ("critical", "Critical"),
    ("high", "High or above"),
    ("medium", "Medium or above"),
    ("low", "Low or above"),
    ("none", "None found"),
    ("unknown", "Not analysed yet"),
]
RISK_RANKS = {"critical": 5, "high": 4, "medium": 3, "low": 2}
SORTS = {"risk": "Risk, highest first", "": "Newest first"}


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    package = request.GET.get("package", "").strip()
    state = request.GET.get("state", StagedVersion.State.PENDING)
    if state not in dict(STATE_CHOICES):
        state = StagedVersion.State.PENDING

    risk = request.GET.get("risk", "")
    risk = risk if risk in dict(RISK_CHOICES) else ""
    sort = request.GET.get("sort", "")
    sort = sort if sort in SORTS else ""

    stages = visible_stages(request.user)
    if state != ALL_STATES:
        stages = stages.filter(state=state)
    if package:
        stages = stages.filter(package_name__icontains=package)
    stages = with_risk(stages, risk, sort)

    page_obj = Paginator(stages, STAGES_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    ctx = {
        "page_obj": page_obj,
        "filters": {"package": package, "state": state, "risk": risk, "sort": sort},
        "state_choices": STATE_CHOICES,
        "risk_choices": RISK_CHOICES,
        "sort_choices": SORTS,
        "query_without_page": f"{query.urlencode()}&" if query else "",
        "query_without_sort": _query_without(request, "page", "sort"),
        "unowned_pending": (
            unowned_stages().filter(state=StagedVersion.State.PENDING).count()
            if is_staff(request.user)
            else None
        ),
    }
    return render(request, "reviews/dashboard.html", ctx)


@login_required
@require_GET
def all_files(request: HttpRequest, stage_id: UUID) -> HttpResponse:
    """Every changed file on one page, each diff loaded as it scrolls into view (htmx); the
    files this person ticked as viewed start collapsed."""
    stage = get_visible_stage(request.user, stage_id)
    review = review_views.review_page(request, stage, None)
    files, more = review_views.changed_files(review)
    ctx = {"stage": stage, "review": review, "files": files, "more": more}
    return render(request, "reviews/review/all_files.html", ctx)


@login_required
@require_GET
def search_diffs(request: HttpRequest, stage_id: UUID) -> HttpResponse:
    """The changed lines of the stage that contain `?q=`, as `path:line` links into the diffs;
    for htmx, only the results (swapped in under the search field)."""
    stage = get_visible_stage(request.user, stage_id)
    review = review_views.review_page(request, stage, None)
    query = request.GET.get("q", "")
    results = None
    if review.comparison.ready and review.analysis is not None and query.strip():
        results = search.search_changed_lines(
            review.analysis,
            query,
            lambda path, line: (
                review_views.file_url(stage, path, review.query) + (f"#L{line}" if line else "")
            ),
        )
    ctx = {"stage": stage, "review": review, "query": query, "results": results}
    fragment = request.headers.get("HX-Request") == "true"
    template = "reviews/review/_search_results.html" if fragment else "reviews/review/search.html"
    response = render(request, template, ctx)
    patch_vary_headers(response, ["HX-Request"])
    return response


@login_required
def stage_detail(request: HttpRequest, stage_id: UUID, path: str | None = None) -> HttpResponse:
    """The stage and its review; with `path`, that file's diff too (a URL to share). An htmx
    request gets only the fragment it targets (the diff, the tree)."""
    stage = get_visible_stage(request.user, stage_id)
    review = review_views.review_page(request, stage, path)
    if request.headers.get("HX-Request") == "true":
        fragment = review_views.partial(request, review)
        if fragment is not None:
            return fragment
    history = stage.audit_events.order_by("-id")[:STAGE_HISTORY_ROWS]
    ctx = {
        "stage": stage,
        "history": history,
        "review": review,
        "may_recheck": review_views.may_recheck(request, stage),
        "check_due": stage.next_check_at is not None and stage.next_check_at <= timezone.now(),
        "unread": stage.unread_tarball(),
        "team_review": discussion_views.team_review(request, stage, review.comparison),
    }
    response = render(request, "reviews/stage.html", ctx)
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response


def with_risk(stages: QuerySet[StagedVersion], risk: str, sort: str) -> QuerySet[StagedVersion]:
    """Each stage's risk (from its baseline choice, when it is for the tarball it has now),
    filtered to at least `risk` and sorted by it when asked."""
    stages = stages.annotate(
        risk=F("review_baseline__risk"), risk_rank=F("review_baseline__risk_rank")
    )
    current = F("review_baseline__staged_tarball_id")
    if risk in RISK_RANKS:
        stages = stages.filter(risk_rank__gte=RISK_RANKS[risk], tarball_id=current)
    elif risk == "none":
        stages = stages.filter(risk_rank=0, tarball_id=current)
    elif risk == "unknown":
        stages = stages.filter(risk_rank__isnull=True)
    if sort == "risk":
        stages = stages.order_by(F("risk_rank").desc(nulls_last=True), "-staged_at", "-id")
    return stages


def _query_without(request: HttpRequest, *names: str) -> str:
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return f"{query.urlencode()}&" if query else ""
