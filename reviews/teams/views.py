"""A person's own page, and the team pages: team admins manage members, staff manage patterns."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from reviews.audit.trail import Actor
from reviews.models import PackagePattern, Role, Team
from reviews.teams import changes as teams
from reviews.teams import policy
from reviews.teams.access import (
    Overlap,
    get_administered_team,
    get_visible_team,
    is_staff,
    other_teams_patterns,
    overlaps_of,
    require_staff_for_patterns,
    team_role,
    visible_teams,
)
from reviews.teams.forms import MemberForm, PatternForm, PolicyForm, StagingNpmUserForm


@login_required
def team_list(request: HttpRequest) -> HttpResponse:
    return render(request, "reviews/teams.html", {"teams": visible_teams(request.user)})


def pattern_rows(team: Team, staff: bool) -> list[tuple[PackagePattern, list[Overlap]]]:
    """The team's patterns, each with the other teams' patterns it overlaps (for staff only:
    a member need not learn which other teams exist)."""
    others = other_teams_patterns(team) if staff else []
    return [(pattern, overlaps_of(pattern.pattern, others)) for pattern in team.patterns.all()]


def render_team(
    request: HttpRequest,
    slug: str,
    member_form: MemberForm | None = None,
    pattern_form: PatternForm | None = None,
    invalid: dict[str, Any] | None = None,
    pending_overlaps: list[Overlap] | None = None,
    policy_form: PolicyForm | None = None,
) -> HttpResponse:
    """The team page; `invalid` carries a higher room's form with errors (the notification
    settings), which the page's template tags pick up from the context."""
    team = get_visible_team(request.user, slug)
    is_admin = team_role(request.user, team) == Role.ADMIN
    staff = is_staff(request.user)
    ctx = {
        "team": team,
        "is_admin": is_admin,
        "can_change_patterns": staff,
        "memberships": team.memberships.select_related("user"),
        "pattern_rows": pattern_rows(team, staff),
        "pending_overlaps": pending_overlaps,
        "member_form": member_form or MemberForm(),
        "pattern_form": pattern_form or PatternForm(),
        "roles": Role.choices,
        "policy_form": policy_form or PolicyForm(initial=policy_initial(team)),
        **(invalid or {}),
    }
    # A refused form is a 400; a pattern waiting for staff to confirm its overlaps is not.
    refused = (member_form or pattern_form or policy_form or invalid) and not pending_overlaps
    return render(request, "reviews/team.html", ctx, status=400 if refused else 200)


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
    team = get_visible_team(request.user, slug)
    require_staff_for_patterns(request.user)
    form = PatternForm(request.POST)
    if not form.is_valid():
        return render_team(request, slug, pattern_form=form)
    pattern = form.cleaned_data["pattern"]
    overlaps = overlaps_of(pattern, other_teams_patterns(team))
    if overlaps and not form.cleaned_data["confirm_overlap"]:
        # Nothing is added until staff have read which other teams' packages it reaches.
        return render_team(request, slug, pattern_form=form, pending_overlaps=overlaps)
    teams.add_pattern(team, pattern, Actor.from_request(request))
    return redirect("reviews:team", slug=team.slug)


@login_required
@require_POST
def team_remove_pattern(request: HttpRequest, slug: str, pattern_id: int) -> HttpResponse:
    team = get_visible_team(request.user, slug)
    require_staff_for_patterns(request.user)
    teams.remove_pattern(team, pattern_id, Actor.from_request(request))
    return redirect("reviews:team", slug=team.slug)


def policy_initial(team: Team) -> dict[str, object]:
    return {
        "required_approvals": team.required_approvals,
        "no_self_approval": team.no_self_approval,
        "acknowledge_findings": team.acknowledge_findings,
    }


@login_required
@require_POST
def team_set_policy(request: HttpRequest, slug: str) -> HttpResponse:
    """A team admin changes the team's review policy (audited, and announced to the team)."""
    team = get_administered_team(request.user, slug)
    form = PolicyForm(request.POST)
    if not form.is_valid():
        return render_team(request, slug, policy_form=form)
    if policy.set_policy(team, Actor.from_request(request), **form.cleaned_data):
        messages.success(request, "The review policy was changed.")
    return redirect("reviews:team", slug=team.slug)


@login_required
@require_POST
def set_staging_npm_user(request: HttpRequest) -> HttpResponse:
    """A person names the npm user they stage with from CI, so that no-self-approval knows
    them by it too (it can only make the rule stricter for them)."""
    assert isinstance(request.user, User)  # login_required ran first
    form = StagingNpmUserForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for e in form.errors.get("staging_npm_user", [])))
    elif policy.set_staging_npm_user(
        request.user, form.cleaned_data["staging_npm_user"], Actor.from_request(request)
    ):
        messages.success(request, "Your CI npm user was saved.")
    return redirect("reviews:settings")
