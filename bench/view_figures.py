"""File-view and stage-page figures on a real pair (next): what a reviewer waits for.

Django is configured on a temporary folder (tarballs, blobs, an SQLite database) and an
in-memory cache large enough to hold every entry (the default one evicts a third of itself past
300 entries, which would turn "cached" views into first ones). Two parts:

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
    from reviews.models import Analysis, Tarball
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
    first: dict[str, float] = {}
    cached: dict[str, float] = {}
    del package  # a web worker holds no analysis: its objects would only slow the collector
    gc.collect()
    for row in sample:
        for into in (first, cached):
            started = time.perf_counter()
            fill(review.file_table(analysis, row, options, "unified", {}))
            into[row.path] = time.perf_counter() - started
    print("the file's part alone (blobs, diff, marks, table; no request):")
    _report("first view (uncached)", first)
    _report("from the cache", cached)
    if NAMED in first:
        print(
            f"  {NAMED}: first {first[NAMED] * 1000:.0f} ms, cached {cached[NAMED] * 1000:.1f} ms"
        )
        named = next(row for row in sample if row.path == NAMED)
        for digest in (named.sha256, named.old_sha256):
            storage.delete(f"blobs/sha256/{digest[:2]}/{digest}.zst")
        from django.core.cache import cache

        cache.clear()
        started = time.perf_counter()
        fill(review.file_table(analysis, named, options, "unified", {}))
        print(
            f"  the same without blobs (an analysis made before them: the tarballs are read): "
            f"{(time.perf_counter() - started) * 1000:.0f} ms"
        )


def _report(what: str, timings: dict[str, float]) -> None:
    values = sorted(timings.values())
    slowest = max(timings, key=lambda path: timings[path])
    p95 = values[int(len(values) * 0.95) - 1] if len(values) > 20 else values[-1]
    print(
        f"{what}, {len(values)} changed text files of next: median "
        f"{statistics.median(values) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, slowest "
        f"{values[-1] * 1000:.0f} ms ({slowest})"
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
        f"{FileChangeRow.objects.filter(analysis=analysis).count():,} rows)"
    )
    client = Client()
    client.force_login(approver)
    page = reverse("reviews:stage", args=[stage.stage_id])
    client.get(page)  # warm: templates, the session
    wall, cpu = _timed_requests(client, [page] * max(runs, 5))
    print(
        f"stage page of next, median of {len(wall)}: {_ms(wall)} ms wall, {_ms(cpu)} ms CPU "
        f"(slowest {max(wall) * 1000:.0f} ms)"
    )

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
    first: dict[str, float] = {}
    cached: dict[str, float] = {}
    first_cpu: dict[str, float] = {}
    cached_cpu: dict[str, float] = {}
    for path, url in urls.items():
        for wall_into, cpu_into in ((first, first_cpu), (cached, cached_cpu)):
            (wall_into[path],), (cpu_into[path],) = _timed_requests(client, [url], diff=True)
    print("a file's diff as the page loads it (htmx):")
    _report("first view (uncached), wall", first)
    _report("first view (uncached), CPU", first_cpu)
    _report("from the cache, wall", cached)
    _report("from the cache, CPU", cached_cpu)
    if NAMED in first:
        print(
            f"  {NAMED}: first {first[NAMED] * 1000:.0f} ms "
            f"({first_cpu[NAMED] * 1000:.0f} ms CPU), cached {cached[NAMED] * 1000:.1f} ms "
            f"({cached_cpu[NAMED] * 1000:.1f} ms CPU)"
        )


def _timed_requests(
    client: Client, urls: list[str], *, diff: bool = False
) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of each GET (an htmx request for the diff pane when `diff`)."""
    headers = {"HX-Request": "true", "HX-Target": "diff"} if diff else {}
    walls, cpus = [], []
    for url in urls:
        cpu, wall = time.process_time(), time.perf_counter()
        response = client.get(url, headers=headers)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        assert response.status_code == 200, (url, response.status_code)
    return walls, cpus


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f}"
