"""Hostile tarballs staged at a live dev registry, synced, downloaded and analysed: nothing is
followed or written, what is not a file is a finding, limits refuse with a reason, and every
page renders escaped."""

from __future__ import annotations

import hashlib
import tarfile

import pytest

from reviews.models import Analysis, FileChangeRow, StagedVersion
from tests.inspect.builders import Entry, gzip_bomb, make_tarball, many_entries, package
from tests.review.support import Registry
from tests.review.test_pages import HTMX_DIFF, file_page, page
from tests.support.tar_cases import audit_reproduction
from tests.support.tarcraft import Header, gzip, member

pytestmark = pytest.mark.django_db

NAME = "@acme/evil"


def manifest(**extra: object) -> Entry:
    return Entry("package/package.json", package(NAME, "1.0.0", **extra))


def analysis_of(stage: StagedVersion) -> Analysis:
    found = stage.review_baseline.analysis
    assert found is not None
    return found


def test_links_devices_and_paths_outside_the_package_are_findings(
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
    # npm strips the leading slash's empty part: the file installs inside the package
    assert paths == {"index.js", "package.json", "etc/cron.d/evil"}
    kinds = [finding["kind"] for finding in found.findings]
    assert kinds == [
        "parent-path",
        "absolute-path",
        "symlink",
        "hardlink",
        "device",
        "several-top-folders",
    ]
    assert list(cwd.iterdir()) == []  # nothing was extracted anywhere

    body = page(viewer, stage)
    findings = body[body.index('id="findings"') : body.index('id="files"')]
    assert "package/../../evil.js" in findings
    assert "/etc/cron.d/evil" in findings
    assert "symbolic link to /home/user/.npmrc" in findings
    assert "character device" in findings
    assert 'data-path="secret.js"' not in body


def test_the_audits_pax_trick_shows_the_index_js_npm_installs(registry: Registry):
    # Reported in issue 11: "Integrity: Verified", no findings, index.js "identical", and
    # npm install ran the hidden index.js. The page must show the body npm installs.
    registry.publish(NAME, "1.0.0", {"index.js": "ok();\n"})
    audit, hidden = audit_reproduction()
    manifest = package(NAME, "1.0.1")
    raw = member(Header(b"package/package.json", size=len(manifest)), manifest)
    tarball = gzip(raw) + audit  # two gzip members, read as one stream by npm and by us

    stage = registry.stage(NAME, "1.0.1", tarball=tarball)

    found = analysis_of(stage)
    row = FileChangeRow.objects.get(analysis=found, path="index.js")
    assert row.status == "modified"
    assert row.sha256 == hashlib.sha256(hidden).hexdigest()
    assert row.is_binary  # the hidden body is tar headers: NUL bytes


def test_paths_that_are_one_path_on_macos_and_windows_are_findings_on_the_page(
    registry: Registry, viewer
):
    tarball = make_tarball(
        {"package.json": package(NAME, "1.0.0"), "index.js": "a\n", "Index.js": "b\n"}
    )

    stage = registry.stage(NAME, "1.0.0", tarball=tarball)

    kinds = [finding["kind"] for finding in analysis_of(stage).findings]
    assert kinds == ["path-collision"]
    body = page(viewer, stage)
    findings = body[body.index('id="findings"') : body.index('id="files"')]
    assert "path-collision" in findings
    assert "the same path as index.js on macOS and Windows" in findings


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


def test_a_gzip_bomb_gets_a_page_that_says_what_was_refused_and_why(registry: Registry, viewer):
    bomb = gzip_bomb(64 * 1024 * 1024)
    assert len(bomb) < 200_000

    stage = registry.stage(NAME, "1.0.0", tarball=bomb)

    assert stage.integrity == StagedVersion.Integrity.UNAVAILABLE  # too big to check
    found = analysis_of(stage)
    assert found.status == Analysis.Status.REFUSED
    assert (found.refusal_side, found.refusal_reason) == ("staged", "ratio")
    assert not FileChangeRow.objects.filter(analysis=found).exists()
    body = page(viewer, stage)
    assert "The staged tarball was refused" in body
    assert "a decompression bomb" in body
    assert 'id="files"' not in body


def test_a_hundred_thousand_tiny_entries_stop_at_the_entry_limit(registry: Registry, viewer):
    stage = registry.stage(NAME, "1.0.0", tarball=many_entries(100_000))

    found = analysis_of(stage)
    assert found.status == Analysis.Status.REFUSED
    assert found.refusal_reason == "entries"
    assert "more than 50,000 entries" in found.refusal_message
    assert "The tarball has more than 50,000 entries." in page(viewer, stage)
