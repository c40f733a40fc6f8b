"""Package patterns decide who sees which packages: only staff change them, an overlap with
another team is shown and confirmed, and every change is audited on every team it touches."""

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse

from reviews.audit.trail import SYSTEM, Action, Actor
from reviews.models import AuditEvent, PackagePattern
from reviews.teams import changes
from reviews.teams.access import visible_stages
from tests.personas import World

REASON = "Only staff can add or remove package patterns"


def login(user, **extra) -> Client:
    client = Client(**extra)
    client.force_login(user)
    return client


def add(client: Client, team: str, pattern: str, **extra: str):
    return client.post(
        reverse("reviews:team-add-pattern", args=[team]), {"pattern": pattern, **extra}
    )


def remove(client: Client, team: str, pattern: PackagePattern):
    return client.post(reverse("reviews:team-remove-pattern", args=[team, pattern.pk]))


def entries(action: Action) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


# --- who may add and remove ------------------------------------------------------------------


def test_anonymous_is_sent_to_login(world: World):
    for response in (add(Client(), "acme", "acme-*"), remove(Client(), "acme", acme(world))):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    assert patterns_of(world) == {"acme": ["@acme/*"], "pad": ["left-pad"]}


def test_outsider_does_not_learn_the_team_exists(world: World):
    client = login(world.outsider)  # Pad's team admin
    assert add(client, "acme", "acme-*").status_code == 404
    assert remove(client, "acme", acme(world)).status_code == 404
    assert patterns_of(world) == {"acme": ["@acme/*"], "pad": ["left-pad"]}


@pytest.mark.parametrize("persona", ["viewer", "approver", "acme_admin"])
def test_team_members_and_team_admins_are_refused_with_the_reason(world: World, persona):
    client = login(getattr(world, persona))
    for response in (add(client, "acme", "acme-*"), remove(client, "acme", acme(world))):
        assert response.status_code == 403
        assert REASON in response.content.decode()
    assert patterns_of(world) == {"acme": ["@acme/*"], "pad": ["left-pad"]}
    assert not AuditEvent.objects.filter(action__startswith="team.").exists()


def test_a_team_admin_cannot_grant_their_team_every_package(world: World):
    """The report in issue 11: Pad's team admin added `*` and read Acme's stages."""
    for confirm in ({}, {"confirm_overlap": "on"}):
        response = add(login(world.outsider), "pad", "*", **confirm)
        assert response.status_code == 403
        assert REASON in response.content.decode()
        assert "Acme" not in response.content.decode()  # nor which teams it would reach
    assert list(visible_stages(world.outsider)) == [world.pad_stage]
    stage_url = reverse("reviews:stage", args=[world.acme_stage.stage_id])
    assert login(world.outsider).get(stage_url).status_code == 404


def test_staff_add_and_remove(world: World):
    client = login(world.staff)
    assert add(client, "acme", "acme-*").status_code == 302
    added = world.acme.patterns.get(pattern="acme-*")
    assert remove(client, "acme", added).status_code == 302
    assert patterns_of(world) == {"acme": ["@acme/*"], "pad": ["left-pad"]}
    assert [e.payload for e in entries(Action.PATTERN_ADDED)] == [{"pattern": "acme-*"}]
    assert [e.payload for e in entries(Action.PATTERN_REMOVED)] == [{"pattern": "acme-*"}]
    assert {e.username for e in AuditEvent.objects.all()} == {"staff"}


def test_changes_refuse_anyone_but_staff_even_without_the_view(world: World):
    for actor in (Actor(user=world.acme_admin), Actor(user=world.outsider), SYSTEM):
        with pytest.raises(PermissionDenied, match=REASON):
            changes.add_pattern(world.pad, "*", actor)
        with pytest.raises(PermissionDenied, match=REASON):
            changes.remove_pattern(world.acme, acme(world).pk, actor)
    world.staff.is_active = False  # a deactivated staff account is nobody
    with pytest.raises(PermissionDenied):
        changes.add_pattern(world.pad, "*", Actor(user=world.staff))
    assert patterns_of(world) == {"acme": ["@acme/*"], "pad": ["left-pad"]}
    assert not AuditEvent.objects.exists()


