"""The stage page's decision box: loaded lazily, it depends on the person's role and token."""

from __future__ import annotations

import pytest

from reviews.models import StagedVersion
from tests.decide.conftest import Registry, client_for, link, url
from tests.personas import World

pytestmark = pytest.mark.django_db


def panel(user, stage: StagedVersion) -> str:
    response = client_for(user).get(url("stage-decision-panel", stage))
    assert response.status_code == 200
    return response.content.decode()


def test_the_stage_page_loads_the_panel_and_works_without_javascript(world: World):
    page = client_for(world.viewer).get(url("stage", world.acme_stage)).content.decode()

    assert f'hx-get="{url("stage-decision-panel", world.acme_stage)}" hx-trigger="load"' in page
    assert f'href="{url("stage-approve-form", world.acme_stage)}"' in page
    assert f'href="{url("stage-reject-form", world.acme_stage)}"' in page


def test_a_viewer_is_told_what_role_it_takes(world: World):
    assert "need the approver role" in panel(world.viewer, world.acme_stage)


def test_an_approver_without_a_token_is_sent_to_settings(world: World):
    body = panel(world.approver, world.acme_stage)

    assert "link your npm token" in body
    assert 'id="approve-link"' not in body


def test_an_approver_with_a_token_sees_who_they_decide_as(registry: Registry, world: World):
    stage = registry.stage()
    link(world.approver, registry.alice)

    body = panel(world.approver, stage)

    assert "You decide as npm user <strong>alice</strong>" in body
    assert 'id="approve-link"' in body
    assert 'id="reject-link"' in body


def test_the_person_who_staged_it_is_named(registry: Registry, world: World):
    stage = registry.stage()
    StagedVersion.objects.filter(pk=stage.pk).update(actor="alice")
    link(world.approver, registry.alice)

    assert "alice</strong>, who staged this version" in panel(world.approver, stage)


def test_a_decided_stage_has_no_buttons(world: World):
    StagedVersion.objects.filter(pk=world.acme_stage.pk).update(state=StagedVersion.State.APPROVED)

    page = client_for(world.approver).get(url("stage", world.acme_stage)).content.decode()

    assert url("stage-decision-panel", world.acme_stage) not in page
    assert "nothing left to decide" in panel(world.approver, world.acme_stage)
