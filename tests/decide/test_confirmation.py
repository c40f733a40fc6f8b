"""What the approve confirmation shows before anything is sent: the version, the tag now and
after (read from the packument), warnings that must not be missed, the integrity verdict."""

from __future__ import annotations

import pytest

from reviews.models import StagedVersion
from tests.decide.conftest import Registry, client_for, link, url
from tests.personas import World

pytestmark = pytest.mark.django_db


def confirmation(world: World, stage: StagedVersion) -> str:
    response = client_for(world.approver).get(url("stage-approve-form", stage))
    assert response.status_code == 200
    return " ".join(response.content.decode().split())  # whitespace as a reader sees it


def test_a_first_release_moves_latest_from_the_placeholder(registry: Registry, world: World):
    stage = registry.stage("@acme/widget", "1.0.0")
    link(world.approver, registry.alice)

    page = confirmation(world, stage)

    assert "<code>latest</code>: 0.0.0-stage (the placeholder of a first release) → 1.0.0" in page
    assert "Verified" in page
    assert "npm user alice" in page
    assert "integrity-mismatch warning" not in page
    assert "Approve 1.0.0" in page
    assert 'name="otp"' not in page  # which factor to ask for is the registry's answer


def test_moving_a_tag_to_a_lower_version_is_a_loud_warning(registry: Registry, world: World):
    registry.publish("@acme/widget", "2.0.0")
    stage = registry.stage("@acme/widget", "1.5.0")

    page = confirmation(world, stage)

    assert "<code>latest</code>: 2.0.0 → 1.5.0" in page
    assert (
        "The latest tag now points to 2.0.0, a higher version: approving moves it back to 1.5.0."
        in page
    )


def test_versions_compare_as_npm_does_not_as_strings(registry: Registry, world: World):
    registry.publish("@acme/widget", "1.9.0")
    stage = registry.stage("@acme/widget", "1.10.0")

    page = confirmation(world, stage)

    assert "a higher version" not in page


def test_a_prerelease_on_latest_is_a_loud_warning(registry: Registry, world: World):
    registry.publish("@acme/widget", "1.0.0")
    stage = registry.stage("@acme/widget", "2.0.0-rc.1")

    page = confirmation(world, stage)

    assert "2.0.0-rc.1 is a prerelease, and approving makes it the latest version" in page


def test_a_prerelease_on_its_own_tag_is_fine(registry: Registry, world: World):
    registry.publish("@acme/widget", "1.0.0")
    stage = registry.stage("@acme/widget", "2.0.0-rc.1", tag="next")

    page = confirmation(world, stage)

    assert "<code>next</code>: not set yet → 2.0.0-rc.1" in page
    assert "prerelease" not in page


def test_an_unverified_tarball_is_shown(registry: Registry, world: World):
    stage = registry.stage()
    StagedVersion.objects.filter(pk=stage.pk).update(
        integrity=StagedVersion.Integrity.MISMATCH, integrity_reason="shasum differs"
    )

    page = confirmation(world, stage)

    assert "The staged tarball does not match its stage: shasum differs." in page


def test_a_registry_that_cannot_be_read_is_said_plainly(registry: Registry, world: World):
    stage = registry.stage()
    registry.live.set_faults([{"method": "GET", "path": "^/@acme", "status": 503}])

    page = confirmation(world, stage)

    assert "The current dist-tags could not be read" in page
    assert "now unknown" in page
