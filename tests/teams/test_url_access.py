"""Every URL of the portal, for every persona: anonymous, outsider, someone in no team, role
too low, right role.

`test_every_url_has_an_access_case` walks the URL configuration, so a view added later without
a case here fails the suite.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from reviews.api import tokens
from reviews.audit import trail as audit
from reviews.models import (
    ApiToken,
    AuditEvent,
    Batch,
    BatchItem,
    FileViewed,
    LineComment,
    Membership,
    NotificationPreference,
    PackagePattern,
    Profile,
    PublishedTarball,
    Review,
    Role,
    StageBaseline,
    StagedVersion,
    Team,
    TeamNotificationSettings,
)
from tests.personas import World
from tests.review.support import reviewed
from tests.support.packages import build_tarball

# URLs that are public on purpose, or guarded by Django's own admin.
PUBLIC_URLS = {
    "login",
    "logout",
    "healthz",
    # Public by signature: the link in every email works without logging in, and refuses a
    # link that was not signed by us (tests/notify/test_unsubscribe.py).
    "reviews:notifications-unsubscribe",
}


def reviewed_url(world: World, name: str, *args: str) -> str:
    """A URL of the Acme stage's review, analysed against 1.0.0 on first use (0.9.0 is
    published too)."""
    stage = world.acme_stage
    if not StageBaseline.objects.filter(stage=stage).exists():
        lines = "".join(f"{n}\n" for n in range(20))
        changed = lines.replace("15\n", "fifteen\n")
        reviewed(
            stage,
            build_tarball(stage.package_name, stage.version, {"index.js": changed}),
            build_tarball(stage.package_name, "1.0.0", {"index.js": lines}),
        )
        StageBaseline.objects.filter(stage=stage).update(published=["1.0.0", "0.9.0"])
    return reverse(name, args=[stage.stage_id, *args])


def unavailable_url(world: World, name: str) -> str:
    """A URL of the Acme stage, whose tarball could not be downloaded."""
    StagedVersion.objects.filter(pk=world.acme_stage.pk).update(
        integrity=StagedVersion.Integrity.UNAVAILABLE, integrity_reason="registry answered 403"
    )
    return reverse(name, args=[world.acme_stage.stage_id])


def thread_url(world: World, name: str) -> str:
    """A URL of a line-comment thread on the Acme stage (started by Acme's team admin)."""
    reviewed_url(world, "reviews:stage")
    thread, _ = LineComment.objects.get_or_create(
        stage=world.acme_stage,
        thread=None,
        defaults={
            "author": world.acme_admin,
            "author_name": "acme-admin",
            "path": "index.js",
            "side": "new",
            "line": 16,
            "body": "Why fifteen in words?",
        },
    )
    return reverse(name, args=[world.acme_stage.stage_id, thread.pk])


def batch_url(world: World, name: str) -> str:
    """A URL of the approver's own batch of the Acme stage."""
    batch = Batch.objects.filter(created_by=world.approver).first()
    if batch is None:
        batch = Batch.objects.create(created_by=world.approver)
        BatchItem.objects.create(batch=batch, stage=world.acme_stage, position=0)
    return reverse(name, args=[batch.pk])


@dataclass
class Case:
    url: Callable[[World], str]
    method: str = "get"
    data: Callable[[World], dict[str, str]] = field(default=lambda w: {})
    # Persona attribute names.
    outsider: str = "outsider"
    too_low: str | None = None  # a member whose role is below what the action needs
    allowed: str = "approver"
    allowed_status: int = 200
    # A check that the allowed request really did its job.
    effect: Callable[[World], bool] = field(default=lambda w: True)


CASES: dict[str, Case] = {
    # Operations: staff only (or a scraper's token, tests/portal/test_metrics.py); anyone else
    # signed in gets a 404, so the URL reveals nothing.
    "metrics": Case(
        url=lambda w: reverse("metrics"),
        outsider="teamless",
        allowed="staff",
        effect=lambda w: True,
    ),
    "reviews:dashboard": Case(url=lambda w: reverse("reviews:dashboard"), outsider=""),
    "reviews:stage": Case(
        url=lambda w: reverse("reviews:stage", args=[w.acme_stage.stage_id]), allowed="viewer"
    ),
    # The review (tests/review_pages has the rest): read-only, so a viewer may do all of it.
    "reviews:stage-file": Case(
        url=lambda w: reviewed_url(w, "reviews:stage-file", "index.js"), allowed="viewer"
    ),
    "reviews:stage-file-context": Case(
        url=lambda w: reviewed_url(w, "reviews:stage-file-context", "index.js") + "?gap=0",
        allowed="viewer",
    ),
    "reviews:stage-tarball": Case(
        url=lambda w: reviewed_url(w, "reviews:stage-tarball"), allowed="viewer"
    ),
    "reviews:stage-compare": Case(
        url=lambda w: reviewed_url(w, "reviews:stage-compare"),
        method="post",
        data=lambda w: {"against": "0.9.0"},
        allowed="viewer",
        allowed_status=303,  # queued (on commit), then back to the page
        effect=lambda w: PublishedTarball.objects.filter(version="0.9.0").exists(),
    ),
    "reviews:stage-analyse": Case(
        url=lambda w: reviewed_url(w, "reviews:stage-analyse"),
        method="post",
        allowed="viewer",
        allowed_status=303,  # queued (on commit), then back to the page
    ),
    "reviews:stage-recheck": Case(
        url=lambda w: unavailable_url(w, "reviews:stage-recheck"),
        method="post",
        too_low="viewer",
        allowed_status=303,  # the check is due and queued (on commit), then back to the page
        effect=lambda w: AuditEvent.objects.filter(
            action="tarball.recheck_requested", stage=w.acme_stage, username="approver"
        ).exists(),
    ),
    # Team review: reviewers and above review, comment, reply and resolve; anyone who sees
    # the stage keeps their own viewed ticks (tests/review/test_discussion_views.py).
    "reviews:stage-all-files": Case(
        url=lambda w: reviewed_url(w, "reviews:stage-all-files"), allowed="viewer"
    ),
    # Search in the diffs: whoever sees the stage (the hits quote its files).
    "reviews:stage-search": Case(
        url=lambda w: reviewed_url(w, "reviews:stage-search") + "?q=fifteen", allowed="viewer"
    ),
    "reviews:stage-review": Case(
        url=lambda w: reverse("reviews:stage-review", args=[w.acme_stage.stage_id]),
        method="post",
        data=lambda w: {"verdict": "request_changes", "text": "Line 16 spells a number."},
        too_low="viewer",
        allowed_status=303,
        effect=lambda w: Review.objects.filter(
            stage=w.acme_stage, author=w.approver, verdict="request_changes"
        ).exists(),
    ),
    "reviews:stage-comment": Case(
        url=lambda w: reviewed_url(w, "reviews:stage-comment", "index.js"),
        method="post",
        data=lambda w: {"side": "new", "line": "16", "text": "Why fifteen in words?"},
        too_low="viewer",
        allowed_status=303,
        effect=lambda w: LineComment.objects.filter(
            stage=w.acme_stage, author=w.approver, line=16, side="new"
        ).exists(),
    ),
    "reviews:stage-thread-reply": Case(
        url=lambda w: thread_url(w, "reviews:stage-thread-reply"),
        method="post",
        data=lambda w: {"text": "It reads better."},
        too_low="viewer",
        allowed_status=303,
        effect=lambda w: LineComment.objects.filter(
            stage=w.acme_stage, author=w.approver, thread__isnull=False
        ).exists(),
    ),
    "reviews:stage-thread-resolve": Case(
        url=lambda w: thread_url(w, "reviews:stage-thread-resolve"),
        method="post",
        data=lambda w: {"resolved": "1"},
        too_low="viewer",
        allowed_status=303,
        effect=lambda w: LineComment.objects.filter(
            stage=w.acme_stage, resolved_by=w.approver
        ).exists(),
    ),
    "reviews:stage-file-viewed": Case(
        url=lambda w: reviewed_url(w, "reviews:stage-file-viewed", "index.js"),
        method="post",
        data=lambda w: {"viewed": "1"},
        allowed="viewer",
        allowed_status=303,
        effect=lambda w: FileViewed.objects.filter(
            stage=w.acme_stage, user=w.viewer, path="index.js"
        ).exists(),
    ),
    "reviews:team-policy": Case(
        url=lambda w: reverse("reviews:team-policy", args=["acme"]),
        method="post",
        data=lambda w: {"required_approvals": "2", "no_self_approval": "on"},
        too_low="approver",
        allowed="acme_admin",
        allowed_status=302,
        effect=lambda w: Team.objects.filter(
            slug="acme", required_approvals=2, acknowledge_findings=False
        ).exists(),
    ),
    "reviews:staging-npm-user": Case(
        url=lambda w: reverse("reviews:staging-npm-user"),
        method="post",
        data=lambda w: {"staging_npm_user": "approver-ci"},
        outsider="",
        allowed_status=302,
        effect=lambda w: Profile.objects.filter(
            user=w.approver, staging_npm_user="approver-ci"
        ).exists(),
    ),
    "reviews:me": Case(url=lambda w: reverse("reviews:me"), outsider=""),
    "reviews:audit": Case(url=lambda w: reverse("reviews:audit"), outsider=""),
    "reviews:audit-export": Case(
        url=lambda w: reverse("reviews:audit-export", args=["json"]), outsider=""
    ),
    "reviews:teams": Case(url=lambda w: reverse("reviews:teams"), outsider=""),
    "reviews:team": Case(url=lambda w: reverse("reviews:team", args=["acme"]), allowed="viewer"),
    "reviews:team-set-member": Case(
        url=lambda w: reverse("reviews:team-set-member", args=["acme"]),
        method="post",
        data=lambda w: {"username": "staff", "role": str(Role.REVIEWER)},
        too_low="approver",
        allowed="acme_admin",
        allowed_status=302,
        effect=lambda w: Membership.objects.filter(team=w.acme, user=w.staff).exists(),
    ),
    "reviews:team-remove-member": Case(
        url=lambda w: reverse("reviews:team-remove-member", args=["acme", w.viewer.pk]),
        method="post",
        too_low="approver",
        allowed="acme_admin",
        allowed_status=302,
        effect=lambda w: not Membership.objects.filter(team=w.acme, user=w.viewer).exists(),
    ),
    "reviews:team-add-pattern": Case(
        url=lambda w: reverse("reviews:team-add-pattern", args=["acme"]),
        method="post",
        data=lambda w: {"pattern": "acme-*"},
        too_low="acme_admin",  # patterns decide who sees what: staff only
        allowed="staff",
        allowed_status=302,
        effect=lambda w: PackagePattern.objects.filter(team=w.acme, pattern="acme-*").exists(),
    ),
    "reviews:team-remove-pattern": Case(
        url=lambda w: reverse(
            "reviews:team-remove-pattern", args=["acme", w.acme.patterns.get().pk]
        ),
        method="post",
        too_low="acme_admin",  # patterns decide who sees what: staff only
        allowed="staff",
        allowed_status=302,
        effect=lambda w: not w.acme.patterns.exists(),
    ),
    # Approve / reject (tests/decisions has the registry side). The approver has no linked
    # npm token here: the attempt is refused before the registry, and audited.
    "reviews:stage-decision-panel": Case(
        url=lambda w: reverse("reviews:stage-decision-panel", args=[w.acme_stage.stage_id]),
        allowed="viewer",
    ),
    "reviews:stage-decision-check": Case(
        url=lambda w: reverse("reviews:stage-decision-check", args=[w.acme_stage.stage_id]),
        method="post",
        too_low="viewer",
        allowed_status=303,  # no decision waits for an answer: back to the stage, with a message
    ),
    "reviews:stage-approve-form": Case(
        url=lambda w: reverse("reviews:stage-approve-form", args=[w.acme_stage.stage_id]),
        too_low="viewer",
    ),
    "reviews:stage-approve": Case(
        url=lambda w: reverse("reviews:stage-approve", args=[w.acme_stage.stage_id]),
        method="post",
        too_low="viewer",
        effect=lambda w: AuditEvent.objects.filter(
            action="decision.refused", stage=w.acme_stage, username="approver"
        ).exists(),
    ),
    "reviews:stage-reject-form": Case(
        url=lambda w: reverse("reviews:stage-reject-form", args=[w.acme_stage.stage_id]),
        too_low="viewer",
    ),
    "reviews:stage-reject": Case(
        url=lambda w: reverse("reviews:stage-reject", args=[w.acme_stage.stage_id]),
        method="post",
        data=lambda w: {"confirm_version": w.acme_stage.version, "reason": "broken"},
        too_low="viewer",
        effect=lambda w: AuditEvent.objects.filter(
            action="decision.refused", stage=w.acme_stage, username="approver"
        ).exists(),
    ),
    # Batches: anyone who sees the stages may start one (what they may not approve is left out
    # with the reason); a batch is its maker's alone. The approver has no linked token here.
    "reviews:batch-start": Case(
        url=lambda w: reverse("reviews:batch-start"),
        method="post",
        data=lambda w: {"stage": str(w.acme_stage.stage_id)},
        allowed_status=303,
        effect=lambda w: Batch.objects.filter(created_by=w.approver).exists(),
    ),
    "reviews:batch": Case(url=lambda w: batch_url(w, "reviews:batch")),
    "reviews:batch-progress": Case(url=lambda w: batch_url(w, "reviews:batch-progress")),
    "reviews:batch-approve": Case(
        url=lambda w: batch_url(w, "reviews:batch-approve"),
        method="post",
        data=lambda w: {"otp": "123456"},
        allowed_status=303,
        effect=lambda w: AuditEvent.objects.filter(
            action="decision.refused", stage=w.acme_stage, username="approver"
        ).exists(),
    ),
    "reviews:batch-reject": Case(
        url=lambda w: batch_url(w, "reviews:batch-reject"),
        method="post",
        data=lambda w: {"confirm_count": "1", "reason": "broken", "otp": "123456"},
        allowed_status=303,
        effect=lambda w: AuditEvent.objects.filter(
            action="decision.refused", stage=w.acme_stage, username="approver"
        ).exists(),
    ),
    "reviews:stage-security-key-poll": Case(
        url=lambda w: reverse("reviews:stage-security-key-poll", args=[w.acme_stage.stage_id]),
        method="post",
        too_low="viewer",
        allowed_status=303,  # nothing is waiting: back to the form, with a message
    ),
    "reviews:stage-security-key-cancel": Case(
        url=lambda w: reverse("reviews:stage-security-key-cancel", args=[w.acme_stage.stage_id]),
        method="post",
        too_low="viewer",
        allowed_status=303,
    ),
    # Notifications: a member chooses per team; the team admin sets reminders and the webhook.
    "reviews:notification-preference": Case(
        url=lambda w: reverse("reviews:notification-preference", args=["acme"]),
        method="post",
        data=lambda w: {"mode": "digest"},
        allowed="viewer",
        allowed_status=302,
        effect=lambda w: NotificationPreference.objects.filter(
            user=w.viewer, team=w.acme, mode="digest"
        ).exists(),
    ),
    "reviews:team-notifications": Case(
        url=lambda w: reverse("reviews:team-notifications", args=["acme"]),
        method="post",
        data=lambda w: {"reminder_after_days": "5", "reminder_every_days": "2"},
        too_low="approver",
        allowed="acme_admin",
        allowed_status=302,
        effect=lambda w: TeamNotificationSettings.objects.filter(
            team=w.acme, reminder_after_days=5, reminder_every_days=2
        ).exists(),
    ),
    "reviews:team-webhook-test": Case(
        url=lambda w: reverse("reviews:team-webhook-test", args=["acme"]),
        method="post",
        too_low="approver",
        allowed="acme_admin",
        allowed_status=302,  # no webhook is set: a message says so (tests/notifications)
    ),
    # A person's own settings: every signed-in person has them, no team involved.
    "reviews:settings": Case(url=lambda w: reverse("reviews:settings"), outsider=""),
    "reviews:npm-token-link": Case(
        url=lambda w: reverse("reviews:npm-token-link"),
        method="post",
        data=lambda w: {"token": "not a token"},
        outsider="",
        allowed_status=400,  # refused before any registry is asked; tests/decisions links
    ),
    "reviews:npm-token-unlink": Case(
        url=lambda w: reverse("reviews:npm-token-unlink"),
        method="post",
        outsider="",
        allowed_status=302,
    ),
    # API tokens (tests/api has the API itself): a person makes and revokes their own.
    "reviews:api-token-create": Case(
        url=lambda w: reverse("reviews:api-token-create"),
        method="post",
        data=lambda w: {"name": "release job", "expires_in_days": "30"},
        outsider="",
        allowed_status=200,  # the page, with the new token shown once
        effect=lambda w: ApiToken.objects.filter(user=w.approver, name="release job").exists(),
    ),
    "reviews:api-token-revoke": Case(
        # The approver's token: anyone else gets a 404, as for a token that does not exist.
        url=lambda w: reverse(
            "reviews:api-token-revoke",
            args=[tokens.create(w.approver, "ci", audit.SYSTEM).record.pk],
        ),
        method="post",
        allowed_status=302,
        effect=lambda w: ApiToken.objects.filter(
            user=w.approver, revoked_at__isnull=False
        ).exists(),
    ),
}


def url_names(resolvers: list[URLPattern | URLResolver], namespace: str = "") -> set[str]:
    names: set[str] = set()
    for entry in resolvers:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                continue  # Django's admin guards itself (staff only)
            if entry.namespace == "api":
                continue  # the JSON API answers 401, not a login page: tests/api/test_access.py
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            names |= url_names(entry.url_patterns, inner)
        elif entry.name:
            names.add(f"{namespace}{entry.name}")
    return names


def test_every_url_has_an_access_case():
    names = url_names(get_resolver().url_patterns) - PUBLIC_URLS
    assert names == set(CASES), f"URLs without an access case: {names - set(CASES)}"


def request(client: Client, case: Case, world: World):
    send = getattr(client, case.method)
    return send(case.url(world), case.data(world))


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("name", sorted(CASES))
def test_anonymous_is_sent_to_login(name, world):
    response = request(Client(), CASES[name], world)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.outsider))
