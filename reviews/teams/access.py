"""Who may see and do what.

Every view and task asks here. Stages are filtered at the source (`visible_stages`), so a list or
a count can never include a row the person may not see. A stage outside a person's teams is a 404
(its existence is not revealed); an action above their role is a 403.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import UUID

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from reviews.models import AuditEvent, Membership, PackagePattern, Role, StagedVersion, Team
from reviews.teams.overlap import shared_name

AnyUser = User | AnonymousUser
PATTERN_RE = re.compile(r"^(@[a-z0-9*][a-z0-9._~*-]*/)?[a-z0-9*][a-z0-9._~*-]*$")


def is_valid_pattern(pattern: str) -> bool:
    return len(pattern) <= 214 and PATTERN_RE.fullmatch(pattern) is not None


def pattern_regex(pattern: str) -> str:
    """The pattern as an anchored regular expression both Python and the database understand."""
    return "^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$"


def pattern_matches(pattern: str, package_name: str) -> bool:
    return re.fullmatch(pattern_regex(pattern), package_name) is not None


def pattern_q(pattern: str) -> Q:
    # Exact names and trailing wildcards become index-friendly lookups; the rest a regex.
    if "*" not in pattern:
        return Q(package_name=pattern)
    if pattern.count("*") == 1 and pattern.endswith("*"):
        return Q(package_name__startswith=pattern[:-1])
    return Q(package_name__regex=pattern_regex(pattern))


def patterns_q(patterns: list[str]) -> Q:
    combined = Q(pk__in=[])  # matches nothing: no patterns, no packages
    for pattern in patterns:
        combined |= pattern_q(pattern)
    return combined


def is_staff(user: AnyUser) -> bool:
    return bool(user.is_authenticated and user.is_active and getattr(user, "is_staff", False))


ONLY_STAFF_CHANGE_PATTERNS = (
    "Only staff can add or remove package patterns: a pattern decides who sees which packages."
)


def require_staff_for_patterns(user: AnyUser) -> None:
    if not is_staff(user):
        raise PermissionDenied(ONLY_STAFF_CHANGE_PATTERNS)


@dataclass(frozen=True)
class Overlap:
    """Another team's pattern that matches some of the same packages, e.g. `example`."""

    team: Team
    pattern: str
    example: str


def other_teams_patterns(team: Team) -> list[PackagePattern]:
    return list(PackagePattern.objects.exclude(team=team).select_related("team"))


def overlaps_of(pattern: str, others: list[PackagePattern]) -> list[Overlap]:
    found = [(other, shared_name(pattern, other.pattern)) for other in others]
    overlaps = [Overlap(other.team, other.pattern, name) for other, name in found if name]
    return sorted(overlaps, key=lambda overlap: (overlap.team.name, overlap.pattern))


def user_patterns(user: AnyUser) -> list[str]:
    if not user.is_authenticated:
        return []
    return list(
        PackagePattern.objects.filter(team__memberships__user_id=user.pk)
        .values_list("pattern", flat=True)
        .distinct()
    )


def visible_stages(user: AnyUser) -> QuerySet[StagedVersion]:
    """Every staged version this person may see: their teams' packages; staff see all."""
    if is_staff(user):
        return StagedVersion.objects.all()
    return StagedVersion.objects.filter(patterns_q(user_patterns(user)))


def unowned_stages() -> QuerySet[StagedVersion]:
    """Stages whose package matches no team's pattern: only staff can see them."""
    all_patterns = list(PackagePattern.objects.values_list("pattern", flat=True).distinct())
    return StagedVersion.objects.exclude(patterns_q(all_patterns))


def get_visible_stage(user: AnyUser, stage_id: UUID) -> StagedVersion:
    try:
        return visible_stages(user).select_related("tarball").get(stage_id=stage_id)
    except StagedVersion.DoesNotExist:
        raise Http404("No such staged version") from None


def role_for_package(user: AnyUser, package_name: str) -> Role | None:
    """The highest role this person holds in any team owning the package."""
    if is_staff(user):
        return Role.ADMIN
    if not user.is_authenticated:
        return None
    memberships = Membership.objects.filter(user_id=user.pk).prefetch_related("team__patterns")
    roles = [
        Role(membership.role)
        for membership in memberships
        if any(pattern_matches(p.pattern, package_name) for p in membership.team.patterns.all())
    ]
    return max(roles, default=None)


def require_stage_role(user: AnyUser, stage: StagedVersion, role: Role) -> None:
    current = role_for_package(user, stage.package_name)
    if current is None or current < role:
        yours = (
            f"Your role for {stage.package_name} is {current.label.lower()}"
            if current
            else f"You are in no team that owns {stage.package_name}"
        )
        raise PermissionDenied(
            f"This needs the {role.label.lower()} role. {yours}: a team admin can change it."
        )


def memberships_of(user: AnyUser) -> QuerySet[Membership]:
    if not user.is_authenticated:
        return Membership.objects.none()
    return Membership.objects.filter(user_id=user.pk).select_related("team")


def visible_audit_events(user: AnyUser) -> QuerySet[AuditEvent]:
    """Staff read the whole trail; a member reads entries about their teams' packages and teams."""
    if is_staff(user):
        return AuditEvent.objects.all()
    if not user.is_authenticated:
        return AuditEvent.objects.none()
    team_targets = [f"team:{slug}" for slug in visible_teams(user).values_list("slug", flat=True)]
    return AuditEvent.objects.filter(patterns_q(user_patterns(user)) | Q(target__in=team_targets))


def visible_teams(user: AnyUser) -> QuerySet[Team]:
    if is_staff(user):
        return Team.objects.all()
    if not user.is_authenticated:
        return Team.objects.none()
    return Team.objects.filter(memberships__user_id=user.pk)


def team_role(user: AnyUser, team: Team) -> Role | None:
    if is_staff(user):
        return Role.ADMIN
    if not user.is_authenticated:
        return None
    membership = Membership.objects.filter(team=team, user_id=user.pk).first()
    return Role(membership.role) if membership else None


def get_visible_team(user: AnyUser, slug: str) -> Team:
    try:
        return visible_teams(user).get(slug=slug)
    except Team.DoesNotExist:
        raise Http404("No such team") from None


def require_team_admin(user: AnyUser, team: Team) -> None:
    if team_role(user, team) != Role.ADMIN:
        raise PermissionDenied("Only a team admin may change the team.")


def get_administered_team(user: AnyUser, slug: str) -> Team:
    """The team, if this person may change it: 404 outside their teams, 403 below team admin."""
    team = get_visible_team(user, slug)
    require_team_admin(user, team)
    return team
