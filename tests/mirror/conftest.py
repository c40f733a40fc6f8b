"""The dev registry wired into settings as the portal's registry, for the sync tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import LazySettings

from devregistry.testing import LiveRegistry
from tests.mirror.live import Registry


@pytest.fixture
def registry(
    live_registry: LiveRegistry,
    settings: LazySettings,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> Iterator[Registry]:
    """The dev registry, configured as the portal's registry (URL, read-only sync token, a
    short timeout) and a fresh tarball storage."""
    registry = Registry(live_registry, capsys)
    settings.GREENROOM_REGISTRY_URL = registry.url
    settings.GREENROOM_SYNC_TOKEN = registry.sync_token
    settings.GREENROOM_REGISTRY_TIMEOUT = 1.0
    settings.STORAGES = {
        **settings.STORAGES,
        "tarballs": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "tarballs")},
        },
    }
    yield registry
    registry.clear_faults()
    registry.settle()
