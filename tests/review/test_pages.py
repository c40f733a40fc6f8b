"""The review on the stage page, through the Django views: summary, package.json, tree, one
file's diff in every layout, context, download, caching and the query budget.

These build the stage's tarballs in memory and run the real analysis (no registry involved);
tests/review/test_registry_flow.py goes through a live dev registry."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import reverse

from reviews.inspect.diffing import diff_file
from reviews.models import Analysis, FileChangeRow, StageBaseline, StagedVersion
from reviews.review import analysis as review_analysis
from reviews.review import views as review_views
from reviews.tasks import analyse_stage_task
from tests.personas import World
from tests.review.support import make_stage, reviewed, stored
from tests.support.packages import build_tarball

pytestmark = pytest.mark.django_db

HTMX_DIFF = {"HX-Request": "true", "HX-Target": "diff"}
MIDDLE = "".join(f"line {n}\n" for n in range(1, 41))
CHANGED_MIDDLE = MIDDLE.replace("line 20\n", "line twenty\n")


def page(client: Client, stage: StagedVersion, **query: str) -> str:
    response = client.get(reverse("reviews:stage", args=[stage.stage_id]), query)
    assert response.status_code == 200
    return response.content.decode()


def file_page(client: Client, stage: StagedVersion, path: str, headers=None, **query: str):
    return client.get(file_url(stage, path), query, headers=headers or {})


def file_url(stage: StagedVersion, path: str) -> str:
    return reverse("reviews:stage-file", args=[stage.stage_id, "-"])[:-1] + quote(path)


@pytest.fixture
def stage(world: World) -> StagedVersion:
    """@acme/ui 2.0.0 against 1.0.0: one file of each kind a review meets."""
    old = build_tarball(
        "@acme/ui",
        "1.0.0",
        {
            "lib/middle.js": MIDDLE,
            "lib/same.js": "const same = 1;\n",
            "old-name.js": "module.exports = 'moved';\n",
            "gone.txt": "bye\n",
            "logo.png": b"\x89PNG\r\n\x1a\n\x00\x00old",
        },
        {"dependencies": {"left-pad": "^1.0.0", "old-dep": "1.0.0"}},
    )
    new = build_tarball(
        "@acme/ui",
        "2.0.0",
        {
            "lib/middle.js": CHANGED_MIDDLE,
            "lib/same.js": "const same = 1;\n",
            "new-name.js": "module.exports = 'moved';\n",
            "added.js": "export const x = 1;\n",
            "logo.png": b"\x89PNG\r\n\x1a\n\x00\x00new!",
            "trojan.js": (
                "const access = 'user\u202e \u2066// admin\u2069 \u2066';\nlet a\u200bb = 1;\n"
            ),
            "empty.js": "",
        },
        {
            "scripts": {"postinstall": "node install.js", "test": "jest"},
            "dependencies": {"left-pad": "^2.0.0", "new-dep": "~1.2.0"},
            "bin": {"acme": "cli.js"},
            "main": "index.js",
            "engines": {"node": ">=20"},
            "os": ["linux"],
        },
    )
    reviewed(world.acme_stage, new, old)
    return world.acme_stage


def test_the_page_starts_with_the_baseline_and_the_counts_integrity_details_after(viewer, stage):
    body = page(viewer, stage)

    baseline = body.index("Compared with 1.0.0, the highest published version below 2.0.0.")
    counts = body.index('id="review-counts"')
    integrity = body.index("Integrity: Verified")
    manifest = body.index('id="manifest"')
    files = body.index('id="files"')
    # The decision and the integrity verdict are at the top; the integrity details below.
    assert body.index('id="stage-top"') < baseline
    assert baseline < counts < manifest < files < integrity
    assert "Baseline verified" in body
    counts_html = body[counts : body.index("</ul>", counts)]
    for count, status in ((3, "added"), (1, "removed"), (3, "modified"), (1, "renamed")):
        assert f"<strong>{count}</strong> {status}" in counts_html
    assert "<strong>1</strong> unchanged" in counts_html
    assert "1 binary file changed" in counts_html
    assert "Download the staged tarball" in body


def test_the_package_json_diff_puts_install_hooks_first(viewer, stage):
    body = page(viewer, stage)
    manifest = body[body.index('id="manifest"') : body.index('id="files"')]

    hooks = manifest.index("Install-time scripts")
    assert hooks < manifest.index("Other scripts") < manifest.index("Dependencies")
    assert manifest.index("Dependencies") < manifest.index(">bin<") < manifest.index("Entry points")
    assert manifest.index("Entry points") < manifest.index("engines") < manifest.index("os / cpu")
    assert "node install.js" in manifest
    assert "^1.0.0" in manifest
    assert "^2.0.0" in manifest
    assert "new-dep" in manifest
    assert "old-dep" in manifest


def test_the_tree_shows_changed_files_by_default(viewer, stage):
    body = page(viewer, stage)
    tree = body[body.index('<div id="tree">') : body.index('id="diff"')]

    assert 'data-path="lib/middle.js"' in tree
    assert 'data-path="gone.txt"' in tree  # removed files are listed too
    assert 'data-path="lib/same.js"' not in tree
    assert 'title="renamed from old-name.js"' in tree
    assert "<details open><summary>" in tree  # folders fold without JavaScript
    assert 'id="tree-changed" name="changed" value="1" checked' in body

    everything = page(viewer, stage, changed="0")
    assert 'data-path="lib/same.js"' in everything


def test_the_filter_narrows_the_tree_and_htmx_gets_only_the_tree(viewer, stage):
    response = viewer.get(
        reverse("reviews:stage", args=[stage.stage_id]),
        {"q": "MIDDLE", "changed": ["0", "1"]},
        headers={"HX-Request": "true", "HX-Target": "tree"},
    )

    body = response.content.decode()
    assert 'data-path="lib/middle.js"' in body
    assert 'data-path="added.js"' not in body
    assert "<h1>" not in body  # a fragment, not the page
    assert "HX-Request" in response["Vary"]


def test_a_file_link_loads_the_diff_into_the_page_and_names_the_file(viewer, stage):
    body = page(viewer, stage)
    url = file_url(stage, "lib/middle.js")
    assert f'href="{url}" hx-get="{url}" hx-target="#diff" hx-push-url="true"' in body

    fragment = file_page(viewer, stage, "lib/middle.js", HTMX_DIFF)
    html = fragment.content.decode()
    assert "<h1>" not in html
    assert "gr-removed" in html
    assert "gr-added" in html
    assert "twenty" in html
    assert 'data-line="20"' in html  # line numbers
    assert '<span class="' in html  # highlighted
    assert "HX-Request" in fragment["Vary"]

    shared = file_page(viewer, stage, "lib/middle.js").content.decode()  # no JavaScript
    assert "<h1>" in shared
    assert "twenty" in shared
    assert 'aria-current="page">middle.js</a>' in shared


def test_an_htmx_request_for_the_diff_builds_the_pane_alone(viewer, stage, monkeypatch):
    def not_drawn(*args: object, **kwargs: object) -> None:
        pytest.fail("built for a request that shows only the file")

    for part in ("_fill_tree", "_fill_risk", "manifest_groups"):
        monkeypatch.setattr(review_views, part, not_drawn)

    fragment = file_page(viewer, stage, "lib/middle.js", HTMX_DIFF)

    assert fragment.status_code == 200
    assert "twenty" in fragment.content.decode()


def test_side_by_side_and_file_view_are_real_links(viewer, stage):
    unified = file_page(viewer, stage, "lib/middle.js", HTMX_DIFF).content.decode()
    split_url = f"{file_url(stage, 'lib/middle.js')}?layout=split"
    assert f'href="{split_url}"' in unified

    split = file_page(viewer, stage, "lib/middle.js", HTMX_DIFF, layout="split")
    assert "gr-side-by-side" in split.content.decode()
    # the choice is remembered for the next file
    assert "gr-side-by-side" in file_page(viewer, stage, "added.js", HTMX_DIFF).content.decode()

    view = file_page(viewer, stage, "lib/same.js", layout="file").content.decode()
    assert 'class="gr-file gr-kind-text" data-lexer="javascript"' in view
    assert '<span class="kd">const</span>' in view


def test_long_lines_scroll_or_wrap_as_chosen_and_the_choice_is_remembered(viewer, stage):
    first = file_page(viewer, stage, "lib/middle.js", HTMX_DIFF).content.decode()
    assert 'class="file-pane gr-wrap-scroll"' in first  # the default: no wrap, scroll sideways
    assert f'href="{file_url(stage, "lib/middle.js")}?wrap=soft"' in first

    soft = file_page(viewer, stage, "lib/middle.js", HTMX_DIFF, wrap="soft").content.decode()
    assert 'class="file-pane gr-wrap-soft"' in soft
    later = file_page(viewer, stage, "added.js", HTMX_DIFF).content.decode()
    assert 'class="file-pane gr-wrap-soft"' in later
    ignored = file_page(viewer, stage, "added.js", HTMX_DIFF, wrap="<b>").content.decode()
    assert 'class="file-pane gr-wrap-soft"' in ignored  # an unknown choice changes nothing


def test_added_removed_renamed_binary_and_empty_files(viewer, stage):
    def diff(path):
        return file_page(viewer, stage, path, HTMX_DIFF, layout="unified").content.decode()

    added = diff("added.js")
    assert "gr-kind-text" in added
    assert "@@ -0,0 +1,1 @@" in added
    removed = diff("gone.txt")
    assert "@@ -1,1 +0,0 @@" in removed
    assert "bye" in removed
    renamed = diff("new-name.js")
    assert "old-name.js → new-name.js" in renamed
    assert "The contents are identical." in renamed
    binary = diff("logo.png")
    assert "Binary, sizes and digests differ" in binary
    assert "gr-sides" in binary  # sizes and digests side by side
    assert "The file is empty." in diff("empty.js")


def test_bidi_and_zero_width_characters_are_shown(viewer, stage):
    html = file_page(viewer, stage, "trojan.js", HTMX_DIFF).content.decode()

    assert "[U+202E]" in html
    assert "[U+2066]" in html
    assert "[U+200B]" in html
    assert "\u202e" not in html
    assert "\u200b" not in html
    assert "trojan source" in html


def test_context_expands_from_the_diff(viewer, stage):
    html = file_page(viewer, stage, "lib/middle.js", HTMX_DIFF).content.decode()
    context = reverse("reviews:stage-file-context", args=[stage.stage_id, "lib/middle.js"])
    assert f'hx-get="{context}?gap=0&amp;layout=unified"' in html

    rows = viewer.get(context, {"gap": "0", "layout": "unified"}).content.decode()
    assert rows.count("<tr") == 16  # lines 1-16 above the hunk's three lines of context
    assert 'data-line="1"' in rows
    assert 'data-line="16"' in rows
    assert 'data-line="17"' not in rows

    split = viewer.get(context, {"gap": "1", "layout": "split"}).content.decode()
    assert split.count("<tr") == 17  # lines 24-40 below it, both sides
    assert viewer.get(context, {"gap": "7"}).status_code == 404


def test_a_path_not_in_the_review_is_404(viewer, stage):
    assert file_page(viewer, stage, "nope.js").status_code == 404


def test_odd_file_names_round_trip_through_their_links(viewer, world):
    names = ["a b#c?.js", "100%.js", "ünïcode/名前.js", "line\nbreak.js"]
    stage = world.acme_stage
    reviewed(stage, build_tarball("@acme/ui", "2.0.0", dict.fromkeys(names, "x\n")))

    body = page(viewer, stage)
    for name in names:
        assert f'href="{file_url(stage, name)}"' in body.replace("&amp;", "&")
        response = file_page(viewer, stage, name, HTMX_DIFF)
        assert response.status_code == 200, name


def test_the_staged_tarball_downloads_as_an_attachment(viewer, stage):
    response = viewer.get(reverse("reviews:stage-tarball", args=[stage.stage_id]))

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="acme-ui-2.0.0.tgz"'
    assert response["Content-Type"] == "application/gzip"
    data = b"".join(response.streaming_content)
    assert len(data) == stage.tarball.size


def test_a_stage_without_tarball_has_nothing_to_download(viewer, world):
    response = viewer.get(reverse("reviews:stage-tarball", args=[world.acme_stage.stage_id]))
    assert response.status_code == 404
    assert "has not been downloaded yet" in page(viewer, world.acme_stage)


def test_a_file_is_diffed_once_and_two_stages_with_the_same_pair_share_it(
    viewer, stage, world, monkeypatch
):
    calls = []

    def counting(*args, **kwargs):
        calls.append(args[2])
        return diff_file(*args, **kwargs)

    monkeypatch.setattr("reviews.review.analysis.diff_file", counting)
    twin = make_stage("@acme/ui", "2.0.0-twin")
    twin.tarball = stage.tarball
    twin.save()
    shared = stage.review_baseline.analysis
    StageBaseline.objects.create(
        stage=twin, staged_tarball=stage.tarball, version="1.0.0", rule="below", analysis=shared
    )

    for _ in range(2):
        assert file_page(viewer, stage, "lib/middle.js", HTMX_DIFF).status_code == 200
    assert file_page(viewer, twin, "lib/middle.js", HTMX_DIFF).status_code == 200

    assert calls == ["lib/middle.js"]
    assert review_analysis.analysis_for(shared.baseline, shared.staged) == shared


def test_a_big_analysis_renders_with_a_constant_number_of_queries(
    viewer, world, django_assert_max_num_queries
):
    stage = world.acme_stage
    stage.tarball = stored(build_tarball("@acme/ui", "2.0.0"))
    stage.save()
    big = Analysis.objects.create(
        staged=stage.tarball, status=Analysis.Status.DONE, file_count=5000
    )
    FileChangeRow.objects.bulk_create(
        FileChangeRow(
            analysis=big,
            ordinal=n,
            path=f"dist/chunk-{n // 100}/file-{n:05}.js",
            status="added" if n % 2 else "unchanged",
            size=1000 + n,
            sha256=f"{n:064x}",
            line_count=10,
            lines_added=10 if n % 2 else None,
        )
        for n in range(5000)
    )
    StageBaseline.objects.create(
        stage=stage, staged_tarball=stage.tarball, rule="none", analysis=big
    )

    # The review takes 13 (one for the re-check schedule); the team review part (policy,
    # reviews, threads, who may approve) a fixed 15 more, whatever the number of files.
    with django_assert_max_num_queries(28):
        body = page(viewer, stage, changed="0")

    # Bounded by queries, not seconds: a fixed number, whatever the number of files.
    assert body.count('class="gr-file ') == 5000


def test_a_stage_nobody_queued_says_so_and_offers_to_queue_it(
    viewer, world, django_capture_on_commit_callbacks
):
    stage = world.acme_stage
    stage.tarball = stored(build_tarball("@acme/ui", "2.0.0", {"a.js": "a\n"}))
    stage.save()
    body = page(viewer, stage)
    assert "Not analysed yet" in body
    assert 'id="review-pending"' not in body  # no claim that work is under way

    with django_capture_on_commit_callbacks(execute=False) as queued:
        answer = viewer.post(reverse("reviews:stage-analyse", args=[stage.stage_id]))
    assert answer.status_code == 303
    assert [(c.func, c.args) for c in queued] == [(analyse_stage_task.delay, (stage.pk,))]
    body = page(viewer, stage)
    assert "Queued for analysis" in body
    assert "Not analysed yet" not in body

    with django_capture_on_commit_callbacks(execute=False) as again:
        viewer.post(reverse("reviews:stage-analyse", args=[stage.stage_id]))
    assert again == []  # a double click queues it once


def test_a_pending_analysis_polls_and_refreshes_when_done(viewer, world):
    stage = world.acme_stage
    stage.tarball = stored(build_tarball("@acme/ui", "2.0.0", {"a.js": "a\n"}))
    stage.save()
    review_analysis.mark_queued([stage.pk])
    body = page(viewer, stage)
    assert 'id="review-pending"' in body
    assert 'hx-trigger="every 2s"' in body

    poll = {"HX-Request": "true", "HX-Target": "review-pending"}
    url = reverse("reviews:stage", args=[stage.stage_id])
    assert 'id="review-pending"' in viewer.get(url, headers=poll).content.decode()

    reviewed(
        stage, stage.tarball.storage_name and build_tarball("@acme/ui", "2.0.0", {"a.js": "a\n"})
    )
    done = viewer.get(url, headers=poll)
    assert done["HX-Refresh"] == "true"
    assert "First release: nothing is published yet" in page(viewer, stage)


def test_a_first_release_lists_every_file_as_added(viewer, world):
    stage = world.acme_stage
    found = reviewed(stage, build_tarball("@acme/ui", "2.0.0", {"a.js": "a\n", "b/c.js": "c\n"}))

    assert found.files_added == 3
    assert found.files_modified == 0
    body = page(viewer, stage)
    assert "First release: nothing is published yet, so every file is new." in body
    assert body.count("gr-badge-added") == 3
    manifest = body[body.index('id="manifest"') : body.index('id="files"')]
    assert "Entry points" not in manifest  # a bare manifest: nothing to flag


def test_the_counts_and_the_tree_count_the_same_changed_files(viewer, stage):
    body = page(viewer, stage)

    counts = body[
        body.index('id="review-counts"') : body.index("</ul>", body.index("review-counts"))
    ]
    tree = body[body.index('class="tree-summary') : body.index("</p>", body.index("tree-summary"))]
    assert "<strong>8</strong> changed files" in counts  # 3 added, 1 removed, 3 modified, 1 renamed
    assert "8 changed files." in tree
    summary = body[body.index('id="tarball-summary"') :]
    assert "the 1 removed file is only in the baseline" in summary
