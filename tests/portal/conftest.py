import itertools
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from reviews.models import Membership, PackagePattern, Role, StagedVersion, Team

_counter = itertools.count()


@pytest.fixture
def make_stage(db):
    """Create a StagedVersion the way the sync would, with overridable fields."""

    def make(**fields) -> StagedVersion:
        n = next(_counter)
        defaults = {
            "stage_id": uuid.uuid4(),
            "package_name": f"pkg-{n}",
            "version": f"1.0.{n}",
            "tag": "latest",
            "actor": "alice",
            "actor_type": "user",
            "access": "public",
            "shasum": f"{n:040x}",
            "staged_at": timezone.now() - timedelta(hours=n + 1),
        }
        defaults.update(fields)
        return StagedVersion.objects.create(**defaults)

    return make


@pytest.fixture
def member(django_user_model):
    """A viewer in a team that owns every package (pages tests; access has its own tests)."""
    user = django_user_model.objects.create_user("member", password="member-password")
    team = Team.objects.create(name="Everything", slug="everything")
    PackagePattern.objects.create(team=team, pattern="*")
    Membership.objects.create(team=team, user=user, role=Role.VIEWER)
    return user


@pytest.fixture
def member_client(client, member):
    client.force_login(member)
    return client
