"""The team review's web edge: submit a review, comment on a line, reply, resolve, tick a file
as viewed; and what the stage page shows of it (policy, approvals, who may decide, reviews,
threads).

Every form posts plainly and answers with a redirect (303) to where the person was, so it all
works without JavaScript; htmx only loads a line's comment form into the diff. A refused form
is drawn again with what was typed and the reason (400).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from reviews.audit.trail import Actor
from reviews.models import FileChangeRow, LineComment, NpmToken, Role, StagedVersion
from reviews.review import discussion
from reviews.review.forms import CommentForm, ReplyForm, ReviewForm
from reviews.review.views import Comparison, compare_with, file_url
from reviews.teams import policy
from reviews.teams.access import AnyUser, get_visible_stage, require_stage_role, role_for_package


@dataclass
class TeamReview:
    """The stage page's team-review part."""

    rules: policy.Policy
    state: policy.ApprovalState
    person: policy.PersonCheck
    deciders: list[policy.Decider]
    maintainers: list[str] | None
    reviews: list[discussion.ReviewRow]
    threads: list[discussion.Thread]
    unresolved: int
    may_review: bool
    review_form: ReviewForm


def linked_npm_user(user: AnyUser) -> str:
    if not isinstance(user, User):
        return ""
    return NpmToken.objects.filter(user=user).values_list("npm_user", flat=True).first() or ""


def team_review(
    request: HttpRequest, stage: StagedVersion, shown: Comparison | None = None
) -> TeamReview:
    """`shown`: the comparison the page already made, reused when it is the default one."""
    person = policy.for_person(stage, request.user, linked_npm_user(request.user))
    comparison = shown if shown is not None and shown.against is None else compare_with(stage, None)
    threads = discussion.mark_outdated(discussion.threads(stage), comparison.analysis)
    role = person.role
    return TeamReview(
        rules=person.state.policy,
        state=person.state,
        person=person,
        deciders=policy.deciders(person.state),
        maintainers=person.state.maintainers,
        reviews=discussion.review_rows(stage),
        threads=threads,
        unresolved=sum(1 for thread in threads if not thread.resolved),
        may_review=role is not None and role >= Role.REVIEWER,
        review_form=ReviewForm(),
    )


def reviewable_stage(request: HttpRequest, stage_id: UUID) -> tuple[StagedVersion, User]:
    stage = get_visible_stage(request.user, stage_id)
    require_stage_role(request.user, stage, Role.REVIEWER)
    assert isinstance(request.user, User)  # login_required ran first
    return stage, request.user


def stage_url(stage: StagedVersion, anchor: str = "") -> str:
    url = reverse("reviews:stage", args=[stage.stage_id])
    return f"{url}#{anchor}" if anchor else url


def back_to_file(stage: StagedVersion, path: str, against: str, anchor: str) -> str:
    query = f"?{urlencode({'against': against})}" if against else ""
    return f"{file_url(stage, path, query)}#{anchor}"


def _against(request: HttpRequest) -> str | None:
    return request.POST.get("against") or None


def refused(
    request: HttpRequest, stage: StagedVersion, what: str, form: Any, **extra: str
) -> HttpResponse:
    """The form again, with what was typed and why it was refused: nothing is lost."""
    ctx = {"stage": stage, "what": what, "form": form, **extra}
    return render(request, "reviews/review/refused.html", ctx, status=400)


# -- Reviews --------------------------------------------------------------------------------------


@login_required
@require_POST
def submit_review(request: HttpRequest, stage_id: UUID) -> HttpResponse:
    stage, user = reviewable_stage(request, stage_id)
    form = ReviewForm(request.POST)
    if form.is_valid():
        try:
            discussion.submit_review(
                stage,
                user,
                form.cleaned_data["verdict"],
                form.cleaned_data["text"],
                Actor.from_request(request),
            )
        except discussion.DiscussionError as e:
            form.add_error(None, str(e))
        else:
            messages.success(request, "Your review was recorded.")
            return HttpResponseRedirect(stage_url(stage, "reviews"), status=303)
    return refused(request, stage, "review", form)


# -- Line comments --------------------------------------------------------------------------------


