"""Changed files' bytes stored at analysis time (reviews.mirror.blobs): read back identically,
read by the file views instead of the tarball, and an analysis without them (made before they
existed, or with one lost or damaged) still shows its files from the tarball."""

from __future__ import annotations

import pytest
import zstandard
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from reviews.inspect.archive import read_members
from reviews.mirror.blobs import blob_name, read_blob
from reviews.models import Analysis, FileChangeRow, StagedVersion
from tests.personas import World
from tests.review.support import reviewed
from tests.review.test_pages import HTMX_DIFF, file_page
from tests.support.packages import build_tarball

pytestmark = pytest.mark.django_db

OLD_FILES: dict[str, bytes | str] = {
    "lib/a.js": "one\ntwo\n",
    "gone.js": "bye\n",
    "same.js": "same\n",
}
NEW_FILES: dict[str, bytes | str] = {
    "lib/a.js": "one\nTWO\nthree\n",
    "added.js": "hello\n",
    "same.js": "same\n",
}


@pytest.fixture
def analysed(world: World) -> tuple[StagedVersion, Analysis, bytes, bytes]:
    old = build_tarball("@acme/ui", "1.0.0", OLD_FILES)
    new = build_tarball("@acme/ui", "2.0.0", NEW_FILES)
    analysis = reviewed(world.acme_stage, new, old)
    assert analysis.status == Analysis.Status.DONE
    return world.acme_stage, analysis, old, new


def rows(analysis: Analysis) -> dict[str, FileChangeRow]:
    return {row.path: row for row in FileChangeRow.objects.filter(analysis=analysis)}


def test_every_changed_file_is_stored_once_and_reads_back_identically(analysed):
    _stage, analysis, old, new = analysed
    by_path = rows(analysis)
    paths = ["lib/a.js", "added.js", "gone.js", "package.json"]
    old_bytes, new_bytes = read_members(old, paths), read_members(new, paths)

    for path in ("lib/a.js", "added.js", "package.json"):
        assert read_blob(by_path[path].sha256) == new_bytes[path]
    for path in ("lib/a.js", "gone.js", "package.json"):
        assert read_blob(by_path[path].old_sha256) == old_bytes[path]
    assert read_blob(by_path["same.js"].sha256) is None  # unchanged: never shown as a diff


def test_views_read_the_blobs_and_never_the_tarball(analysed, viewer):
    stage, analysis, _old, _new = analysed
    tarballs = storages["tarballs"]
    for tarball in (analysis.staged, analysis.baseline):
        tarballs.delete(tarball.storage_name)

    diff = file_page(viewer, stage, "lib/a.js", HTMX_DIFF)
    removed = file_page(viewer, stage, "gone.js", HTMX_DIFF)

    assert diff.status_code == 200
    assert "three" in diff.content.decode()
    assert removed.status_code == 200
    assert "bye" in removed.content.decode()


def test_an_analysis_without_blobs_still_shows_its_files_from_the_tarball(analysed, viewer):
    stage, analysis, _old, _new = analysed
    tarballs = storages["tarballs"]
    for row in rows(analysis).values():
        for digest in (row.sha256, row.old_sha256):
            if digest and tarballs.exists(blob_name(digest)):
                tarballs.delete(blob_name(digest))

    diff = file_page(viewer, stage, "lib/a.js", HTMX_DIFF)
    whole = file_page(viewer, stage, "added.js", HTMX_DIFF, layout="file")

    assert diff.status_code == 200
    assert "three" in diff.content.decode()
    assert whole.status_code == 200
    assert "hello" in whole.content.decode()


def test_a_damaged_blob_is_not_believed(analysed, viewer):
    stage, analysis, _old, _new = analysed
    row = rows(analysis)["lib/a.js"]
    tarballs = storages["tarballs"]
    name = blob_name(row.sha256)
    tarballs.delete(name)
    tarballs.save(name, ContentFile(zstandard.compress(b"one\nTWO\nforged\n"), name=name))

    assert read_blob(row.sha256) is None
    diff = file_page(viewer, stage, "lib/a.js", HTMX_DIFF)
    assert diff.status_code == 200
    assert "three" in diff.content.decode()  # from the tarball
    assert "forged" not in diff.content.decode()


def test_blobs_that_cannot_be_stored_leave_the_analysis_done_and_the_views_working(
    world, viewer, monkeypatch
):
    storage = storages["tarballs"]
    real_save = storage.save

    def failing_save(name, content, *args, **kwargs):
        if name.startswith("blobs/"):
            raise OSError("the disk is full")
        return real_save(name, content, *args, **kwargs)

    monkeypatch.setattr(storage, "save", failing_save)
    old = build_tarball("@acme/ui", "1.0.0", OLD_FILES)
    new = build_tarball("@acme/ui", "2.0.0", NEW_FILES)
    analysis = reviewed(world.acme_stage, new, old)

    assert analysis.status == Analysis.Status.DONE
    assert read_blob(rows(analysis)["lib/a.js"].sha256) is None
    diff = file_page(viewer, world.acme_stage, "lib/a.js", HTMX_DIFF)
    assert diff.status_code == 200
    assert "three" in diff.content.decode()
