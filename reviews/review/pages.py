from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from reviews.models import StagedVersion
from reviews.review import discussion_views
from reviews.review import views as review_views
from reviews.teams.access import get_visible_stage, is_staff, unowned_stages, visible_stages

STAGES_PER_PAGE = 50
STAGE_HISTORY_ROWS = 50
ALL_STATES = "all"
STATE_CHOICES = [*StagedVersion.State.choices, (ALL_STATES, "All")]


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    package = request.GET.get("package", "").strip()
    state = request.GET.get("state", StagedVersion.State.PENDING)
    if state not in dict(STATE_CHOICES):
        state = StagedVersion.State.PENDING

    stages = visible_stages(request.user)
    if state != ALL_STATES:
        stages = stages.filter(state=state)
    if package:
        stages = stages.filter(package_name__icontains=package)

    page_obj = Paginator(stages, STAGES_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    ctx = {
        "page_obj": page_obj,
        "filters": {"package": package, "state": state},
        "state_choices": STATE_CHOICES,
        "query_without_page": f"{query.urlencode()}&" if query else "",
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
        "team_review": discussion_views.team_review(request, stage, review.comparison),
    }
    response = render(request, "reviews/stage.html", ctx)
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response
