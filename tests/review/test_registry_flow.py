"""From staging to the review page against a live dev registry: the baseline's choice and its
tarball (downloaded, checked against the packument, stored), the analysis of every kind of file
change, comparing with another version, the task and the command."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from devregistry.store import Store
from portal.celery import app
from reviews.mirror import throttle
from reviews.models import Analysis, FileChangeRow, PublishedTarball, StagedVersion, Tarball
from reviews.review import analysis as review_analysis
from reviews.tasks import analyse_stage_task, download_stage_tarball_task
from tests.inspect.builders import noise
from tests.review.support import Registry
from tests.review.test_pages import HTMX_DIFF, file_page, page

pytestmark = pytest.mark.django_db

NAME = "@acme/kit"
BINARY = b"\x00asm\x01\x00\x00\x00" + bytes(range(256)) * 4
MINIFIED = "var a=" + "1+" * 6000 + "1;\n"
# 1.3 MB of lines that compress like code: over the inline limit, under the bomb ratio
HUGE = "".join(f"x{n} = '{noise(40, n).decode()}';\n" for n in range(25_000))
BASELINE_FILES = {
    "index.js": "module.exports = require('./lib');\n",
    "lib/index.js": "exports.one = 1;\nexports.two = 2;\n",
    "lib/old.js": "exports.removed = true;\n",
    "lib/move-me.js": "exports.moved = 'yes';\n",
    "wasm/app.wasm": BINARY,
    "dist/app.min.js": MINIFIED,
    "data/big.js": HUGE,
    "latin1.txt": "caf\xe9\n".encode("latin-1"),
    "empty.txt": "",
}
STAGED_FILES = {
    "index.js": "module.exports = require('./lib');\n",
    "lib/index.js": "exports.one = 1;\nexports.two = 'two';\nexports.three = 3;\n",
    "lib/moved.js": "exports.moved = 'yes';\n",
    "lib/new.js": "exports.added = true;\n",
    "wasm/app.wasm": BINARY + b"\x01",
    "dist/app.min.js": MINIFIED.replace("var a", "var b"),
    "data/big.js": HUGE + "y = 2;\n",
    "latin1.txt": "caf\xe9 cr\xe8me\n".encode("latin-1"),
    "empty.txt": "",
    "also-empty.txt": "",
}


@pytest.fixture
def no_read_backoff(monkeypatch):
    """The sync's in-pass read retries wait between attempts: not worth seconds here."""
    monkeypatch.setattr(throttle, "sleep", lambda _: None)  # the waits' seam


def analysis_of(stage: StagedVersion) -> Analysis:
    found = stage.review_baseline.analysis
    assert found is not None
    return found


def rows(stage: StagedVersion) -> dict[str, FileChangeRow]:
    found = analysis_of(stage)
    return {row.path: row for row in FileChangeRow.objects.filter(analysis=found)}


def test_every_kind_of_change_against_the_release_before(registry: Registry, viewer):
    registry.publish(NAME, "1.0.0", BASELINE_FILES)
    stage = registry.stage(NAME, "1.1.0", STAGED_FILES)

    chosen = stage.review_baseline
    assert (chosen.version, chosen.rule) == ("1.0.0", "tag")  # latest points at 1.0.0
    published = PublishedTarball.objects.get(package_name=NAME, version="1.0.0")
    assert published.verdict == StagedVersion.Integrity.VERIFIED
    assert published.reason == "dist.integrity and dist.shasum and package.json match"
    assert published.tarball is not None
    assert Tarball.objects.count() == 2  # staged and baseline, each stored once

    found = analysis_of(stage)
    assert found.status == Analysis.Status.DONE
    index = rows(stage)
    statuses = {path: row.status for path, row in index.items()}
    assert statuses == {
        "index.js": "unchanged",
        "lib/index.js": "modified",
        "lib/old.js": "removed",
        "lib/moved.js": "renamed",
        "lib/new.js": "added",
        "wasm/app.wasm": "modified",
        "dist/app.min.js": "modified",
        "data/big.js": "modified",
        "latin1.txt": "modified",
        "empty.txt": "unchanged",
        "also-empty.txt": "added",  # empty files never pair up as renames
        "package.json": "modified",
    }
    assert index["lib/moved.js"].old_path == "lib/move-me.js"
    assert (index["lib/index.js"].lines_added, index["lib/index.js"].lines_removed) == (2, 1)
    assert index["wasm/app.wasm"].is_binary
    assert index["wasm/app.wasm"].lines_added is None
    assert index["data/big.js"].size_delta == 7
    assert (index["data/big.js"].size or 0) > 1024 * 1024
    assert (found.files_added, found.files_removed, found.files_renamed) == (2, 1, 1)
    assert found.file_count == 11

    def diff(path):
        response = file_page(viewer, stage, path, HTMX_DIFF)
        assert response.status_code == 200
        return response.content.decode()

    assert "Binary, sizes and digests differ" in diff("wasm/app.wasm")
    assert "probably minified or generated code" in diff("dist/app.min.js")
    huge = diff("data/big.js")
    assert "Not shown inline: the baseline file is 1.3 MiB, 25,000 lines; the staged" in huge
    assert "(limit 1 MiB). 1 line added, 0 removed." in huge
    assert "not valid UTF-8" in diff("latin1.txt")
    assert "The file is empty." in diff("also-empty.txt")
    assert ">three<" in diff("lib/index.js")
    assert "lib/move-me.js → lib/moved.js" in diff("lib/moved.js")

    body = page(viewer, stage)
    assert "Compared with 1.0.0, the version the “latest” tag points to now." in body
    assert '<span class="gr-tag">binary</span>' in body
    assert '<span class="gr-tag">large</span>' in body


