"""Changes to teams: one function per change, so each can write its audit entry beside it."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction

from reviews.models import Membership, PackagePattern, Role, Team


class TeamRuleError(Exception):
    """A change that would leave the team in a state we refuse (the message says why)."""


def _admin_count(team: Team) -> int:
    return Membership.objects.filter(team=team, role=Role.ADMIN).count()


@transaction.atomic
def set_member_role(team: Team, user: User, role: Role) -> Membership:
    membership = Membership.objects.select_for_update().filter(team=team, user=user).first()
    if membership is None:
        return Membership.objects.create(team=team, user=user, role=role)
    if membership.role == Role.ADMIN and role != Role.ADMIN and _admin_count(team) == 1:
        raise TeamRuleError("A team keeps at least one team admin; appoint another one first.")
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def remove_member(team: Team, user: User) -> None:
    membership = Membership.objects.select_for_update().filter(team=team, user=user).first()
    if membership is None:
        return
    if membership.role == Role.ADMIN and _admin_count(team) == 1:
        raise TeamRuleError("A team keeps at least one team admin; appoint another one first.")
    membership.delete()


def add_pattern(team: Team, pattern: str) -> PackagePattern:
    package_pattern, _ = PackagePattern.objects.get_or_create(team=team, pattern=pattern)
    return package_pattern


def remove_pattern(team: Team, pattern_id: int) -> None:
    PackagePattern.objects.filter(team=team, pk=pattern_id).delete()
