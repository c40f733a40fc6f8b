"""Verify a downloaded tarball against its stage, and store its bytes content-addressed.

A tarball is attacker-controlled input. Reading its manifest streams through the archive once,
bounded in decompressed bytes and member count, reads only `package/package.json` (capped), and
never writes anything but the tarball itself, through Django's storage API.
"""

from __future__ import annotations

import gzip
import io
import json
import posixpath
import tarfile
import zlib
from dataclasses import dataclass
from typing import IO, Any

from django.core.files import File
from django.core.files.storage import storages
from django.db import IntegrityError, transaction

from reviews.models import Tarball
from reviews.registry import DownloadedTarball

MANIFEST_PATH = "package/package.json"
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_UNPACKED_BYTES = 2 * 1024 * 1024 * 1024
MAX_MEMBERS = 200_000


class UnreadableTarball(Exception):
    """The bytes are not a readable npm tarball, or not one within the limits."""


@dataclass(frozen=True)
class Verdict:
    verified: bool
    reason: str


class _BoundedReader:
    """A read-only, forward-only view of a stream that refuses to yield more than `limit`
    bytes: what tarfile's stream mode needs, and a stop to decompression bombs."""

    def __init__(self, stream: gzip.GzipFile, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self._read = 0

    def read(self, size: int = -1, /) -> bytes:
        left = self._limit - self._read
        data = self._stream.read(left + 1 if size < 0 else min(size, left + 1))
        self._read += len(data)
        if self._read > self._limit:
            raise UnreadableTarball(f"unpacks to more than {self._limit} bytes")
        return data

    def tell(self) -> int:
        return self._read

    def write(self, b: bytes, /) -> int:
        raise io.UnsupportedOperation("read-only")

    def seek(self, pos: int, /) -> int:
        raise io.UnsupportedOperation("forward-only")

    def close(self) -> None:
        pass  # the GzipFile beneath is closed by its own with block


def _normalize(member_name: str) -> str:
    # "./package//package.json" lands where "package/package.json" does when npm extracts it.
    return posixpath.normpath("/" + member_name).lstrip("/")


def read_manifest(
    file: IO[bytes],
    *,
    max_manifest_bytes: int = MAX_MANIFEST_BYTES,
    max_unpacked_bytes: int = MAX_UNPACKED_BYTES,
    max_members: int = MAX_MEMBERS,
) -> dict[str, Any]:
    """`package/package.json` of a gzipped tarball, parsed. Raises `UnreadableTarball`.

    The whole archive is walked, so that a second `package/package.json` (the one an install
    would actually keep) cannot hide behind the first.
    """
    manifest: bytes | None = None
    members = 0
    try:
        with (
            gzip.GzipFile(fileobj=file, mode="rb") as unzipped,
            tarfile.open(
                fileobj=_BoundedReader(unzipped, max_unpacked_bytes),
                mode="r|",
            ) as tar,
        ):
            for member in tar:
                members += 1
                if members > max_members:
                    raise UnreadableTarball(f"more than {max_members} members")
                if _normalize(member.name) != MANIFEST_PATH:
                    continue
                if manifest is not None:
                    raise UnreadableTarball(f"more than one {MANIFEST_PATH}")
                if not member.isfile():
                    raise UnreadableTarball(f"{MANIFEST_PATH} is not a regular file")
                if member.size > max_manifest_bytes:
                    raise UnreadableTarball(
                        f"{MANIFEST_PATH} is {member.size} bytes, over {max_manifest_bytes}"
                    )
                extracted = tar.extractfile(member)
                if extracted is None:  # pragma: no cover - regular files always extract
                    raise UnreadableTarball(f"{MANIFEST_PATH} cannot be read")
                manifest = extracted.read(max_manifest_bytes + 1)
    except (OSError, EOFError, tarfile.TarError, zlib.error) as e:
        raise UnreadableTarball(f"not a readable gzipped tarball ({type(e).__name__})") from None
    if manifest is None:
        raise UnreadableTarball(f"no {MANIFEST_PATH}")
    try:
        document = json.loads(manifest.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise UnreadableTarball(f"{MANIFEST_PATH} is not valid JSON") from None
    if not isinstance(document, dict):
        raise UnreadableTarball(f"{MANIFEST_PATH} is not a JSON object")
    return document


def check_tarball(tarball: DownloadedTarball, *, name: str, version: str, shasum: str) -> Verdict:
    """Whether the tarball is what the stage says: its SHA-1, and its manifest's name and
    version. The reason says what differs, or what was checked."""
    if tarball.sha1 != shasum.lower():
        return Verdict(False, f"SHA-1 is {tarball.sha1}, the stage says {shasum}")
    try:
        manifest = read_manifest(tarball.open())
    except UnreadableTarball as e:
        return Verdict(False, f"tarball unreadable: {e}")
    found_name, found_version = manifest.get("name"), manifest.get("version")
    if found_name != name:
        return Verdict(False, f"{MANIFEST_PATH} names {_shown(found_name)}, the stage {name!r}")
    if found_version != version:
        return Verdict(
            False, f"{MANIFEST_PATH} has version {_shown(found_version)}, the stage {version!r}"
        )
    return Verdict(True, f"SHA-1 {tarball.sha1} and {MANIFEST_PATH} match the stage")


def _shown(value: object) -> str:
    return repr(value)[:100]


def storage_name(sha256: str) -> str:
    return f"sha256/{sha256[:2]}/{sha256}.tgz"


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
