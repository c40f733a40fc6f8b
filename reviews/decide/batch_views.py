"""Batch pages: start a batch from the dashboard, see it, approve or reject it with one code.

The code arrives in POST data and goes to `batches.run()` in this same request, and nowhere
else (masked in error reports, never rendered back). The page polls the batch's progress
(htmx) while the approve request is sending, so each stage's outcome shows as it comes.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_POST

from reviews.audit.trail import Actor
from reviews.decide import batches, npm_tokens
from reviews.decide.decisions import Decision
from reviews.decide.views import clean_code, code_field, queue_follow_up_of
from reviews.models import Batch, BatchItem
from reviews.teams.access import visible_stages

# How often the batch page asks for its progress while the batch is open.
PROGRESS_EVERY_SECONDS = 1


class StartForm(forms.Form):
    stage = forms.TypedMultipleChoiceField(coerce=UUID, choices=(), required=True)
    title = forms.CharField(max_length=300, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["stage"]
        assert isinstance(field, forms.TypedMultipleChoiceField)
        field.error_messages["required"] = "Tick at least one stage to start a batch."
        # Any well-formed id: which ones this person may see is checked on the query.
        field.valid_value = _is_uuid  # type: ignore[method-assign]


def _is_uuid(value: Any) -> bool:
    try:
        UUID(str(value))
    except ValueError:
        return False
    return True


class ApproveBatchForm(forms.Form):
    otp = code_field()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["otp"].required = True
        self.fields["otp"].label = "One-time code from your authenticator app"

    def clean_otp(self) -> str:
        return clean_code(self.cleaned_data["otp"])


class RejectBatchForm(ApproveBatchForm):
    confirm_count = forms.IntegerField(label="Type the number of stages to confirm")
    reason = forms.CharField(
        max_length=2000, widget=forms.Textarea(attrs={"rows": 3}), label="Why reject them?"
    )

    field_order = ["confirm_count", "reason", "otp"]

    def __init__(self, *args: Any, count: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.count = count

    def clean_confirm_count(self) -> int:
        typed: int = self.cleaned_data["confirm_count"]
        if typed != self.count:
            raise forms.ValidationError(
                f"Type {self.count} exactly: rejecting deletes every one of these staged tarballs."
            )
        return typed


def own_batch(request: HttpRequest, batch_id: int) -> tuple[Batch, User]:
    """The person's own batch (404 for anyone else's: its code is theirs to type)."""
    user = request.user
    assert isinstance(user, User)  # login_required ran first
    batch = Batch.objects.filter(pk=batch_id, created_by=user).first()
    if batch is None:
        raise Http404("No such batch")
    return batch, user


def batch_url(batch: Batch) -> str:
    return reverse("reviews:batch", args=[batch.pk])


def queued_count(batch: Batch) -> int:
    return batch.items.filter(state=BatchItem.State.QUEUED).count()


def page_context(batch: Batch, user: User, *, details: bool = True) -> dict[str, Any]:
    is_open = batch.state in batches.OPEN_STATES
    views = batches.item_views(batch, details=details, with_tags=details and is_open)
    queued = sum(1 for view in views if view.item.state == BatchItem.State.QUEUED)
    return {
        "batch": batch,
        "views": views,
        "left_out": [v for v in views if v.item.state == BatchItem.State.EXCLUDED],
        "counts": batches.progress(batch),
        "queued": queued,
        "is_open": is_open,
        "linked": npm_tokens.linked_record(user),
        "poll_every": PROGRESS_EVERY_SECONDS,
    }


def render_page(
    request: HttpRequest,
    batch: Batch,
    user: User,
    *,
    approve_form: ApproveBatchForm | None = None,
    reject_form: RejectBatchForm | None = None,
    status: int = 200,
) -> HttpResponse:
    ctx = page_context(batch, user)
    ctx["approve_form"] = approve_form or ApproveBatchForm()
    ctx["reject_form"] = reject_form or RejectBatchForm(count=ctx["queued"])
    return render(request, "reviews/batch.html", ctx, status=status)


@login_required
@require_POST
def start(request: HttpRequest) -> HttpResponse:
    """From the dashboard's ticked stages (or a release's button): a new batch."""
    form = StartForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Tick at least one stage to start a batch.")
        return HttpResponseRedirect(reverse("reviews:dashboard"), status=303)
    user = request.user
    assert isinstance(user, User)
    stages = list(
        visible_stages(user)
        .filter(stage_id__in=form.cleaned_data["stage"])
        .select_related("tarball")
    )
    if not stages:
        raise Http404("No such staged version")
    batch = batches.create(stages, user, Actor.from_request(request), form.cleaned_data["title"])
    return HttpResponseRedirect(batch_url(batch), status=303)


@login_required
@require_GET
def show(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch, user = own_batch(request, batch_id)
    return render_page(request, batch, user)


@login_required
@require_GET
def progress(request: HttpRequest, batch_id: int) -> HttpResponse:
    """The live part of the page: each stage's state, polled while the batch is open."""
    batch, user = own_batch(request, batch_id)
    ctx = page_context(batch, user, details=False)
    response = render(request, "reviews/_batch_progress.html", ctx)
    patch_vary_headers(response, ["HX-Request"])
    return response


@sensitive_post_parameters("otp")
@login_required
@require_POST
@sensitive_variables()
def approve(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch, user = own_batch(request, batch_id)
    form = ApproveBatchForm(request.POST)
    if not form.is_valid():
        return render_page(request, batch, user, approve_form=form, status=400)
    return send(request, batch, user, Decision.APPROVE, form.cleaned_data["otp"])


@sensitive_post_parameters("otp")
@login_required
@require_POST
@sensitive_variables()
def reject(request: HttpRequest, batch_id: int) -> HttpResponse:
    batch, user = own_batch(request, batch_id)
    form = RejectBatchForm(request.POST, count=queued_count(batch))
    if not form.is_valid():
        return render_page(request, batch, user, reject_form=form, status=400)
    code, reason = form.cleaned_data["otp"], form.cleaned_data["reason"]
    return send(request, batch, user, Decision.REJECT, code, reason)


@sensitive_variables()
def send(
    request: HttpRequest,
    batch: Batch,
    user: User,
    decision: Decision,
    code: str,
    reason: str = "",
) -> HttpResponse:
    actor = Actor.from_request(request)
    result = batches.run(batch, user, code, actor, decision, reason)
    for stage_pk in result.approved:
        queue_follow_up_of(stage_pk)
    if result.busy:
        messages.info(request, "This batch is being sent by another request; see its progress.")
    batch.refresh_from_db()
    if batch.state == Batch.State.NEEDS_CODE:
        messages.warning(request, batch.message)
    elif batch.message:
        messages.error(request, batch.message)
    return HttpResponseRedirect(batch_url(batch), status=303)