def test_a_first_release_is_all_added(registry: Registry, viewer):
    stage = registry.stage(NAME, "0.1.0", {"index.js": "x\n"})

    chosen = stage.review_baseline
    assert (chosen.version, chosen.rule, chosen.published) == ("", "none", [])  # 0.0.0-stage
    found = analysis_of(stage)
    assert found.baseline is None
    assert (found.files_added, found.file_count) == (2, 2)
    assert "First release: nothing is published yet" in page(viewer, stage)


def test_a_prerelease_on_next_is_compared_with_what_next_points_to(registry: Registry):
    registry.publish(NAME, "1.0.0")
    registry.publish(NAME, "2.0.0-rc.1", tag="next")
    registry.publish(NAME, "1.1.0")  # latest moves on; next stays

    stage = registry.stage(NAME, "2.0.0-rc.2", {"a.js": "a\n"}, tag="next")

    chosen = stage.review_baseline
    assert (chosen.version, chosen.rule, chosen.tag) == ("2.0.0-rc.1", "tag", "next")
    assert chosen.published == ["2.0.0-rc.1", "1.1.0", "1.0.0"]


def test_without_a_tag_to_follow_the_baseline_is_chosen_by_semver(registry: Registry, viewer):
    registry.publish(NAME, "1.0.0")
    registry.publish(NAME, "2.0.0")

    backport = registry.stage(NAME, "1.0.1", tag="v1-maintenance")
    oldest = registry.stage(NAME, "0.9.0", tag="v0")

    assert (backport.review_baseline.version, backport.review_baseline.rule) == ("1.0.0", "below")
    assert (oldest.review_baseline.version, oldest.review_baseline.rule) == ("2.0.0", "highest")
    body = page(viewer, backport)
    assert "Compared with 1.0.0, the highest published version below 1.0.1." in body


def test_the_reviewer_compares_with_another_version(
    registry: Registry, viewer, eager, django_capture_on_commit_callbacks
):
    registry.publish(NAME, "1.0.0", {"a.js": "one\n"})
    registry.publish(NAME, "1.5.0", {"a.js": "one and a half\n"})
    stage = registry.stage(NAME, "2.0.0", {"a.js": "two\n"})
    compare = reverse("reviews:stage-compare", args=[stage.stage_id])

    before = page(viewer, stage, against="1.0.0")
    assert "Not compared with 1.0.0 yet." in before
    with django_capture_on_commit_callbacks(execute=True) as queued:
        response = viewer.post(compare, {"against": "1.0.0"})

    assert response.status_code == 303
    assert response["Location"].endswith("?against=1.0.0")
    assert len(queued) == 1
    body = page(viewer, stage, against="1.0.0")
    assert "Compared with 1.0.0, the version you chose." in body
    assert f'href="{reverse("reviews:stage", args=[stage.stage_id])}"' in body  # the way back
    middle = file_page(viewer, stage, "a.js", HTMX_DIFF, against="1.0.0").content.decode()
    assert "one" in middle
    assert "half" not in middle
    assert stage.review_baseline.version == "1.5.0"  # the default stays

    with django_capture_on_commit_callbacks(execute=True) as queued:
        viewer.post(compare, {"against": "1.0.0"})
    assert queued == []  # done already: nothing queued again
    assert viewer.post(compare, {"against": "9.9.9"}).status_code == 404
    assert "9.9.9 is not a published version" in page(viewer, stage, against="9.9.9")


