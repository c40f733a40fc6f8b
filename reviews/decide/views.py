"""Approve and reject pages: a confirmation, then one registry call per submit.

The forms post plainly (they work without JavaScript); htmx only drives the security-key wait.
A one-time code arrives in POST data, goes to `decisions.decide()` and nowhere else: it is
masked in error reports (`sensitive_post_parameters`, `sensitive_variables`) and never
rendered back into a form.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_POST

from reviews.audit import trail as audit
from reviews.audit.trail import Action, Actor
from reviews.decide import decisions, npm_tokens
from reviews.decide.decisions import Decision, Kind, Outcome
from reviews.models import Role, SecondFactor, StagedVersion, WebAuthChallenge
from reviews.tasks import verify_published_digest_task
from reviews.teams import policy
from reviews.teams.access import get_visible_stage, require_stage_role, role_for_package

logger = logging.getLogger(__name__)

# How often the waiting page asks our poll endpoint; the endpoint itself honours retry-after.
POLL_EVERY_SECONDS = 2


class OneTimeCodeInput(forms.TextInput):
    """A text input that never writes its value back into the page."""

    input_type = "text"

    def format_value(self, value: Any) -> str | None:
        return None


def code_field() -> forms.CharField:
    # Letters too: a recovery code (registries accept one in place of the app's code).
    return forms.CharField(
        required=False,
        max_length=80,
        widget=OneTimeCodeInput(
            attrs={
                "autocomplete": "one-time-code",
                "autocapitalize": "off",
                "spellcheck": "false",
                "pattern": r"[A-Za-z0-9 \-]*",
                "size": 20,
            }
        ),
        label="One-time code or recovery code",
    )


def clean_code(value: str) -> str:
    code = value.replace(" ", "")
    if code and not (
        decisions.CODE_RE.fullmatch(code) or decisions.RECOVERY_CODE_RE.fullmatch(code)
    ):
        raise forms.ValidationError(
            "Type the 6 to 8 digits from your authenticator app, or a recovery code "
            "(8 to 64 letters, digits or hyphens)."
        )
    return code


class ApproveForm(forms.Form):
    reason = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Note (optional)",
    )
    acknowledge_unread = forms.BooleanField(required=False, label=decisions.UNREAD_ACKNOWLEDGEMENT)
    otp = code_field()
    # Asked only when the team policy wants new critical/high findings acknowledged.
    acknowledge_findings = forms.BooleanField(required=False)

    def __init__(self, *args: Any, findings: int = 0, unread: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.findings = findings
        self.unread = unread
        field = self.fields["acknowledge_findings"]
        if findings:
            field.required = True
            field.label = f"I have read the {findings} critical/high findings"
            field.error_messages["required"] = "Tick this once you have read the findings."
        else:
            del self.fields["acknowledge_findings"]
        if unread:
            # Checked here for a plain answer; decisions.decide() refuses without it too.
            field = self.fields["acknowledge_unread"]
            field.required = True
            field.error_messages["required"] = (
                "Greenroom could not read this whole tarball: tick this box to approve it anyway."
            )
        else:
            del self.fields["acknowledge_unread"]

    def clean_otp(self) -> str:
        return clean_code(self.cleaned_data["otp"])


class RejectForm(forms.Form):
    confirm_version = forms.CharField(max_length=256, label="Type the version to confirm")
    reason = forms.CharField(
        max_length=2000, widget=forms.Textarea(attrs={"rows": 3}), label="Why reject it?"
    )
    otp = code_field()

    def __init__(self, *args: Any, stage: StagedVersion, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stage = stage

    def clean_confirm_version(self) -> str:
        typed: str = self.cleaned_data["confirm_version"].strip()
        if typed != self.stage.version:
            raise forms.ValidationError(
                f"Type {self.stage.version} exactly: rejecting deletes the staged tarball."
            )
        return typed

    def clean_otp(self) -> str:
        return clean_code(self.cleaned_data["otp"])


DecisionForm = ApproveForm | RejectForm


def make_form(
    decision: Decision, stage: StagedVersion, data: Any = None, initial: Any = None
) -> DecisionForm:
    if decision == Decision.APPROVE:
        unread = stage.unread_tarball() if stage.state == StagedVersion.State.PENDING else ""
        return ApproveForm(
            data, initial=initial, findings=findings_to_acknowledge(stage), unread=unread
        )
    return RejectForm(data, initial=initial, stage=stage)


def challenge_initial(challenge: WebAuthChallenge, stage: StagedVersion) -> dict[str, str]:
    """Back on the form while a security key is awaited: the note as last sent, and for a
    reject the version, which was typed and checked before the registry opened the challenge."""
    return {"reason": challenge.reason, "confirm_version": stage.version}


@dataclass(frozen=True)
class FactorOrder:
    """Which second factor the page offers first, and where the code field goes."""

    key_first: bool  # the security-key box above the form
    show_code: bool
    code_first: bool  # the code field first in the form (else just above the button)
    focus_code: bool


def factor_order(
    remembered: SecondFactor | None,
    decision: Decision,
    asked: bool,
    challenge: WebAuthChallenge | None,
) -> FactorOrder:
    """The security key leads only when the registry opened a web challenge and the person did
    not last use a code. The code field shows when the registry asked for a second factor or
    the person last used a code; it leads (and has the focus) unless the key leads, except on
    a first reject page, where the version and reason come before it."""
    key_first = challenge is not None and remembered != SecondFactor.CODE
    show_code = asked or remembered == SecondFactor.CODE
    code_first = show_code and (asked or decision == Decision.APPROVE)
    return FactorOrder(key_first, show_code, code_first, code_first and not key_first)


def findings_to_acknowledge(stage: StagedVersion) -> int:
    """New critical/high findings the approver must tick as read (0: no tick asked)."""
    if not policy.policy_for(stage.package_name).acknowledge_findings:
        return 0
    return policy.new_severe_findings(stage)


def policy_check(stage: StagedVersion, user: User) -> policy.PersonCheck:
    linked = npm_tokens.linked_record(user)
    return policy.for_person(stage, user, linked.npm_user if linked else None)


def refuse_by_policy(request: HttpRequest, stage: StagedVersion, reason: str) -> None:
    """A 403 with the reason; the refusal is audited like the decision function's own."""
    linked = npm_tokens.linked_record(request.user) if isinstance(request.user, User) else None
    audit.record(
        Action.DECISION_REFUSED,
        Actor.from_request(request),
        stage=stage,
        npm_user=linked.npm_user if linked else "",
        payload={"decision": "approve", "why": "team policy", "policy": reason},
    )
    raise PermissionDenied(f"Not approved: {reason} Nothing was sent to the registry.")


