"""A person's own page, and the team pages where team admins manage members and patterns."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from reviews.audit.trail import Actor
from reviews.models import Role
from reviews.teams import changes as teams
from reviews.teams.access import (
    get_administered_team,
    get_visible_team,
    team_role,
    visible_teams,
)
from reviews.teams.forms import MemberForm, PatternForm


@login_required
def team_list(request: HttpRequest) -> HttpResponse:
    return render(request, "reviews/teams.html", {"teams": visible_teams(request.user)})


def render_team(
    request: HttpRequest,
    slug: str,
    member_form: MemberForm | None = None,
    pattern_form: PatternForm | None = None,
    invalid: dict[str, Any] | None = None,
) -> HttpResponse:
    """The team page; `invalid` carries a higher room's form with errors (the notification
    settings), which the page's template tags pick up from the context."""
    team = get_visible_team(request.user, slug)
    is_admin = team_role(request.user, team) == Role.ADMIN
    ctx = {
        "team": team,
        "is_admin": is_admin,
        "memberships": team.memberships.select_related("user"),
        "patterns": team.patterns.all(),
        "member_form": member_form or MemberForm(),
        "pattern_form": pattern_form or PatternForm(),
        "roles": Role.choices,
        **(invalid or {}),
    }
    status = 400 if (member_form or pattern_form or invalid) else 200
    return render(request, "reviews/team.html", ctx, status=status)


@login_required
def team_detail(request: HttpRequest, slug: str) -> HttpResponse:
    return render_team(request, slug)


@login_required
@require_POST
def team_set_member(request: HttpRequest, slug: str) -> HttpResponse:
    team = get_administered_team(request.user, slug)
    form = MemberForm(request.POST)
    if not form.is_valid():
        return render_team(request, slug, member_form=form)
    try:
        teams.set_member_role(
            team,
            form.cleaned_data["username"],
            Role(form.cleaned_data["role"]),
            Actor.from_request(request),
        )
    except teams.TeamRuleError as error:
        messages.error(request, str(error))
    return redirect("reviews:team", slug=team.slug)


@login_required
@require_POST
def team_remove_member(request: HttpRequest, slug: str, user_id: int) -> HttpResponse:
    team = get_administered_team(request.user, slug)
    member = get_object_or_404(User, pk=user_id, memberships__team=team)
    try:
        teams.remove_member(team, member, Actor.from_request(request))
    except teams.TeamRuleError as error:
        messages.error(request, str(error))
    return redirect("reviews:team", slug=team.slug)


@login_required
@require_POST
def team_add_pattern(request: HttpRequest, slug: str) -> HttpResponse:
    team = get_administered_team(request.user, slug)
    form = PatternForm(request.POST)
    if not form.is_valid():
        return render_team(request, slug, pattern_form=form)
    teams.add_pattern(team, form.cleaned_data["pattern"], Actor.from_request(request))
    return redirect("reviews:team", slug=team.slug)


@login_required
@require_POST
def team_remove_pattern(request: HttpRequest, slug: str, pattern_id: int) -> HttpResponse:
    team = get_administered_team(request.user, slug)
    teams.remove_pattern(team, pattern_id, Actor.from_request(request))
    return redirect("reviews:team", slug=team.slug)
