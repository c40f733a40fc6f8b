"""Tarballs in an S3-compatible bucket (django-storages' S3 backend, configured from the
environment as production would be) against a real S3 server on loopback: moto in server mode,
started here. The sync, the download, the analysis, the file view and the tarball download all
work with no local tarball folder, and the objects are private."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import LazySettings
from django.test import Client
from django.urls import reverse

from portal.settings import tarball_storage
from reviews.models import Analysis, StagedVersion, Tarball
from tests.review.support import Registry
from tests.review.test_pages import HTMX_DIFF, file_page, page
from tests.support import packages

# moto is pinned in requirements-dev.txt; an environment without it skips, and says why.
moto_server = pytest.importorskip("moto.server", reason="moto[server] (requirements-dev.txt)")
boto3 = pytest.importorskip("boto3")

pytestmark = pytest.mark.django_db

NAME = "@acme/stored"
KEYS = {"aws_access_key_id": "greenroom-test", "aws_secret_access_key": "greenroom-test-secret"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass
class Bucket:
    client: Any
    name: str
    endpoint: str
    local_dir: Path

    def objects(self) -> dict[str, int]:
        listed = self.client.list_objects_v2(Bucket=self.name).get("Contents", [])
        return {item["Key"]: item["Size"] for item in listed}


@pytest.fixture
def bucket(
    s3_endpoint: str, settings: LazySettings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Bucket:
    """A fresh bucket, and the tarball storage set from the environment to use it; the local
    tarball folder is pointed somewhere that must stay empty."""
    name = f"greenroom-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **KEYS)
    client.create_bucket(Bucket=name)
    local_dir = tmp_path / "no-local-tarballs"
    environment = {
        "GREENROOM_S3_BUCKET": name,
        "GREENROOM_S3_ENDPOINT_URL": s3_endpoint,
        "GREENROOM_S3_REGION": "us-east-1",
        "GREENROOM_S3_ACCESS_KEY_ID": KEYS["aws_access_key_id"],
        "GREENROOM_S3_SECRET_ACCESS_KEY": KEYS["aws_secret_access_key"],
        "GREENROOM_S3_ADDRESSING_STYLE": "path",
        "GREENROOM_TARBALL_DIR": str(local_dir),
    }
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    settings.STORAGES = {**settings.STORAGES, "tarballs": tarball_storage()}
    return Bucket(client, name, s3_endpoint, local_dir)


def test_the_local_folder_stays_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GREENROOM_S3_BUCKET", raising=False)
    monkeypatch.setenv("GREENROOM_TARBALL_DIR", "/srv/tarballs")
    assert tarball_storage() == {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": "/srv/tarballs"},
    }


def test_sync_download_analysis_and_pages_work_from_the_bucket_alone(
    registry: Registry, viewer: Client, bucket: Bucket
) -> None:
    registry.publish(NAME, "1.0.0", {"NOTES.txt": "first words\n"})
    staged = packages.build_tarball(
        NAME, "1.1.0", {"NOTES.txt": "second words\n", "lib/new.js": "exports.added = true;\n"}
    )
    registry.stage_only(NAME, "1.1.0", tarball=staged)

    registry.sync_pass()  # the pass, the download and the analysis, as the command runs them

    stage = StagedVersion.objects.get(package_name=NAME)
    assert stage.integrity == StagedVersion.Integrity.VERIFIED
    assert stage.review_baseline.analysis is not None
    assert stage.review_baseline.analysis.status == Analysis.Status.DONE
    stored = {f"tarballs/{t.storage_name}": t.size for t in Tarball.objects.all()}
    assert len(stored) == 2  # the staged tarball and its baseline
    objects = bucket.objects()
    assert {key: size for key, size in objects.items() if "/blobs/" not in key} == stored
    blobs = {key for key in objects if "/blobs/" in key}
    assert len(blobs) == 5  # both sides of NOTES.txt and package.json, the new lib/new.js
    assert not bucket.local_dir.exists()

    assert "lib/new.js" in page(viewer, stage)
    kept = {
        key: bucket.client.get_object(Bucket=bucket.name, Key=key)["Body"].read() for key in stored
    }
    for key in stored:  # the views read the blobs alone
        bucket.client.delete_object(Bucket=bucket.name, Key=key)
    diff = file_page(viewer, stage, "NOTES.txt", HTMX_DIFF)  # both sides read from the bucket
    assert diff.status_code == 200
    text = re.sub(r"<[^>]+>", "", diff.content.decode())  # word marks split the lines
    assert "first words" in text
    assert "second words" in text
    assert file_page(viewer, stage, "lib/new.js", HTMX_DIFF).status_code == 200
    for key, body in kept.items():  # put back for the download below
        bucket.client.put_object(Bucket=bucket.name, Key=key, Body=body)

    download = viewer.get(reverse("reviews:stage-tarball", args=[stage.stage_id]))
    assert download.status_code == 200
    assert download.streaming
    assert download["Content-Length"] == str(len(staged))
    assert b"".join(download.streaming_content) == staged  # type: ignore[attr-defined]
    assert not bucket.local_dir.exists()


def test_stored_objects_are_private(registry: Registry, bucket: Bucket) -> None:
    registry.stage_only("left-pad", "1.0.0")
    registry.sync_pass()
    keys = list(bucket.objects())
    assert len([key for key in keys if "/blobs/" not in key]) == 1  # the tarball
    assert len(keys) > 1  # and its files' blobs, for the file views

    for key in keys:
        grants = bucket.client.get_object_acl(Bucket=bucket.name, Key=key)["Grants"]
        grantees = {grant["Grantee"].get("URI", grant["Grantee"].get("ID")) for grant in grants}
        assert not any("AllUsers" in str(g) or "AuthenticatedUsers" in str(g) for g in grantees)
        assert [grant["Permission"] for grant in grants] == ["FULL_CONTROL"]  # the owner's
        anonymous = requests.get(f"{bucket.endpoint}/{bucket.name}/{key}", timeout=10)
        assert anonymous.status_code == 403
