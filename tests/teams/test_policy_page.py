"""The review policy on the team page: team admins change it (audited, announced), members
read it; a value out of range is refused with the form kept; each stage page says which policy
governs it."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from reviews.audit.trail import Action
from reviews.models import AuditEvent, NotificationEvent, Profile, Team
from tests.personas import World

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def set_policy(user, **data: str):
    return client_for(user).post(reverse("reviews:team-policy", args=["acme"]), data)


def test_a_team_admin_changes_the_policy_audited_and_announced(world: World):
    response = set_policy(
        world.acme_admin, required_approvals="2", no_self_approval="on", acknowledge_findings="on"
    )

    assert response.status_code == 302
    team = Team.objects.get(slug="acme")
    assert (team.required_approvals, team.no_self_approval, team.acknowledge_findings) == (
        2,
        True,
        True,
    )
    entry = AuditEvent.objects.get(action=Action.TEAM_POLICY_CHANGED)
    assert entry.target == "team:acme"
    assert entry.payload == {"required_approvals": {"old": 0, "new": 2}}
    assert NotificationEvent.objects.filter(kind="team.policy_changed", team=team).count() == 1


def test_saving_the_same_policy_records_nothing(world: World):
    set_policy(
        world.acme_admin, required_approvals="0", no_self_approval="on", acknowledge_findings="on"
    )

    assert not AuditEvent.objects.filter(action=Action.TEAM_POLICY_CHANGED).exists()


def test_an_out_of_range_value_is_refused_and_kept(world: World):
    response = set_policy(world.acme_admin, required_approvals="99")

    assert response.status_code == 400
    body = response.content.decode()
    assert 'value="99"' in body
    assert "less than or equal to 10" in body
    assert Team.objects.get(slug="acme").required_approvals == 0


def test_members_read_the_policy_and_cannot_change_it(world: World):
    body = client_for(world.approver).get(reverse("reviews:team", args=["acme"])).content.decode()

    assert "Approving reviews before the final approve: <strong>0</strong>" in body
    assert 'action="/teams/acme/policy/"' not in body
    assert set_policy(world.approver, required_approvals="1").status_code == 403


def test_the_stage_page_names_the_policy_that_governs_it(world: World):
    Team.objects.filter(slug="acme").update(required_approvals=2)

    body = client_for(world.viewer).get(reverse("reviews:stage", args=[world.acme_stage.stage_id]))

    text = body.content.decode()
    assert "The review policy of Acme" in text
    assert "<strong>2</strong> approving reviews from distinct people" in text
    assert "Still missing: 2 more approving reviews (2 required, 0 so far)" in text


def test_a_person_names_the_npm_user_they_stage_with(world: World):
    client = client_for(world.approver)

    saved = client.post(reverse("reviews:staging-npm-user"), {"staging_npm_user": "Acme-CI"})
    refused = client.post(reverse("reviews:staging-npm-user"), {"staging_npm_user": "no spaces"})

    assert saved.status_code == 302
    assert Profile.objects.get(user=world.approver).staging_npm_user == "acme-ci"
    assert refused.status_code == 302
    assert Profile.objects.get(user=world.approver).staging_npm_user == "acme-ci"
    assert AuditEvent.objects.filter(
        action=Action.PROFILE_NPM_USER_SET, payload__new="acme-ci"
    ).exists()
    assert 'value="acme-ci"' in client.get(reverse("reviews:settings")).content.decode()
