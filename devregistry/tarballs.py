"""Tarball building and digests: what `npm pack` makes, and what `dist` says about it."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from typing import Any

# A fixed mtime keeps built tarballs byte-identical from run to run (npm pack does the same).
_FIXED_MTIME = 499162500


def shasum(data: bytes) -> str:
    """The legacy `dist.shasum`: SHA-1, hex."""
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def integrity(data: bytes) -> str:
    """The `dist.integrity` Subresource Integrity string (sha512, base64)."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def build_tarball(
    name: str,
    version: str,
    files: Mapping[str, bytes | str] | None = None,
    manifest: Mapping[str, Any] | None = None,
) -> bytes:
    """A gzipped tar with every member under `package/`, like `npm pack`.

    `package/package.json` is generated from name, version and `manifest` extras unless
    `files` has its own "package.json".
    """
    members: dict[str, bytes] = {}
    for path, content in (files or {}).items():
        members[path] = content.encode("utf-8") if isinstance(content, str) else content
    if "package.json" not in members:
        doc = {"name": name, "version": version, **dict(manifest or {})}
        members["package.json"] = (json.dumps(doc, indent=2) + "\n").encode("utf-8")

    raw = io.BytesIO()
    for path in sorted(members):
        info = tarfile.TarInfo(f"package/{path}")
        info.size = len(members[path])
        info.mtime = _FIXED_MTIME
        info.mode = 0o644
        raw.write(_header(info))
        raw.write(members[path] + bytes(-len(members[path]) % tarfile.BLOCKSIZE))
    raw.write(bytes(2 * tarfile.BLOCKSIZE))
    return gzip.compress(raw.getvalue(), mtime=0)


def _header(info: tarfile.TarInfo) -> bytes:
    """The member's header as npm pack writes it: the name in UTF-8 in the header itself (split
    into the ustar prefix when long), and a pax header only for a name that does not fit.
    (tarfile's pax form writes `?` for every non-ASCII character in the header's own name.)"""
    try:
        return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict")
    except ValueError:
        return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
