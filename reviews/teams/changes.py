"""Changes to teams: one function per change, each writing its audit entry in the same
transaction."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction

from reviews.audit import trail as audit
from reviews.audit.trail import Action, Actor
from reviews.models import Membership, PackagePattern, Role, Team
from reviews.teams.access import other_teams_patterns, overlaps_of, require_staff_for_patterns


class TeamRuleError(Exception):
    """A change that would leave the team in a state we refuse (the message says why)."""


LAST_ADMIN = "A team keeps at least one team admin; appoint another one first."


def _admin_count(team: Team) -> int:
    return Membership.objects.filter(team=team, role=Role.ADMIN).count()


def _target(team: Team) -> str:
    return f"team:{team.slug}"


@transaction.atomic
def set_member_role(team: Team, user: User, role: Role, actor: Actor) -> Membership:
    membership = Membership.objects.select_for_update().filter(team=team, user=user).first()
    old_role = Role(membership.role).label if membership else None
    if membership is None:
        membership = Membership.objects.create(team=team, user=user, role=role)
    elif membership.role == role:
        return membership
    elif membership.role == Role.ADMIN and _admin_count(team) == 1:
        raise TeamRuleError(LAST_ADMIN)
    else:
        membership.role = role
        membership.save(update_fields=["role"])
    audit.record(
        Action.MEMBER_ROLE_SET,
        actor,
        target=_target(team),
        payload={"member": user.get_username(), "old": old_role, "new": role.label},
    )
    return membership


@transaction.atomic
def remove_member(team: Team, user: User, actor: Actor) -> None:
    membership = Membership.objects.select_for_update().filter(team=team, user=user).first()
    if membership is None:
        return
    if membership.role == Role.ADMIN and _admin_count(team) == 1:
        raise TeamRuleError(LAST_ADMIN)
    membership.delete()
    audit.record(
        Action.MEMBER_REMOVED,
        actor,
        target=_target(team),
        payload={"member": user.get_username(), "old": Role(membership.role).label},
    )


def require_staff(actor: Actor) -> None:
    # Defence in depth behind the views and the admin: a pattern decides who sees which
    # packages, so the change itself refuses anyone but staff, background work included.
    require_staff_for_patterns(actor.user or AnonymousUser())


def record_pattern_change(team: Team, pattern: str, actor: Actor, *, added: bool) -> None:
    """Audit a pattern change on its team and on every other team whose packages it matches
    too, so that each team's trail shows who gained or lost sight of its packages."""
    require_staff(actor)
    audit.lock_chain()  # one pattern change at a time: each sees the patterns before it
    reached: dict[Team, list[str]] = {}
    for overlap in overlaps_of(pattern, other_teams_patterns(team)):
        reached.setdefault(overlap.team, []).append(overlap.pattern)
    own, elsewhere = (
        (Action.PATTERN_ADDED, Action.OVERLAPPING_PATTERN_ADDED)
        if added
        else (Action.PATTERN_REMOVED, Action.OVERLAPPING_PATTERN_REMOVED)
    )
    # The team's own entry counts the other teams without naming them: its members may not
    # know those teams exist. Staff read the other entries.
    payload: dict[str, object] = {"pattern": pattern}
    if reached:
        payload["overlapping_teams"] = len(reached)
    audit.record(own, actor, target=_target(team), payload=payload)
    for other, patterns in reached.items():
        audit.record(
            elsewhere,
            actor,
            target=_target(other),
            payload={"pattern": pattern, "team": team.slug, "overlaps": ", ".join(patterns)},
        )


@transaction.atomic
def add_pattern(team: Team, pattern: str, actor: Actor) -> PackagePattern:
    require_staff(actor)
    package_pattern, created = PackagePattern.objects.get_or_create(team=team, pattern=pattern)
    if created:
        record_pattern_change(team, pattern, actor, added=True)
    return package_pattern


@transaction.atomic
def remove_pattern(team: Team, pattern_id: int, actor: Actor) -> None:
    require_staff(actor)
    package_pattern = PackagePattern.objects.filter(team=team, pk=pattern_id).first()
    if package_pattern is None:
        return
    package_pattern.delete()
    record_pattern_change(team, package_pattern.pattern, actor, added=False)