def test_csrf_token_is_required(world: World):
    client = login(world.staff, enforce_csrf_checks=True)
    assert add(client, "acme", "acme-*").status_code == 403
    assert remove(client, "acme", acme(world)).status_code == 403
    assert patterns_of(world) == {"acme": ["@acme/*"], "pad": ["left-pad"]}
    client.get(reverse("reviews:team", args=["acme"]))  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    assert add(client, "acme", "acme-*", csrfmiddlewaretoken=token).status_code == 302
    assert world.acme.patterns.filter(pattern="acme-*").exists()


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_other_methods_are_refused(world: World, method):
    client = login(world.staff)
    urls = [
        reverse("reviews:team-add-pattern", args=["acme"]),
        reverse("reviews:team-remove-pattern", args=["acme", acme(world).pk]),
    ]
    for url in urls:
        assert getattr(client, method)(url).status_code == 405
    assert patterns_of(world) == {"acme": ["@acme/*"], "pad": ["left-pad"]}


# --- overlaps ----------------------------------------------------------------------------------


def test_an_overlapping_pattern_waits_for_staff_to_confirm(world: World):
    client = login(world.staff)
    response = add(client, "pad", "*")
    body = response.content.decode()
    assert response.status_code == 200
    assert "was not added yet" in body
    assert "Acme</a>: <code>@acme/*</code> (both match <code>@acme/a</code>)" in body
    assert "Add it anyway" in body
    assert patterns_of(world)["pad"] == ["left-pad"]
    assert not AuditEvent.objects.filter(action__startswith="team.").exists()
    assert add(client, "pad", "*", confirm_overlap="on").status_code == 302
    assert patterns_of(world)["pad"] == ["*", "left-pad"]


def test_a_pattern_that_overlaps_nothing_is_added_at_once(world: World):
    assert add(login(world.staff), "pad", "right-pad").status_code == 302
    assert patterns_of(world)["pad"] == ["left-pad", "right-pad"]


def test_staff_see_overlaps_next_to_the_pattern_and_members_do_not(world: World):
    PackagePattern.objects.create(team=world.pad, pattern="@acme/ui-*")
    url = reverse("reviews:team", args=["pad"])
    staff_page = login(world.staff).get(url).content.decode()
    assert 'Overlaps <a href="/teams/acme/">Acme</a>\'s <code>@acme/*</code>' in staff_page
    assert "both match <code>@acme/ui-</code>" in staff_page
    pad_admin_page = login(world.outsider).get(url).content.decode()
    assert "<code>@acme/ui-*</code>" in pad_admin_page  # their own pattern, read-only
    assert "Acme" not in pad_admin_page
    assert "Overlaps" not in pad_admin_page


# --- the audit trail -----------------------------------------------------------------------------


def test_an_overlapping_pattern_is_audited_on_both_teams(world: World):
    client = login(world.staff)
    add(client, "pad", "*", confirm_overlap="on")
    remove(client, "pad", world.pad.patterns.get(pattern="*"))
    for own, elsewhere in [
        (Action.PATTERN_ADDED, Action.OVERLAPPING_PATTERN_ADDED),
        (Action.PATTERN_REMOVED, Action.OVERLAPPING_PATTERN_REMOVED),
    ]:
        [pad_entry] = entries(own)
        assert pad_entry.target == "team:pad"
        assert pad_entry.payload == {"pattern": "*", "overlapping_teams": 1}
        [acme_entry] = entries(elsewhere)
        assert acme_entry.target == "team:acme"
        assert acme_entry.payload == {"pattern": "*", "team": "pad", "overlaps": "@acme/*"}
        assert acme_entry.username == "staff"