def decidable_stage(request: HttpRequest, stage_id: UUID) -> tuple[StagedVersion, User]:
    stage = get_visible_stage(request.user, stage_id)
    require_stage_role(request.user, stage, Role.APPROVER)
    assert isinstance(request.user, User)  # login_required ran first
    return stage, request.user


def stage_url(stage: StagedVersion) -> str:
    return reverse("reviews:stage", args=[stage.stage_id])


def form_url(stage: StagedVersion, decision: Decision) -> str:
    return reverse(f"reviews:stage-{decision}-form", args=[stage.stage_id])


def render_decide(
    request: HttpRequest,
    stage: StagedVersion,
    user: User,
    decision: Decision,
    form: DecisionForm,
    outcome: Outcome | None = None,
    status: int = 200,
) -> HttpResponse:
    if outcome is not None and not outcome.asks_for_code:
        # What was typed is not kept, and what was decided is shown as it is now.
        stage.refresh_from_db()
    challenge = decisions.pending_challenge(stage, user)
    if challenge is not None and challenge.decision != decision:
        challenge = None
    if challenge is not None and not form.is_bound:
        form = make_form(decision, stage, initial=challenge_initial(challenge, stage))
    unanswered = decisions.unanswered_decision(stage)
    if outcome is not None and outcome.kind == Kind.UNKNOWN:
        outcome = None  # the checking state below says it
    asked = bool(challenge or (outcome and outcome.asks_for_code) or form["otp"].errors)
    order = factor_order(decisions.remembered_factor(user), decision, asked, challenge)
    if order.focus_code:
        form.fields["otp"].widget.attrs["autofocus"] = True
    ctx = {
        "stage": stage,
        "decision": decision,
        "form": form,
        "outcome": outcome,
        "challenge": challenge,
        "asks_for_code": asked,
        "order": order,
        "linked": npm_tokens.linked_record(user),
        "unread": form.unread if isinstance(form, ApproveForm) else "",
        "preview": (
            decisions.preview_approval(stage)
            if decision == Decision.APPROVE and stage.state == StagedVersion.State.PENDING
            else None
        ),
        "poll_every": POLL_EVERY_SECONDS,
        "checking": decisions.checking_words(unanswered) if unanswered else "",
        "may_decide": True,
        "check": policy_check(stage, user) if decision == Decision.APPROVE else None,
    }
    return render(request, "reviews/decide.html", ctx, status=status)


