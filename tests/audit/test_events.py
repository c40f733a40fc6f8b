from django.test import Client
from django.urls import reverse

from reviews.models import AuditEvent, Role
from tests.personas import World


def login(user) -> Client:
    client = Client(REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="pytest-browser/1.0")
    client.force_login(user)
    return client


def only_event(action: str) -> AuditEvent:
    events = list(AuditEvent.objects.filter(action=action))
    assert len(events) == 1, [e.action for e in AuditEvent.objects.all()]
    return events[0]


def test_login_is_recorded_with_where_from(world: World):
    client = Client(REMOTE_ADDR="198.51.100.7", HTTP_USER_AGENT="Firefox/140")
    client.post(reverse("login"), {"username": "viewer", "password": "viewer-password"})
    event = only_event("auth.login")
    assert event.username == "viewer"
    assert event.ip == "198.51.100.7"
    assert event.user_agent == "Firefox/140"


def test_failed_login_is_recorded_without_the_password(world: World):
    Client(REMOTE_ADDR="198.51.100.8").post(
        reverse("login"), {"username": "viewer", "password": "wrong-horse"}
    )
    event = only_event("auth.login_failed")
    assert event.payload == {"attempted_username": "viewer"}
    assert event.username == ""
    assert "wrong-horse" not in str(AuditEvent.objects.values())


def test_member_role_change_is_recorded_once_with_old_and_new(world: World):
    client = login(world.acme_admin)
    url = reverse("reviews:team-set-member", args=["acme"])
    client.post(url, {"username": "viewer", "role": Role.REVIEWER})
    client.post(url, {"username": "viewer", "role": Role.REVIEWER})  # no change, no entry
    event = only_event("team.member_role_set")
    assert event.payload == {"member": "viewer", "old": "Viewer", "new": "Reviewer"}
    assert event.target == "team:acme"
    assert event.username == "acme-admin"
    assert event.ip == "203.0.113.9"


def test_member_removal_and_patterns_are_recorded(world: World):
    login(world.acme_admin).post(
        reverse("reviews:team-remove-member", args=["acme", world.viewer.pk])
    )
    client = login(world.staff)  # only staff change patterns (tests/teams/test_patterns.py)
    client.post(reverse("reviews:team-add-pattern", args=["acme"]), {"pattern": "acme-*"})
    pattern = world.acme.patterns.get(pattern="acme-*")
    client.post(reverse("reviews:team-remove-pattern", args=["acme", pattern.pk]))
    assert only_event("team.member_removed").payload == {"member": "viewer", "old": "Viewer"}
    assert only_event("team.pattern_added").payload == {"pattern": "acme-*"}
    assert only_event("team.pattern_removed").payload == {"pattern": "acme-*"}


def test_refused_change_writes_nothing(world: World):
    client = login(world.acme_admin)
    client.post(reverse("reviews:team-remove-member", args=["acme", world.acme_admin.pk]))
    assert not AuditEvent.objects.filter(action__startswith="team.").exists()


def test_team_created_in_the_admin_is_recorded(world: World):
    client = login(world.staff)
    world.staff.is_superuser = True
    world.staff.save()
    response = client.post(
        reverse("admin:reviews_team_add"),
        {
            "name": "Widgets",
            "slug": "widgets",
            "patterns-TOTAL_FORMS": "1",
            "patterns-INITIAL_FORMS": "0",
            "patterns-0-pattern": "@widgets/*",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "0",
            "memberships-0-user": str(world.viewer.pk),
            "memberships-0-role": str(Role.ADMIN),
        },
    )
    assert response.status_code == 302, [
        line for line in response.content.decode().splitlines() if "error" in line.lower()
    ]
    assert only_event("team.created").target == "team:widgets"
    assert only_event("team.pattern_added").payload == {"pattern": "@widgets/*"}
    assert only_event("team.member_role_set").payload == {
        "member": "viewer",
        "old": None,
        "new": "Team admin",
    }
