"""File-view and stage-page figures on a real pair (next): what a reviewer waits for.

Django is configured on a temporary folder (tarballs, blobs, an SQLite database) and an
in-memory cache large enough to hold every entry (the default one evicts a third of itself past
300 entries, which would turn "cached" views into first ones), and started as a web worker is
(`portal.wsgi`: what it loaded frozen, out of the collector's full passes). Two parts:

- the file's part alone, on unsaved model instances: the analysis stores the changed files'
  blobs, then each changed text file is opened once (uncached: blob read, diff, highlight, word
  marks, table) and again (cached: the table read back), both filled as a page does
  (`analysis.file_table`, `render.fill`). One file is also opened from the tarball, as an
  analysis made before blobs would.
- the pages, server time through Django's test client (middleware, session, queries,
  templates, no network): the pair analysed and saved as a worker does, then the stage page as
  an approver of the package, and the same files' diffs as the page loads them (htmx, target
  `diff`), first with an empty cache then again.
"""

from __future__ import annotations

import gc
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.test import Client

NAMED = "dist/compiled/react-dom/cjs/react-dom-client.production.js"


def _setup(folder: str) -> None:
    (Path(folder) / "staticfiles").mkdir()  # WhiteNoise warns when it is missing
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ["GREENROOM_VAR_DIR"] = folder
    os.environ["GREENROOM_TARBALL_DIR"] = folder
    os.environ["DATABASE_URL"] = f"sqlite:///{folder}/bench.sqlite3"
    os.environ.setdefault("DEBUG", "1")  # local settings: no secrets needed
    import django
    from django.conf import settings
    from django.core.management import call_command

    django.setup()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "OPTIONS": {"MAX_ENTRIES": 1_000_000},
        }
    }
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    call_command("migrate", verbosity=0, interactive=False)
    settings.DEBUG = False  # as served: no query log
    import portal.wsgi  # noqa: F401 (a web worker's start: what it loaded is frozen)


def print_view_figures(old_path: Path, new_path: Path, *, runs: int, files: int = 300) -> None:
    with tempfile.TemporaryDirectory() as folder:
        _setup(folder)
        _figures(old_path, new_path, runs=runs, files=files, folder=Path(folder))
        _page_figures(old_path, new_path, runs=runs, files=files)


