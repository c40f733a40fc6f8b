"""The settings page's API tokens: make one (shown once) or revoke one of your own."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_POST

from reviews.api import tokens
from reviews.api.forms import ApiTokenForm
from reviews.audit.trail import Actor
from reviews.decide.token_views import render_settings, the_user
from reviews.models import ApiToken


@login_required
@require_POST
def create_token(request: HttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST)
    if not form.is_valid():
        return render_settings(request, status=400, extra={"api_token_form": form})
    new = tokens.create(
        the_user(request),
        form.cleaned_data["name"],
        Actor.from_request(request),
        expires_in_days=form.cleaned_data["expires_in_days"],
    )
    # Rendered, not redirected: the token is in this one response and nowhere else.
    response = render_settings(request, extra={"new_api_token": new})
    add_never_cache_headers(response)
    return response


@login_required
@require_POST
def revoke_token(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id, user=the_user(request))
    if tokens.revoke(token, Actor.from_request(request)):
        messages.success(request, f"The API token “{token.name}” was revoked.")
    else:
        messages.info(request, f"The API token “{token.name}” was revoked already.")
    return redirect("reviews:settings")
