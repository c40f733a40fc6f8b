"""A person's settings page: link their own npm token (checked, encrypted) or unlink it."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_POST

from reviews.audit.trail import Actor
from reviews.decide import npm_tokens
from reviews.teams.forms import StagingNpmUserForm
from reviews.teams.policy import staging_npm_user


class LinkTokenForm(forms.Form):
    token = forms.CharField(
        max_length=2048,
        label="npm token",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )


def the_user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # login_required ran first
    return request.user


def render_settings(
    request: HttpRequest,
    form: LinkTokenForm | None = None,
    status: int = 200,
    extra: dict[str, Any] | None = None,
) -> HttpResponse:
    """The settings page; `extra` is for sections other rooms render (the API tokens')."""
    user = the_user(request)
    ctx = {
        "linked": npm_tokens.linked_record(user),
        "form": form or LinkTokenForm(),
        "staging_form": StagingNpmUserForm(initial={"staging_npm_user": staging_npm_user(user)}),
        **(extra or {}),
    }
    return render(request, "reviews/settings.html", ctx, status=status)


@login_required
@require_GET
def settings_page(request: HttpRequest) -> HttpResponse:
    return render_settings(request)


@sensitive_post_parameters("token")
@login_required
@require_POST
@sensitive_variables()
def link_token(request: HttpRequest) -> HttpResponse:
    form = LinkTokenForm(request.POST)
    if form.is_valid():
        try:
            record = npm_tokens.link(
                the_user(request), form.cleaned_data["token"], Actor.from_request(request)
            )
        except npm_tokens.TokenError as e:
            form.add_error("token", str(e))
        else:
            messages.success(
                request, f"Linked: the registry knows this token as {record.npm_user}."
            )
            return redirect("reviews:settings")
    return render_settings(request, form, status=400)


@login_required
@require_POST
def unlink_token(request: HttpRequest) -> HttpResponse:
    if npm_tokens.unlink(the_user(request), Actor.from_request(request)):
        messages.success(request, "Your npm token was unlinked and deleted from the portal.")
    else:
        messages.info(request, "No npm token was linked.")
    return redirect("reviews:settings")
