"""Changed files' bytes, stored once at analysis time so that file views never read a tarball.

Each file is stored under its SHA-256 (content-addressed: a file that two analyses share, or
that a rename keeps, is stored once), compressed with zstandard, in the tarballs' storage (a
local folder or the private bucket, `portal.settings.tarball_storage`). Reading one back is a
single small object and a decompression of a few milliseconds, where the tarball meant
gunzipping up to the whole package. Blobs are checked against their digest when read: a blob
that is missing or does not match is reported as missing, and the caller reads the tarball
(analyses made before blobs existed have none).
"""

from __future__ import annotations

import hashlib
import logging

import zstandard
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages

from reviews.inspect.archive import FileEntry

logger = logging.getLogger(__name__)

__all__ = ["BlobWriter", "blob_name", "read_blob"]

LEVEL = 3
"""zstandard's default: about 4x smaller than JavaScript source, and faster than gunzip."""
MAX_BLOB_BYTES = 64 * 1024 * 1024
"""A decompressed blob never exceeds the per-file analysis limit; this bounds a damaged one."""


def blob_name(sha256: str) -> str:
    return f"blobs/sha256/{sha256[:2]}/{sha256}.zst"


def _storage() -> Storage:
    return storages["tarballs"]


class BlobWriter:
    """Stores the bytes handed to it, each content once (`analyse_tarballs(on_changed=…)`)."""

    def __init__(self) -> None:
        self._storage = _storage()
        self._compressor = zstandard.ZstdCompressor(level=LEVEL)
        self._done: set[str] = set()
        self.stored = 0
        self.stored_bytes = 0

    def __call__(self, entry: FileEntry, data: bytes) -> None:
        if entry.sha256 in self._done:
            return
        self._done.add(entry.sha256)
        name = blob_name(entry.sha256)
        if self._storage.exists(name):
            return
        compressed = self._compressor.compress(data)
        saved_as = self._storage.save(name, ContentFile(compressed, name=name))
        if saved_as != name:
            # another worker stored the same content between our check and our save
            self._storage.delete(saved_as)
        self.stored += 1
        self.stored_bytes += len(compressed)


def read_blob(sha256: str) -> bytes | None:
    """The stored bytes with this SHA-256, or None if there are none (or they do not match)."""
    storage = _storage()
    name = blob_name(sha256)
    try:
        with storage.open(name, "rb") as file:
            compressed = file.read()
    except (FileNotFoundError, OSError):
        return None
    except Exception as error:  # object storage raises its own errors for a missing key
        if type(error).__name__ not in ("ClientError", "NoSuchKey"):
            raise
        return None
    try:
        data = zstandard.ZstdDecompressor().decompress(compressed, max_output_size=MAX_BLOB_BYTES)
    except zstandard.ZstdError:
        logger.warning("blob %s does not decompress; reading the tarball instead", sha256)
        return None
    if hashlib.sha256(data).hexdigest() != sha256:
        logger.warning("blob %s does not match its digest; reading the tarball instead", sha256)
        return None
    return data
