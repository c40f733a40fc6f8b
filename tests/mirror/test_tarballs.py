"""Verifying tarballs against their stage and storing them content-addressed, on real bytes."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from django.conf import LazySettings
from django.core.files.base import ContentFile
from django.core.files.storage import storages

from devregistry.tarballs import integrity, shasum
from reviews.inspect.archive import DEFAULT_LIMITS
from reviews.inspect.manifest import MAX_MANIFEST_BYTES
from reviews.mirror.registry import DownloadedTarball
from reviews.mirror.tarballs import (
    UnreadableTarball,
    Verdict,
    check_tarball,
    read_manifest,
    storage_name,
    store_tarball,
)
from reviews.models import StagedVersion, Tarball
from tests.inspect.builders import many_entries
from tests.support.packages import build_tarball

Integrity = StagedVersion.Integrity


def downloaded(data: bytes) -> DownloadedTarball:
    return DownloadedTarball(
        io.BytesIO(data), len(data), shasum(data), hashlib.sha256(data).hexdigest(), integrity(data)
    )


def raw_tarball(members: list[tuple[str, bytes]]) -> bytes:
    """A gzipped tar with exactly these members, in this order (duplicates allowed)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue())


def verdict(
    data: bytes, name: str = "left-pad", version: str = "1.0.0", sha: str | None = None
) -> Verdict:
    return check_tarball(downloaded(data), name=name, version=version, shasum=sha or shasum(data))


