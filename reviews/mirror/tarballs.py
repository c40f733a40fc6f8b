"""Verify a downloaded tarball against its stage, and store its bytes content-addressed.

A tarball is attacker-controlled input: its manifest is read with `reviews.inspect.archive` (one
bounded streaming pass, nothing extracted), the way npm would install it (first folder
stripped, the last copy of a path wins), and only the tarball's own bytes are ever written,
through Django's storage API.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any, BinaryIO, cast

from django.core.files import File
from django.core.files.storage import storages
from django.db import IntegrityError, transaction

from reviews.inspect.archive import (
    DEFAULT_LIMITS,
    Limits,
    RefusalReason,
    TarballSource,
    read_archive,
)
from reviews.inspect.manifest import MAX_MANIFEST_BYTES, oversized_problem, parse_manifest
from reviews.inspect.storable import storable_text
from reviews.mirror.registry import DownloadedTarball
from reviews.models import StagedVersion, Tarball

logger = logging.getLogger(__name__)

MANIFEST = "package.json"  # as npm installs it: package/package.json with `package/` stripped
# Refusals that say the tarball is beyond what we agree to read, not that it is broken.
TOO_BIG = {RefusalReason.TOTAL_SIZE, RefusalReason.ENTRIES}

Integrity = StagedVersion.Integrity


class UnreadableTarball(Exception):
    """No manifest could be read from the tarball; `too_big` if only our limits stood in the way."""

    def __init__(self, message: str, *, too_big: bool = False) -> None:
        super().__init__(message)
        self.too_big = too_big


@dataclass(frozen=True)
class Verdict:
    integrity: Integrity
    reason: str
    """Stored on the stage and in the audit trail; may quote the tarball, so made storable."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", storable_text(self.reason))

    @property
    def verified(self) -> bool:
        return self.integrity == Integrity.VERIFIED


def read_manifest(source: TarballSource, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """The tarball's `package.json`, parsed; `UnreadableTarball` if there is none to trust."""
    limits = replace(
        limits,
        max_entry_bytes=min(limits.max_entry_bytes, MAX_MANIFEST_BYTES),
        max_kept_bytes=MAX_MANIFEST_BYTES,
    )
    result = read_archive(source, limits, keep_contents={MANIFEST})
    if result.refusal is not None:
        raise UnreadableTarball(result.refusal.message, too_big=result.refusal.reason in TOO_BIG)
    data = result.contents.get(MANIFEST)
    entry = result.files.get(MANIFEST)
    if data is None and entry is not None and entry.oversized:
        raise UnreadableTarball(oversized_problem(f"its {MANIFEST}", entry.size))
    if data is None:
        raise UnreadableTarball(f"it has no {MANIFEST}.")
    parsed = parse_manifest(data, f"its {MANIFEST}")
    if not parsed.readable:
        raise UnreadableTarball(parsed.problem)
    return parsed.document


def check_tarball(tarball: DownloadedTarball, *, name: str, version: str, shasum: str) -> Verdict:
    """Whether the tarball is what the stage says: its SHA-1, and its manifest's name and
    version. The reason says what differs, or what was checked."""
    if tarball.sha1 != shasum.lower():
        return Verdict(Integrity.MISMATCH, f"SHA-1 is {tarball.sha1}, the stage says {shasum}")
    try:
        manifest = read_manifest(tarball.open())
    except UnreadableTarball as e:
        if e.too_big:
            return Verdict(Integrity.UNAVAILABLE, f"tarball too big to check: {e}")
        return Verdict(Integrity.MISMATCH, f"tarball unreadable: {e}")
    except Exception as e:
        # A bug of ours on hostile bytes must end as a verdict, not as a download that fails
        # again at every lease and leaves the stage "not checked yet" forever.
        logger.exception("checking the tarball of %s@%s failed", name, version)
        return Verdict(
            Integrity.UNAVAILABLE, f"the tarball could not be checked ({type(e).__name__})"
        )
    found_name, found_version = manifest.get("name"), manifest.get("version")
    if found_name != name:
        return Verdict(
            Integrity.MISMATCH, f"{MANIFEST} names {_shown(found_name)}, the stage {name!r}"
        )
    if found_version != version:
        return Verdict(
            Integrity.MISMATCH,
            f"{MANIFEST} has version {_shown(found_version)}, the stage {version!r}",
        )
    return Verdict(Integrity.VERIFIED, f"SHA-1 {tarball.sha1} and {MANIFEST} match the stage")


def _shown(value: object) -> str:
    return repr(value)[:100]


def storage_name(sha256: str) -> str:
    return f"sha256/{sha256[:2]}/{sha256}.tgz"


def open_stored(tarball: Tarball) -> BinaryIO:
    """The stored bytes, to read once from start to end. From object storage this is the
    object's body as it arrives, where the storage's own `open()` would first copy the whole
    object to a local temporary file."""
    file = storages["tarballs"].open(tarball.storage_name, "rb")
    remote = getattr(file, "obj", None)  # django-storages' S3File: the boto3 Object
    if remote is None:
        return cast(BinaryIO, file)
    return cast(BinaryIO, remote.get()["Body"])


def store_tarball(tarball: DownloadedTarball) -> Tarball:
    """The `Tarball` row for these bytes, saving them first if no one has yet.

    Safe to race: two workers saving the same bytes end with one file and one row.
    """
    existing = Tarball.objects.filter(sha256=tarball.sha256).first()
    storage = storages["tarballs"]
    name = storage_name(tarball.sha256)
    if existing is not None and storage.exists(existing.storage_name):
        return existing
    if not storage.exists(name):
        saved_as = storage.save(name, File(tarball.open(), name=name))
        if saved_as != name:
            # Another worker saved the same bytes between our check and our save; the storage
            # picked a new name for ours. Same content (same SHA-256): keep theirs.
            storage.delete(saved_as)
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return Tarball.objects.create(
                sha256=tarball.sha256,
                sha1=tarball.sha1,
                integrity=tarball.integrity,
                size=tarball.size,
                storage_name=name,
            )
    except IntegrityError:
        return Tarball.objects.get(sha256=tarball.sha256)
