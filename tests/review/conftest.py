"""The review pages: tarballs stored in a temporary storage, a cache of this test's own, and
(where a registry is involved) the dev registry wired into settings as the portal's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import LazySettings
from django.test import Client

from devregistry.testing import LiveRegistry
from tests.personas import World
from tests.review.support import Registry


@pytest.fixture(autouse=True)
def review_storage(settings: LazySettings, tmp_path: Path) -> None:
    """A fresh tarball storage and a fresh in-memory cache for every test."""
    settings.STORAGES = {
        **settings.STORAGES,
        "tarballs": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "tarballs")},
        },
    }
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"review-{uuid.uuid4()}",
        }
    }


@pytest.fixture
def registry(live_registry: LiveRegistry, settings: LazySettings) -> Iterator[Registry]:
    """The dev registry as the portal's registry, with a maintainer who stages and publishes."""
    registry = Registry(live_registry)
    settings.GREENROOM_REGISTRY_URL = registry.url
    settings.GREENROOM_SYNC_TOKEN = registry.sync_token
    settings.GREENROOM_REGISTRY_TIMEOUT = 5.0
    yield registry
    live_registry.clear_faults()


@pytest.fixture
def viewer(world: World) -> Client:
    """A client signed in as a viewer of Acme (owns @acme/*)."""
    client = Client()
    client.force_login(world.viewer)
    return client
