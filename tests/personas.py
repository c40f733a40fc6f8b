"""Personas: an approver and a viewer of Acme (owns @acme/*), Acme's team admin, a member of
another team (Pad, owns left-pad) who is an outsider to Acme, someone in no team, and staff."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

# Loaded as a pytest plugin (see pyproject.toml) before Django is set up: import models late.
if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from reviews.models import Role, StagedVersion, Team


@dataclass
class World:
    acme: Team
    pad: Team
    approver: User
    viewer: User
    acme_admin: User
    outsider: User
    teamless: User  # signed in, member of no team: sees no stage, team or team entry
    staff: User
    acme_stage: StagedVersion
    pad_stage: StagedVersion
    orphan_stage: StagedVersion


def make_stage(package_name: str, version: str = "1.0.0") -> StagedVersion:
    from django.utils import timezone

    from reviews.models import StagedVersion

    return StagedVersion.objects.create(
        stage_id=uuid.uuid4(),
        package_name=package_name,
        version=version,
        tag="latest",
        actor="ci",
        shasum="0" * 40,
        staged_at=timezone.now(),
    )


def member_of(team: Team, name: str, role: Role) -> User:
    from django.contrib.auth.models import User

    from reviews.models import Membership

    user = User.objects.create_user(name, password=f"{name}-password")
    Membership.objects.create(team=team, user=user, role=role)
    return user


@pytest.fixture
def world(db) -> World:
    from django.contrib.auth.models import User

    from reviews.models import PackagePattern, Role, Team

    acme = Team.objects.create(name="Acme", slug="acme")
    PackagePattern.objects.create(team=acme, pattern="@acme/*")
    pad = Team.objects.create(name="Pad", slug="pad")
    PackagePattern.objects.create(team=pad, pattern="left-pad")
    return World(
        acme=acme,
        pad=pad,
        approver=member_of(acme, "approver", Role.APPROVER),
        viewer=member_of(acme, "viewer", Role.VIEWER),
        acme_admin=member_of(acme, "acme-admin", Role.ADMIN),
        outsider=member_of(pad, "outsider", Role.ADMIN),
        teamless=User.objects.create_user("teamless", password="teamless-password"),
        staff=User.objects.create_user("staff", password="staff-password", is_staff=True),
        acme_stage=make_stage("@acme/ui", "2.0.0"),
        pad_stage=make_stage("left-pad", "1.3.1"),
        orphan_stage=make_stage("nobody-owns-this", "0.1.0"),
    )