class TestCheckTarball:
    def test_matching_tarball_is_verified(self) -> None:
        data = build_tarball("@acme/widget", "2.0.0", {"index.js": "x"})
        found = verdict(data, "@acme/widget", "2.0.0")
        assert found.integrity == Integrity.VERIFIED
        assert shasum(data) in found.reason

    def test_shasum_is_compared_case_insensitively(self) -> None:
        data = build_tarball("left-pad", "1.0.0")
        assert verdict(data, sha=shasum(data).upper()).verified

    def test_other_shasum_is_a_mismatch(self) -> None:
        found = verdict(build_tarball("left-pad", "1.0.0"), sha="0" * 40)
        assert found.integrity == Integrity.MISMATCH
        assert found.reason.endswith(f"the stage says {'0' * 40}")

    @pytest.mark.parametrize(
        ("manifest", "expected"),
        [
            ({"name": "right-pad", "version": "1.0.0"}, "names 'right-pad'"),
            ({"name": "left-pad", "version": "1.0.1"}, "version '1.0.1'"),
            ({"version": "1.0.0"}, "names None"),
            ({"name": ["left-pad"], "version": "1.0.0"}, "names ['left-pad']"),
        ],
    )
    def test_other_name_or_version_is_a_mismatch(
        self, manifest: dict[str, object], expected: str
    ) -> None:
        data = build_tarball("x", "0", {"package.json": json.dumps(manifest)})
        found = verdict(data)
        assert found.integrity == Integrity.MISMATCH
        assert expected in found.reason

    @pytest.mark.parametrize(
        ("data", "expected"),
        [
            (b"not gzip at all", "unreadable"),
            (raw_tarball([("package/index.js", b"x")]), "no package.json"),
            (raw_tarball([("package/package.json", b"{nope")]), "not valid JSON"),
            (raw_tarball([("package/package.json", b"[1]")]), "not a JSON object"),
            (raw_tarball([("package/package.json", b"\xff\xfe")]), "not UTF-8"),
            (
                raw_tarball([("package/package.json", b'{"a":' + b"[" * 100_000 + b"]" * 100_000)]),
                "its package.json nests too deeply to read (more than 100 levels).",
            ),
        ],
    )
    def test_unreadable_tarball_is_a_mismatch(self, data: bytes, expected: str) -> None:
        found = verdict(data)
        assert found.integrity == Integrity.MISMATCH
        assert expected in found.reason

    def test_the_manifest_npm_would_install_is_the_one_checked(self) -> None:
        # Two copies: extraction keeps the last, so that is what must match the stage.
        data = raw_tarball(
            [
                ("package/package.json", b'{"name": "left-pad", "version": "1.0.0"}'),
                ("package/package.json", b'{"name": "left-pad", "version": "6.6.6"}'),
            ]
        )
        assert "version '6.6.6'" in verdict(data).reason

    def test_npm_strips_whatever_the_top_folder_is_called(self) -> None:
        data = raw_tarball([("node/package.json", b'{"name": "left-pad", "version": "1.0.0"}')])
        assert verdict(data).verified

    def test_an_oversized_manifest_is_not_read(self) -> None:
        padding = os.urandom(MAX_MANIFEST_BYTES // 2 + 1).hex()  # does not compress
        manifest = {"name": "left-pad", "version": "1.0.0", "padding": padding}
        data = raw_tarball([("package/package.json", json.dumps(manifest).encode())])
        found = verdict(data)
        assert found.integrity == Integrity.MISMATCH
        assert "over" in found.reason

    def test_zero_padding_is_read_whole_and_checked(self) -> None:
        padded = raw_tarball(
            [
                ("package/package.json", b'{"name":"left-pad","version":"1.0.0"}'),
                ("package/z", bytes(50 * 1024 * 1024)),
            ]
        )
        assert len(padded) < 100_000
        assert verdict(padded).verified

    def test_more_entries_than_the_limit_is_too_big_to_check(self) -> None:
        found = verdict(many_entries(DEFAULT_LIMITS.max_entries + 1))
        assert found.integrity == Integrity.UNAVAILABLE
        assert found.reason == "tarball too big to check: The tarball has more than 50,000 entries."

    def test_a_crash_while_checking_is_a_verdict_not_an_exception(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def broken(*args: object, **kwargs: object) -> None:
            raise MemoryError("a bug of ours")

        monkeypatch.setattr("reviews.mirror.tarballs.read_archive", broken)
        found = verdict(build_tarball("left-pad", "1.0.0"))
        assert found.integrity == Integrity.UNAVAILABLE
        assert found.reason == "the tarball could not be checked (MemoryError)"

    def test_read_manifest_raises_for_no_manifest(self) -> None:
        with pytest.raises(UnreadableTarball, match=r"no package\.json"):
            read_manifest(raw_tarball([("package/README.md", b"hi")]))


@pytest.fixture
def tarball_storage(tmp_path: Path, settings: LazySettings) -> Path:
    settings.STORAGES = {
        **settings.STORAGES,
        "tarballs": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    return tmp_path


@pytest.mark.django_db
class TestStoreTarball:
    def test_stores_bytes_under_their_sha256(self, tarball_storage: Path) -> None:
        data = build_tarball("left-pad", "1.0.0")
        digest = hashlib.sha256(data).hexdigest()

        row = store_tarball(downloaded(data))

        assert row.storage_name == f"sha256/{digest[:2]}/{digest}.tgz" == storage_name(digest)
        assert (tarball_storage / row.storage_name).read_bytes() == data
        assert (row.sha256, row.sha1, row.size) == (digest, shasum(data), len(data))
        assert row.integrity == integrity(data)

    def test_the_same_bytes_twice_keep_one_file_and_one_row(self, tarball_storage: Path) -> None:
        data = build_tarball("left-pad", "1.0.0")

        first = store_tarball(downloaded(data))
        second = store_tarball(downloaded(data))

        assert first == second
        assert Tarball.objects.count() == 1
        assert [p.name for p in tarball_storage.rglob("*.tgz")] == [f"{first.sha256}.tgz"]

    def test_a_file_saved_by_another_worker_is_not_duplicated(self, tarball_storage: Path) -> None:
        data = build_tarball("left-pad", "1.0.0")
        digest = hashlib.sha256(data).hexdigest()
        # Another worker saved the file and has not created the row yet.
        storages["tarballs"].save(storage_name(digest), ContentFile(data))

        row = store_tarball(downloaded(data))

        assert row.storage_name == storage_name(digest)
        assert len(list(tarball_storage.rglob("*.tgz"))) == 1

    def test_a_lost_file_is_saved_again(self, tarball_storage: Path) -> None:
        data = build_tarball("left-pad", "1.0.0")
        row = store_tarball(downloaded(data))
        (tarball_storage / row.storage_name).unlink()

        again = store_tarball(downloaded(data))

        assert again == row
        assert (tarball_storage / row.storage_name).read_bytes() == data