def file_row(stage: StagedVersion, path: str, against: str | None) -> tuple[FileChangeRow, str]:
    """The file as the person saw it (against their baseline), and that baseline's version."""
    comparison = compare_with(stage, against)
    if not comparison.ready or comparison.analysis is None:
        raise Http404("This review is not ready")
    row = FileChangeRow.objects.filter(analysis=comparison.analysis, path=path).first()
    if row is None:
        raise Http404("No such file in this review")
    version = comparison.baseline.version if comparison.baseline else None
    return row, version or ""


@login_required
@require_POST
def add_comment(request: HttpRequest, stage_id: UUID, path: str) -> HttpResponse:
    stage, user = reviewable_stage(request, stage_id)
    against = _against(request)
    row, baseline = file_row(stage, path, against)
    form = CommentForm(request.POST)
    if form.is_valid():
        try:
            comment = discussion.add_comment(
                stage,
                user,
                row,
                form.cleaned_data["side"],
                form.cleaned_data["line"],
                form.cleaned_data["text"],
                Actor.from_request(request),
                against=baseline,
            )
        except discussion.DiscussionError as e:
            form.add_error(None, str(e))
        else:
            return HttpResponseRedirect(
                back_to_file(stage, path, against or "", f"thread-{comment.pk}"), status=303
            )
    return refused(request, stage, "comment", form, path=path, against=against or "")


def thread_of(stage: StagedVersion, thread_id: int) -> LineComment:
    thread = discussion.get_thread(stage, thread_id)
    if thread is None:
        raise Http404("No such thread")
    return thread


def after_thread(request: HttpRequest, stage: StagedVersion, thread: Any) -> HttpResponse:
    """Back where the person was: the file's diff, or the stage page's list of threads."""
    anchor = f"thread-{thread.pk}"
    if request.POST.get("from") == "file":
        target = back_to_file(stage, thread.path, request.POST.get("against", ""), anchor)
    else:
        target = stage_url(stage, anchor)
    return HttpResponseRedirect(target, status=303)


@login_required
@require_POST
def reply(request: HttpRequest, stage_id: UUID, thread_id: int) -> HttpResponse:
    stage, user = reviewable_stage(request, stage_id)
    thread = thread_of(stage, thread_id)
    form = ReplyForm(request.POST)
    if form.is_valid():
        try:
            discussion.reply(thread, user, form.cleaned_data["text"], Actor.from_request(request))
        except discussion.DiscussionError as e:
            form.add_error(None, str(e))
        else:
            return after_thread(request, stage, thread)
    return refused(request, stage, "reply", form, thread_id=str(thread.pk))


@login_required
@require_POST
def resolve(request: HttpRequest, stage_id: UUID, thread_id: int) -> HttpResponse:
    stage, user = reviewable_stage(request, stage_id)
    thread = thread_of(stage, thread_id)
    resolved = request.POST.get("resolved", "1") != "0"
    discussion.set_resolved(thread, user, resolved, Actor.from_request(request))
    return after_thread(request, stage, thread)


# -- Files viewed ---------------------------------------------------------------------------------


@login_required
@require_POST
def set_viewed(request: HttpRequest, stage_id: UUID, path: str) -> HttpResponse:
    """Tick or untick a file as viewed; anyone who sees the stage keeps their own ticks."""
    stage = get_visible_stage(request.user, stage_id)
    assert isinstance(request.user, User)
    against = _against(request)
    row, _ = file_row(stage, path, against)
    discussion.set_viewed(stage, request.user, row, request.POST.get("viewed", "1") != "0")
    if request.POST.get("from") == "all":
        query = f"?{urlencode({'against': against})}" if against else ""
        url = reverse("reviews:stage-all-files", args=[stage.stage_id])
        return HttpResponseRedirect(f"{url}{query}#{discussion.file_anchor(path)}", status=303)
    return HttpResponseRedirect(back_to_file(stage, path, against or "", "diff"), status=303)


def may_comment(user: AnyUser, stage: StagedVersion) -> bool:
    role = role_for_package(user, stage.package_name)
    return role is not None and role >= Role.REVIEWER
