"""File-view figures on a real pair (next): what a reviewer waits for when opening a file.

Runs the review's own code (`reviews.review.analysis.file_diff`, the blobs, the cache, the
renderer) with Django configured on a temporary tarball folder and an in-memory cache, on
unsaved model instances (no database): the analysis stores the changed files' blobs, then each
changed text file is opened once (uncached: blob read, diff, highlight, render) and again
(cached: the pickled diff, render). One file is also opened the old way, from the tarball, as
an analysis made before blobs would.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

NAMED = "dist/compiled/react-dom/cjs/react-dom-client.production.js"


def _setup(folder: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    os.environ["GREENROOM_TARBALL_DIR"] = folder
    os.environ.setdefault("DEBUG", "1")  # local settings; no database or request is involved
    import django
    from django.conf import settings

    django.setup()
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


def print_view_figures(old_path: Path, new_path: Path, *, runs: int, files: int = 300) -> None:
    with tempfile.TemporaryDirectory() as folder:
        _setup(folder)
        _figures(old_path, new_path, runs=runs, files=files, folder=Path(folder))


def _figures(old_path: Path, new_path: Path, *, runs: int, files: int, folder: Path) -> None:
    from django.core.files.base import ContentFile
    from django.core.files.storage import storages

    from reviews.inspect.changes import ChangeStatus, analyse_tarballs
    from reviews.inspect.render import render_unified
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
    for row in sample:
        for into in (first, cached):
            started = time.perf_counter()
            render_unified(review.file_diff(analysis, row, options), row.path)
            into[row.path] = time.perf_counter() - started
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
        render_unified(review.file_diff(analysis, named, options), named.path)
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