def _figures(old_path: Path, new_path: Path, *, runs: int, files: int, folder: Path) -> None:
    from django.core.files.base import ContentFile
    from django.core.files.storage import storages

    from reviews.inspect.changes import ChangeStatus, analyse_tarballs
    from reviews.inspect.render import fill
    from reviews.mirror.blobs import BlobWriter
    from reviews.models import Analysis, FileChangeRow, Tarball
    from reviews.review import analysis as review

    old, new = old_path.read_bytes(), new_path.read_bytes()
    storage = storages["tarballs"]
    tarballs = []
    for name, data in (("old.tgz", old), ("new.tgz", new)):
        storage.save(name, ContentFile(data, name=name))
        tarballs.append(Tarball(storage_name=name, size=len(data)))
    plain: list[float] = []
    with_blobs: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        analyse_tarballs(old, new, keep_paths=["package.json"])
        plain.append(time.perf_counter() - started)
        started = time.perf_counter()
        # the blobs exist after the first run: later runs only look
        with BlobWriter() as writer:
            package = analyse_tarballs(old, new, keep_paths=["package.json"], on_changed=writer)
        with_blobs.append(time.perf_counter() - started)
    blob_bytes = sum(f.stat().st_size for f in (folder / "blobs").rglob("*.zst"))
    print(
        f"\nnext, analysis wall median of {runs}: {statistics.median(plain):.2f} s; storing the "
        f"changed files' blobs the first time: +{with_blobs[0] - plain[0]:.2f} s "
        f"({len(list((folder / 'blobs').rglob('*.zst'))):,} blobs, "
        f"{blob_bytes / 2**20:.1f} MiB zstd); when they exist: "
        f"{statistics.median(with_blobs[1:] or with_blobs):.2f} s"
    )

    analysis = Analysis(baseline=tarballs[0], staged=tarballs[1])
    options = review.diff_options()
    texts = [
        review._row(0, ordinal, change)
        for ordinal, change in enumerate(package.changeset.changes)
        if change.status in (ChangeStatus.MODIFIED, ChangeStatus.ADDED, ChangeStatus.REMOVED)
        and not change.is_binary
    ]
    step = max(1, len(texts) // files)
    sample = texts[::step]
    sample += [row for row in texts if row.path == NAMED and row not in sample]
    del package  # a web worker holds no analysis: its objects would only slow the collector
    gc.collect()

    def timed(row: FileChangeRow) -> _Timing:
        cpu, wall = time.process_time(), time.perf_counter()
        fill(review.file_table(analysis, row, options, "unified", {}))
        return _Timing(time.perf_counter() - wall, time.process_time() - cpu, 0.0)

    first = {row.path: [timed(row)] for row in sample}
    cached = {row.path: [timed(row) for _ in range(3)] for row in sample}
    print(f"the file's part alone (blobs, diff, marks, table; no request), {len(sample)} files:")
    _report_requests("first view (uncached)", first)
    _report_requests("from the cache", cached)
    if NAMED in first:
        print(f"  {NAMED}: first {_figure(first[NAMED])}, cached {_figure(cached[NAMED])}")
        named = next(row for row in sample if row.path == NAMED)
        for digest in (named.sha256, named.old_sha256):
            storage.delete(f"blobs/sha256/{digest[:2]}/{digest}.zst")
        from django.core.cache import cache

        cache.clear()
        print(
            f"  the same without blobs (an analysis made before them: the tarballs are read): "
            f"{_figure([timed(named)])}"
        )


def _page_figures(old_path: Path, new_path: Path, *, runs: int, files: int) -> None:
    from django.contrib.auth.models import User
    from django.core.cache import cache
    from django.test import Client
    from django.urls import reverse

    from reviews.models import FileChangeRow, Membership, PackagePattern, Role, Team
    from reviews.review.views import file_url
    from tests.review.support import make_stage, reviewed

    team = Team.objects.create(name="Next", slug="next")
    PackagePattern.objects.create(team=team, pattern="next")
    approver = User.objects.create_user("approver")
    Membership.objects.create(team=team, user=approver, role=Role.APPROVER)
    stage = make_stage("next", "15.1.0")
    started = time.perf_counter()
    analysis = reviewed(
        stage, new_path.read_bytes(), old_path.read_bytes(), baseline_version="15.0.4"
    )
    print(
        f"\nthe pages, server time (Django's test client, SQLite, an approver; the analysis "
        f"saved as a worker does it: {time.perf_counter() - started:.1f} s, "
        f"{FileChangeRow.objects.filter(analysis=analysis).count():,} rows; "
        f"{len(gc.get_objects()):,} objects tracked by the collector)"
    )
    client = Client()
    client.force_login(approver)
    requests = _Requests(client)
    page = reverse("reviews:stage", args=[stage.stage_id])
    requests.get(page)  # warm: templates, the session
    stage_page = [requests.get(page) for _ in range(max(runs, 5))]
    print(f"stage page of next, median of {len(stage_page)}: {_figure(stage_page)}")

    rows = (
        FileChangeRow.objects.filter(analysis=analysis, is_binary=False)
        .filter(status__in=["modified", "added", "removed"])
        .order_by("ordinal")
    )
    paths = [row.path for row in rows]
    step = max(1, len(paths) // files)
    sample = paths[::step] + ([NAMED] if NAMED not in paths[::step] else [])
    urls = {path: file_url(stage, path) for path in sample}
    cache.clear()
    first = {path: [requests.get(url, diff=True)] for path, url in urls.items()}
    # a file's figure is the median of three; the slowest first views are measured again
    cached = {path: [requests.get(url, diff=True) for _ in range(3)] for path, url in urls.items()}
    for path in sorted(first, key=lambda path: -first[path][0].cpu)[:5]:
        for _ in range(2):
            cache.clear()
            first[path].append(requests.get(urls[path], diff=True))
    print(f"a file's diff as the page loads it (htmx), {len(urls)} changed text files:")
    _report_requests("first view (uncached)", first)
    _report_requests("from the cache", cached)
    for name, timings in (("first", first), ("cached", cached)):
        print(f"  {NAMED}, {name}: {_figure(timings[NAMED])}")
    worst = max((one for many in cached.values() for one in many), key=lambda one: one.cpu)
    print(
        f"  the slowest single cached request: {worst.wall * 1000:.0f} ms wall, "
        f"{worst.cpu * 1000:.0f} ms CPU, of which {worst.gc * 1000:.0f} ms of garbage "
        f"collection (wall)"
    )


class _Timing:
    """One request: wall and CPU seconds, and the wall seconds the garbage collector took."""

    def __init__(self, wall: float, cpu: float, gc_seconds: float) -> None:
        self.wall, self.cpu, self.gc = wall, cpu, gc_seconds


class _Requests:
    """GETs through the test client, each timed, the collector's pauses recorded apart (a
    full collection walks the whole heap: its cost is the process's, not the page's)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.collecting = 0.0
        self._started = 0.0
        gc.callbacks.append(self._collector)

    def _collector(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.collecting += time.perf_counter() - self._started

    def get(self, url: str, *, diff: bool = False) -> _Timing:
        """A GET (the htmx request for the diff pane when `diff`)."""
        headers = {"HX-Request": "true", "HX-Target": "diff"} if diff else {}
        self.collecting = 0.0
        cpu, wall = time.process_time(), time.perf_counter()
        response = self.client.get(url, headers=headers)
        timing = _Timing(time.perf_counter() - wall, time.process_time() - cpu, self.collecting)
        assert response.status_code == 200, (url, response.status_code)
        return timing


def _figure(timings: list[_Timing]) -> str:
    wall = statistics.median(t.wall for t in timings)
    cpu = statistics.median(t.cpu for t in timings)
    return f"{wall * 1000:.1f} ms wall, {cpu * 1000:.1f} ms CPU"


def _report_requests(what: str, timings: dict[str, list[_Timing]]) -> None:
    """Per file the median of its requests; then the median, p95 and slowest file, by CPU."""
    cpu = {path: statistics.median(t.cpu for t in many) for path, many in timings.items()}
    wall = {path: statistics.median(t.wall for t in many) for path, many in timings.items()}
    ordered = sorted(cpu, key=lambda path: cpu[path])
    p95 = ordered[int(len(ordered) * 0.95) - 1] if len(ordered) > 20 else ordered[-1]
    median = ordered[len(ordered) // 2]
    slowest = ordered[-1]
    print(
        f"{what}, CPU (wall): median {cpu[median] * 1000:.1f} ms ({wall[median] * 1000:.1f}), "
        f"p95 {cpu[p95] * 1000:.1f} ms ({wall[p95] * 1000:.1f}), slowest "
        f"{cpu[slowest] * 1000:.0f} ms ({wall[slowest] * 1000:.0f}) {slowest}"
    )
