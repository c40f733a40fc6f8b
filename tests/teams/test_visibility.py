import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.test import Client
from django.urls import reverse

from reviews.audit import trail as audit
from reviews.models import Membership, PackagePattern, Role
from reviews.teams.access import (
    get_visible_stage,
    get_visible_team,
    is_valid_pattern,
    pattern_matches,
    require_stage_role,
    role_for_package,
    team_role,
    unowned_stages,
    visible_audit_events,
    visible_stages,
    visible_teams,
)
from tests.personas import make_stage


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_each_person_sees_only_their_teams_stages(world):
    assert list(visible_stages(world.approver)) == [world.acme_stage]
    assert list(visible_stages(world.outsider)) == [world.pad_stage]
    assert set(visible_stages(world.staff)) == {
        world.acme_stage,
        world.pad_stage,
        world.orphan_stage,
    }


def test_a_member_of_no_team_sees_no_stage_team_or_entry(world):
    audit.record(audit.Action.STAGE_SEEN, stage=world.acme_stage)
    audit.record(audit.Action.STAGE_SEEN, stage=world.orphan_stage)

    assert list(visible_stages(world.teamless)) == []
    assert list(visible_teams(world.teamless)) == []
    assert list(visible_audit_events(world.teamless)) == []
    assert role_for_package(world.teamless, "@acme/ui") is None


def test_with_no_pattern_at_all_every_stage_is_unowned(world):
    PackagePattern.objects.all().delete()

    assert set(unowned_stages()) == {world.acme_stage, world.pad_stage, world.orphan_stage}


def test_dashboard_lists_and_counts_only_visible_stages(world):
    for n in range(3):
        make_stage("left-pad", f"2.0.{n}")
    body = login(world.approver).get(reverse("reviews:dashboard")).content.decode()
    assert "@acme/ui" in body
    assert "left-pad" not in body
    assert "nobody-owns-this" not in body


def test_staff_are_told_about_unowned_stages(world):
    body = login(world.staff).get(reverse("reviews:dashboard")).content.decode()
    assert "1 pending stage belongs to no team" in body
    assert "nobody-owns-this" in body
    assert "belongs to no team" not in (
        login(world.approver).get(reverse("reviews:dashboard")).content.decode()
    )
    assert list(unowned_stages()) == [world.orphan_stage]


def test_patterns_match_like_globs():
    assert pattern_matches("@acme/*", "@acme/ui")
    assert pattern_matches("@acme/ui-*", "@acme/ui-button")
    assert not pattern_matches("@acme/ui-*", "@acme/uikit")
    assert not pattern_matches("left-pad", "left-pad2")
    assert not pattern_matches("@acme/*", "@acme-evil/ui")
    assert pattern_matches("*-plugin", "eslint-plugin")
    # Anchored at both ends: a longer name is someone else's package.
    assert not pattern_matches("*-plugin", "eslint-plugin-evil")
    assert not pattern_matches("eslint-*", "evil-eslint-x")
    assert not pattern_matches("@acme/*-icons", "@acme/ui-icons-evil")


@pytest.mark.parametrize(
    ("pattern", "stranger"),
    [
        ("*-plugin", "eslint-plugin-evil"),  # regex in the database
        ("@pad/*-icons", "@pad/ui-icons-evil"),
        ("@pad/*-icons", "@evil/@pad/ui-icons"),
        ("eslint-*", "evil-eslint-x"),  # prefix lookup
        ("right-pad", "right-pad2"),  # exact lookup
        ("eslint-*", "eslintrc"),  # the prefix is everything before the wildcard
    ],
)
def test_the_database_filter_is_anchored_at_both_ends(world, pattern, stranger):
    world.pad.patterns.create(pattern=pattern)
    outside = make_stage(stranger)

    assert outside not in set(visible_stages(world.outsider))
    assert outside in set(unowned_stages())


def test_middle_wildcards_filter_in_the_database(world):
    world.pad.patterns.create(pattern="@acme/*-icons")
    icons = make_stage("@acme/ui-icons")
    make_stage("@acme/ui")
    visible = set(visible_stages(world.outsider))
    assert icons in visible
    assert world.acme_stage not in visible


def test_role_is_the_highest_over_matching_teams(world):
    world.pad.patterns.create(pattern="@acme/ui")
    assert role_for_package(world.outsider, "@acme/ui") == Role.ADMIN
    assert role_for_package(world.viewer, "@acme/ui") == Role.VIEWER
    assert role_for_package(world.viewer, "left-pad") is None
    assert role_for_package(world.staff, "anything") == Role.ADMIN