def test_a_baseline_that_does_not_match_its_packument_is_not_used(registry: Registry, viewer):
    registry.publish(NAME, "1.0.0")
    with Store(registry.live.data_dir).write() as state:
        state.packages[NAME].versions["1.0.0"]["dist"]["shasum"] = "0" * 40

    stage = registry.stage(NAME, "1.1.0")

    chosen = stage.review_baseline
    assert chosen.analysis is None
    assert "The baseline 1.0.0 could not be used: SHA-1 is" in chosen.problem
    published = PublishedTarball.objects.get(version="1.0.0")
    assert published.verdict == StagedVersion.Integrity.MISMATCH
    body = page(viewer, stage)
    assert 'class="integrity integrity-mismatch" role="alert">The baseline 1.0.0 could' in body


def test_the_download_task_queues_the_analysis_and_it_retries_a_flaky_registry(
    registry: Registry, eager, no_read_backoff
):
    registry.publish(NAME, "1.0.0")
    stage = registry.stage(NAME, "1.1.0", analyse=False)
    StagedVersion.objects.filter(pk=stage.pk).update(
        integrity=StagedVersion.Integrity.PENDING, tarball=None
    )
    registry.live.set_faults(
        [{"method": "GET", "path": "(?i)^/@acme%2fkit$", "status": 503, "times": 2}]
    )

    assert download_stage_tarball_task.delay(stage.pk).get() == StagedVersion.Integrity.VERIFIED

    stage.refresh_from_db()
    assert analysis_of(stage).status == Analysis.Status.DONE
    assert stage.review_baseline.version == "1.0.0"
    # a redelivered task finds the work done
    assert analyse_stage_task.delay(stage.pk).get() == review_analysis.SKIPPED
    assert review_analysis.stages_needing_analysis() == []


def test_a_comparison_gives_up_on_a_registry_that_stays_down(
    registry: Registry, viewer, eager, no_read_backoff
):
    registry.publish(NAME, "1.0.0")
    registry.publish(NAME, "1.1.0")
    stage = registry.stage(NAME, "1.2.0")
    PublishedTarball.objects.create(package_name=NAME, version="1.0.0")
    registry.live.set_faults([{"method": "GET", "path": "(?i)^/@acme%2fkit$", "status": 502}])

    assert analyse_stage_task.delay(stage.pk, "1.0.0").get() == review_analysis.NO_BASELINE

    assert "the registry did not answer" in PublishedTarball.objects.get(version="1.0.0").reason
    assert "1.0.0 could not be used: the registry did not answer" in page(
        viewer, stage, against="1.0.0"
    )


def test_two_workers_never_analyse_the_same_pair(registry: Registry):
    stage = registry.stage(NAME, "1.0.0", analyse=False)
    staged = stage.tarball
    assert staged is not None
    found = review_analysis.analysis_for(None, staged)

    claim = review_analysis.claim_analysis(found.pk)
    assert claim is not None
    assert review_analysis.claim_analysis(found.pk) is None  # the other worker
    assert review_analysis.run_analysis(found.pk) == review_analysis.SKIPPED
    assert review_analysis.analysis_for(None, staged) == found


def test_the_command_analyses_one_stage_or_all_pending(registry: Registry):
    registry.publish(NAME, "1.0.0")
    first = registry.stage(NAME, "1.1.0", {"x.js": noise(100).decode()}, analyse=False)
    registry.stage("@acme/other", "0.1.0", analyse=False)

    out = StringIO()
    call_command("analyse_stage", str(first.stage_id), stdout=out)
    assert out.getvalue().startswith(f"{NAME}@1.1.0: 2 files: 1 added, 0 removed, 1 modified")

    out = StringIO()
    call_command("analyse_stage", "--all-pending", stdout=out)
    assert out.getvalue().startswith("@acme/other@0.1.0: 1 files: 1 added")
    assert review_analysis.stages_needing_analysis() == []

    with pytest.raises(CommandError, match="give a stage id or --all-pending"):
        call_command("analyse_stage")
    out = StringIO()
    with pytest.raises(CommandError, match="1 of 1 stages could not be analysed"):
        call_command("analyse_stage", str(first.stage_id), "--against", "7.0.0", stdout=out)
    assert "'7.0.0' is not a published version" in out.getvalue()


def test_the_sync_task_queues_analyses_that_never_ran(
    registry: Registry, eager, django_capture_on_commit_callbacks
):
    stage = registry.stage(NAME, "1.0.0", analyse=False)

    sync_stages_task = app.tasks["reviews.tasks.sync_stages_task"]
    with django_capture_on_commit_callbacks() as callbacks:  # captured, not run
        sync_stages_task.delay()

    # delay_on_commit: the analysis is sent once the pass's transaction commits.
    queued = [c.args for c in callbacks if getattr(c, "func", None) == analyse_stage_task.delay]
    assert queued == [(stage.pk,)]
