import itertools
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from reviews.models import StagedVersion

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
    return django_user_model.objects.create_user("member", password="member-password")


@pytest.fixture
def member_client(client, member):
    client.force_login(member)
    return client