def test_outsider_gets_404(name, world):
    case = CASES[name]
    response = request(client_for(getattr(world, case.outsider)), case, world)
    assert response.status_code == 404


# What the world's names look like on a page or in an export.
WORLD_NAMES = ("@acme/ui", "left-pad", "nobody-owns-this", "Acme", "Pad", "team:acme", "team:pad")


def body_of(response) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return str(content.decode())


@pytest.mark.parametrize(
    "name", sorted(n for n, c in CASES.items() if c.outsider or c.method == "get")
)
def test_member_of_no_team_sees_nothing(name, world):
    audit.record(audit.Action.STAGE_SEEN, stage=world.acme_stage)
    audit.record(audit.Action.STAGE_SEEN, stage=world.orphan_stage)
    audit.record(audit.Action.PATTERN_ADDED, target="team:pad", payload={"pattern": "left-pad"})
    case = CASES[name]
    response = request(client_for(world.teamless), case, world)
    if case.outsider:
        assert response.status_code == 404
    else:
        assert response.status_code == 200
        body = body_of(response)
        assert [name for name in WORLD_NAMES if name in body] == []


@pytest.mark.parametrize(
    ("name", "too_low"), sorted((n, c.too_low) for n, c in CASES.items() if c.too_low)
)
def test_role_too_low_gets_403(name, too_low, world):
    response = request(client_for(getattr(world, too_low)), CASES[name], world)
    assert response.status_code == 403


@pytest.mark.parametrize("name", sorted(CASES))
def test_right_role_works(name, world):
    case = CASES[name]
    response = request(client_for(getattr(world, case.allowed)), case, world)
    assert response.status_code == case.allowed_status
    assert case.effect(world)


@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if c.method == "post"))
def test_actions_refuse_get(name, world):
    case = CASES[name]
    response = client_for(getattr(world, case.allowed)).get(case.url(world))
    assert response.status_code == 405