def finish(
    request: HttpRequest,
    stage: StagedVersion,
    user: User,
    decision: Decision,
    form: DecisionForm,
    outcome: Outcome,
) -> HttpResponse:
    queue_follow_up(stage, outcome)
    if outcome.kind == Kind.POLICY:
        raise PermissionDenied(f"Not approved: {outcome.message} Nothing was sent to the registry.")
    if outcome.kind == Kind.DONE:
        messages.success(request, outcome.message)
        if outcome.notice:
            messages.info(request, f"The registry says: {outcome.notice}")
        return HttpResponseRedirect(stage_url(stage), status=303)
    # A fresh form: the reason and confirmation stay, the code never does.
    kept = {k: v for k, v in form.cleaned_data.items() if k != "otp"}
    return render_decide(request, stage, user, decision, make_form(decision, stage, kept), outcome)


def queue_follow_up(stage: StagedVersion, outcome: Outcome) -> None:
    """After an approval, compare what the registry published with the tarball we reviewed."""
    if outcome.kind != Kind.DONE or outcome.decision != Decision.APPROVE:
        return
    queue_follow_up_of(stage.pk)


def queue_follow_up_of(stage_pk: int) -> None:
    try:
        verify_published_digest_task.delay_on_commit(stage_pk)
    except Exception:
        # The approval stands; only its follow-up check could not be queued.
        logger.exception("could not queue the published digest check of stage %s", stage_pk)


@login_required
@require_GET
def decision_panel(request: HttpRequest, stage_id: UUID) -> HttpResponse:
    """The stage page's approve/reject box, loaded lazily (it depends on role and token)."""
    stage = get_visible_stage(request.user, stage_id)
    role = role_for_package(request.user, stage.package_name)
    user = request.user if isinstance(request.user, User) else None
    ctx = {
        "stage": stage,
        "may_decide": role is not None and role >= Role.APPROVER,
        "linked": npm_tokens.linked_record(user) if user else None,
        "challenge": decisions.pending_challenge(stage, user) if user else None,
        "check": policy_check(stage, user) if user else None,
    }
    unanswered = decisions.unanswered_decision(stage)
    ctx["checking"] = decisions.checking_words(unanswered) if unanswered else ""
    return render(request, "reviews/_decision_panel.html", ctx)


def show_form(request: HttpRequest, stage_id: UUID, decision: Decision) -> HttpResponse:
    stage, user = decidable_stage(request, stage_id)
    return render_decide(request, stage, user, decision, make_form(decision, stage))


@sensitive_variables()
def send(request: HttpRequest, stage_id: UUID, decision: Decision) -> HttpResponse:
    stage, user = decidable_stage(request, stage_id)
    form = make_form(decision, stage, request.POST)
    if not form.is_valid():
        return render_decide(request, stage, user, decision, form, status=400)
    if decision == Decision.APPROVE:
        approve_policy(request, stage, user, form)
    outcome = decisions.decide(
        stage,
        user,
        decision,
        Actor.from_request(request),
        otp=form.cleaned_data["otp"] or None,
        reason=form.cleaned_data["reason"],
        acknowledged_unread=bool(form.cleaned_data.get("acknowledge_unread")),
    )
    return finish(request, stage, user, decision, form, outcome)


def approve_policy(
    request: HttpRequest, stage: StagedVersion, user: User, form: DecisionForm
) -> None:
    """The team policy at the moment of the click, before anything goes to the registry."""
    findings = getattr(form, "findings", 0)
    if findings and form.cleaned_data.get("acknowledge_findings"):
        policy.acknowledge_findings(stage, user, findings, Actor.from_request(request))
    gate = policy.check_approval(stage, user)
    if gate.refusal:
        refuse_by_policy(request, stage, gate.refusal)


@login_required
@require_GET
def approve_form(request: HttpRequest, stage_id: UUID) -> HttpResponse:
    return show_form(request, stage_id, Decision.APPROVE)


@login_required
@require_GET
def reject_form(request: HttpRequest, stage_id: UUID) -> HttpResponse:
    return show_form(request, stage_id, Decision.REJECT)


@sensitive_post_parameters("otp")
@login_required
@require_POST
def approve(request: HttpRequest, stage_id: UUID) -> HttpResponse:
    return send(request, stage_id, Decision.APPROVE)