def test_own_page_lists_teams_and_roles(world):
    body = login(world.approver).get(reverse("reviews:me")).content.decode()
    assert "Acme" in body
    assert "Approver" in body
    assert "Pad" not in body


def test_team_page_shows_member_forms_to_admins_and_pattern_forms_to_staff(world):
    url = reverse("reviews:team", args=["acme"])
    admin_page = login(world.acme_admin).get(url).content.decode()
    assert "Add or change member" in admin_page
    assert "Add pattern" not in admin_page
    assert "/patterns/" not in admin_page
    assert "Only staff can add or remove package patterns" in admin_page
    assert "<code>@acme/*</code>" in admin_page  # read-only, but shown
    assert "Add or change member" not in login(world.approver).get(url).content.decode()
    staff_page = login(world.staff).get(url).content.decode()
    assert "Add pattern" in staff_page
    assert "Only staff can" not in staff_page


def test_last_team_admin_cannot_be_removed(world):
    url = reverse("reviews:team-remove-member", args=["acme", world.acme_admin.pk])
    response = login(world.acme_admin).post(url, follow=True)
    assert "keeps at least one team admin" in response.content.decode()
    assert world.acme.memberships.filter(user=world.acme_admin, role=Role.ADMIN).exists()


def test_invalid_pattern_is_refused_with_a_message(world):
    url = reverse("reviews:team-add-pattern", args=["acme"])
    response = login(world.staff).post(url, {"pattern": "<script>"})
    assert response.status_code == 400
    assert "wildcards" in response.content.decode()
    assert not world.acme.patterns.filter(pattern="<script>").exists()


def test_unknown_user_is_refused_with_a_message(world):
    url = reverse("reviews:team-set-member", args=["acme"])
    response = login(world.acme_admin).post(url, {"username": "ghost", "role": Role.VIEWER})
    assert response.status_code == 400
    assert "no active portal user named" in response.content.decode()


@pytest.mark.parametrize("name", ["@pad/ui-kit", "@pad/a-b-c"])
def test_several_wildcards_ending_in_one_match_in_the_database(world, name):
    world.pad.patterns.create(pattern="@pad/*-*")
    inside = make_stage(name)

    assert inside in set(visible_stages(world.outsider))


def test_a_pattern_has_at_most_214_characters_like_a_package_name():
    assert is_valid_pattern("a" * 214)
    assert not is_valid_pattern("a" * 215)


def test_a_hidden_stage_or_team_is_not_found_like_a_missing_one(world):
    with pytest.raises(Http404, match=r"^No such staged version$"):
        get_visible_stage(world.outsider, world.acme_stage.stage_id)
    with pytest.raises(Http404, match=r"^No such team$"):
        get_visible_team(world.outsider, "acme")


def test_the_team_role_is_the_one_held_in_that_team(world):
    # Acme's team admin who only views Pad may not change Pad, and is told why.
    Membership.objects.create(team=world.pad, user=world.acme_admin, role=Role.VIEWER)
    url = reverse("reviews:team-set-member", args=["pad"])

    response = login(world.acme_admin).post(url, {"username": "viewer", "role": Role.VIEWER})

    assert response.status_code == 403
    assert (
        '<p class="error-reason">Only a team admin may change the team.</p>'
        in response.content.decode()
    )
    assert team_role(world.acme_admin, world.pad) == Role.VIEWER
    assert team_role(world.acme_admin, world.acme) == Role.ADMIN
    assert team_role(world.teamless, world.acme) is None
    assert not world.pad.memberships.filter(user__username="viewer").exists()


def test_a_role_check_says_who_has_no_role_and_who_has_too_low_a_one(world):
    # views find the stage first (a 404 for anyone outside its teams); this check must still
    # refuse on its own, in words, if a caller ever reaches it without that
    with pytest.raises(PermissionDenied) as teamless:
        require_stage_role(world.teamless, world.acme_stage, Role.REVIEWER)
    with pytest.raises(PermissionDenied) as viewer:
        require_stage_role(world.viewer, world.acme_stage, Role.APPROVER)

    assert str(teamless.value) == (
        "This needs the reviewer role. You are in no team that owns @acme/ui: a team admin "
        "can change it."
    )
    assert "Your role for @acme/ui is viewer" in str(viewer.value)
    require_stage_role(world.approver, world.acme_stage, Role.APPROVER)  # enough: no error
