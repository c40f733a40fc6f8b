from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from reviews.models import StagedVersion

STAGES_PER_PAGE = 50
ALL_STATES = "all"
STATE_CHOICES = [*StagedVersion.State.choices, (ALL_STATES, "All")]


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    package = request.GET.get("package", "").strip()
    state = request.GET.get("state", StagedVersion.State.PENDING)
    if state not in dict(STATE_CHOICES):
        state = StagedVersion.State.PENDING

    stages = StagedVersion.objects.all()
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
    }
    return render(request, "reviews/dashboard.html", ctx)


@login_required
def stage_detail(request: HttpRequest, stage_id: UUID) -> HttpResponse:
    stage = get_object_or_404(StagedVersion.objects.select_related("tarball"), stage_id=stage_id)
    return render(request, "reviews/stage.html", {"stage": stage})