@sensitive_post_parameters("otp")
@login_required
@require_POST
def reject(request: HttpRequest, stage_id: UUID) -> HttpResponse:
    return send(request, stage_id, Decision.REJECT)


@sensitive_post_parameters("otp")
@login_required
@require_POST
@sensitive_variables()
def security_key_poll(request: HttpRequest, stage_id: UUID) -> HttpResponse:
    """Polled by the waiting page (htmx) or its "Check now" button; never re-sends anything
    before the registry says the key was used. Both carry the note as typed now."""
    stage, user = decidable_stage(request, stage_id)
    if "reason" in request.POST:
        decisions.keep_challenge_note(stage, user, request.POST["reason"])
    outcome = decisions.poll_security_key(stage, user, Actor.from_request(request))
    queue_follow_up(stage, outcome)
    htmx = request.headers.get("HX-Request") == "true"
    if outcome.kind == Kind.WAITING:
        challenge = decisions.pending_challenge(stage, user)
        if htmx and challenge is not None:
            ctx = {
                "stage": stage,
                "challenge": challenge,
                "poll_every": POLL_EVERY_SECONDS,
                "key_first": decisions.remembered_factor(user) != SecondFactor.CODE,
            }
            response = render(request, "reviews/_decision_security_key.html", ctx)
            patch_vary_headers(response, ["HX-Request"])
            return response
        messages.info(request, still_waiting_words())
        return HttpResponseRedirect(form_url(stage, outcome.decision), status=303)
    if not own_decision(outcome, stage, user):
        say_outcome(request, outcome)
    done = outcome.kind in {Kind.DONE, Kind.DECIDED}
    target = stage_url(stage) if done else form_url(stage, outcome.decision)
    if htmx:
        response = HttpResponse(headers={"HX-Redirect": target})
        patch_vary_headers(response, ["HX-Request"])
        return response
    return HttpResponseRedirect(target, status=303)


def still_waiting_words() -> str:
    return (
        f"Checked at {timezone.now():%H:%M:%S} UTC: the registry has not seen your security key "
        "yet. Use it on the registry's page, then check again (or type a code instead)."
    )


def own_decision(outcome: Outcome, stage: StagedVersion, user: User) -> bool:
    """A poll that finds the stage decided by this same person here: their own success message
    already says so (a waiting page left open, or a code typed while the key waited)."""
    return (
        outcome.kind == Kind.DECIDED and stage.decided_in_portal and stage.decided_by_id == user.pk
    )


def say_outcome(request: HttpRequest, outcome: Outcome) -> None:
    level = {Kind.DONE: messages.SUCCESS, Kind.DECIDED: messages.INFO}.get(
        outcome.kind, messages.ERROR
    )
    messages.add_message(request, level, outcome.message)
    if outcome.notice:
        messages.info(request, f"The registry says: {outcome.notice}")


@login_required
@require_POST
def security_key_cancel(request: HttpRequest, stage_id: UUID) -> HttpResponse:
    stage, user = decidable_stage(request, stage_id)
    if decisions.cancel_security_key(stage, user, Actor.from_request(request)):
        messages.info(request, "The security-key confirmation was cancelled. Nothing was changed.")
    return HttpResponseRedirect(stage_url(stage), status=303)


@login_required
@require_POST
def decision_check(request: HttpRequest, stage_id: UUID) -> HttpResponse:
    """ "Check now" on a decision the registry did not answer: one look at the registry."""
    stage, _ = decidable_stage(request, stage_id)
    outcome = decisions.check_unanswered(stage, Actor.from_request(request))
    if outcome is None:
        messages.info(request, "No decision is waiting for the registry's answer.")
        return HttpResponseRedirect(stage_url(stage), status=303)
    queue_follow_up(stage, outcome)
    level = {Kind.DONE: messages.SUCCESS, Kind.FAILED: messages.WARNING}.get(
        outcome.kind, messages.INFO
    )
    found = outcome.message
    if outcome.kind == Kind.UNKNOWN:
        found = (
            f"Checked at {timezone.now():%H:%M:%S} UTC: the registry does not show yet how it "
            "ended. Greenroom keeps looking; check again in a moment."
        )
    messages.add_message(request, level, found)
    done = outcome.kind in {Kind.DONE, Kind.DECIDED}
    return HttpResponseRedirect(
        stage_url(stage) if done else form_url(stage, outcome.decision), status=303
    )
