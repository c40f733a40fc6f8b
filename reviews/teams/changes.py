"""Changes to teams: one function per change, each writing its audit entry in the same
transaction."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction

from reviews.audit import trail as audit
from reviews.audit.trail import Action, Actor
from reviews.models import Membership, PackagePattern, Role, Team


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


@transaction.atomic
def add_pattern(team: Team, pattern: str, actor: Actor) -> PackagePattern:
    package_pattern, created = PackagePattern.objects.get_or_create(team=team, pattern=pattern)
    if created:
        audit.record(
            Action.PATTERN_ADDED, actor, target=_target(team), payload={"pattern": pattern}
        )
    return package_pattern


@transaction.atomic
def remove_pattern(team: Team, pattern_id: int, actor: Actor) -> None:
    package_pattern = PackagePattern.objects.filter(team=team, pk=pattern_id).first()
    if package_pattern is None:
        return
    package_pattern.delete()
    audit.record(
        Action.PATTERN_REMOVED,
        actor,
        target=_target(team),
        payload={"pattern": package_pattern.pattern},
    )