def test_each_team_reads_the_entries_about_it(world: World):
    client = login(world.staff)
    add(client, "pad", "*", confirm_overlap="on")
    remove(client, "pad", world.pad.patterns.get(pattern="*"))
    audit_url = reverse("reviews:audit")
    acme_view = login(world.acme_admin).get(audit_url).content.decode()
    assert "<code>team.overlapping_pattern_added</code>" in acme_view
    assert "<code>team.overlapping_pattern_removed</code>" in acme_view
    assert "team=pad" in acme_view
    pad_view = login(world.outsider).get(audit_url).content.decode()
    assert "<code>team.pattern_added</code>" in pad_view
    assert "<code>team.pattern_removed</code>" in pad_view
    assert "<code>team.overlapping_pattern" not in pad_view
    assert "@acme/*" not in pad_view


def test_overlaps_count_each_team_once_and_skip_the_own_team(world: World):
    world.acme.patterns.create(pattern="@acme/ui")
    world.pad.patterns.create(pattern="left-*")
    changes.add_pattern(world.pad, "@acme/u*", Actor(user=world.staff))
    [acme_entry] = entries(Action.OVERLAPPING_PATTERN_ADDED)
    assert acme_entry.payload["overlaps"] == "@acme/*, @acme/ui"
    assert entries(Action.PATTERN_ADDED)[0].payload["overlapping_teams"] == 1


# --- the admin -----------------------------------------------------------------------------------


def admin_client(world: World) -> Client:
    world.staff.is_superuser = True
    world.staff.save()
    return login(world.staff)


def pad_change_form(world: World, **patterns: str) -> dict[str, str]:
    existing = list(world.pad.patterns.all())
    data = {
        "name": "Pad",
        "slug": "pad",
        "patterns-TOTAL_FORMS": str(len(existing) + 1),
        "patterns-INITIAL_FORMS": str(len(existing)),
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }
    for index, pattern in enumerate(existing):
        data |= {
            f"patterns-{index}-id": str(pattern.pk),
            f"patterns-{index}-team": str(world.pad.pk),
        }
        data[f"patterns-{index}-pattern"] = pattern.pattern
    data[f"patterns-{len(existing)}-pattern"] = patterns.get("new", "")
    return data


def test_the_admin_is_closed_to_team_admins(world: World):
    url = reverse("admin:reviews_team_change", args=[world.pad.pk])
    response = login(world.outsider).post(url, pad_change_form(world, new="*"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert patterns_of(world)["pad"] == ["left-pad"]


def test_a_pattern_added_in_the_admin_is_audited_and_warned_about(world: World):
    url = reverse("admin:reviews_team_change", args=[world.pad.pk])
    response = admin_client(world).post(url, pad_change_form(world, new="*"), follow=True)
    assert response.status_code == 200
    assert patterns_of(world)["pad"] == ["*", "left-pad"]
    assert "* overlaps Acme&#x27;s @acme/* (both match @acme/a)" in response.content.decode()
    [acme_entry] = entries(Action.OVERLAPPING_PATTERN_ADDED)
    assert acme_entry.target == "team:acme"
    assert acme_entry.payload == {"pattern": "*", "team": "pad", "overlaps": "@acme/*"}


def test_deleting_a_team_ends_its_overlaps_on_the_record(world: World):
    world.pad.patterns.create(pattern="*")
    client = admin_client(world)
    response = client.post(
        reverse("admin:reviews_team_changelist"),
        {"action": "delete_selected", "_selected_action": [str(world.pad.pk)], "post": "yes"},
    )
    assert response.status_code == 302
    assert not world.pad.patterns.exists()
    [acme_entry] = entries(Action.OVERLAPPING_PATTERN_REMOVED)
    assert acme_entry.target == "team:acme"
    assert acme_entry.payload == {"pattern": "*", "team": "pad", "overlaps": "@acme/*"}
    assert [e.target for e in entries(Action.TEAM_DELETED)] == ["team:pad"]


def acme(world: World) -> PackagePattern:
    return world.acme.patterns.get(pattern="@acme/*")


def patterns_of(world: World) -> dict[str, list[str]]:
    return {
        team.slug: sorted(team.patterns.values_list("pattern", flat=True))
        for team in (world.acme, world.pad)
    }
