"""Building, staging and publishing packages against a registry, as npm's libnpmpublish does."""

from __future__ import annotations

import base64
from typing import Any

import requests

from devregistry import tarballs
from tests.support.openapi import stage_session

TIMEOUT = 30


class RegistryRefused(RuntimeError):
    """The registry answered something other than success; `response` has the details."""

    def __init__(self, action: str, response: requests.Response) -> None:
        super().__init__(f"{action}: {response.status_code} {response.text}")
        self.response = response


def build_tarball(
    name: str,
    version: str,
    files: dict[str, bytes | str] | None = None,
    manifest: dict[str, Any] | None = None,
) -> bytes:
    """A package tarball; `package/package.json` is generated from name, version and `manifest`
    extras unless `files` has "package.json". Paths are relative to `package/`."""
    return tarballs.build_tarball(name, version, files, manifest)


def publish_body(
    name: str,
    version: str,
    tarball: bytes,
    tag: str = "latest",
    manifest: dict[str, Any] | None = None,
    access: str | None = "public",
) -> dict[str, Any]:
    """The body libnpmpublish sends for `npm publish` and `npm stage publish`."""
    meta = {"name": name, "version": version, **(manifest or {})}
    meta["_id"] = f"{name}@{version}"
    # dist.tarball is left out: the registry writes its own URL.
    meta["dist"] = {"integrity": tarballs.integrity(tarball), "shasum": tarballs.shasum(tarball)}
    filename = f"{name}-{version}.tgz"
    return {
        "_id": name,
        "name": name,
        "description": meta.get("description"),
        "dist-tags": {tag: version},
        "versions": {version: meta},
        "access": access,
        "_attachments": {
            filename: {
                "content_type": "application/octet-stream",
                "data": base64.b64encode(tarball).decode("ascii"),
                "length": len(tarball),
            }
        },
    }


def escaped(name: str) -> str:
    return name.replace("/", "%2f")


def stage(
    registry_url: str,
    token: str,
    name: str,
    version: str,
    tarball: bytes | None = None,
    tag: str = "latest",
    manifest: dict[str, Any] | None = None,
) -> str:
    """Stages a version (POST /-/stage/package/{name}); returns the stageId. Raises on non-201."""
    tarball = tarball if tarball is not None else build_tarball(name, version, manifest=manifest)
    with stage_session() as session:
        response = session.post(
            f"{registry_url}-/stage/package/{escaped(name)}",
            json=publish_body(name, version, tarball, tag, manifest),
            headers={"authorization": f"Bearer {token}", "npm-command": "stage"},
            timeout=TIMEOUT,
        )
    if response.status_code != 201:
        raise RegistryRefused(f"staging {name}@{version}", response)
    stage_id: str = response.json()["stageId"]
    return stage_id


def publish(
    registry_url: str,
    token: str,
    name: str,
    version: str,
    tarball: bytes | None = None,
    tag: str = "latest",
    otp: str | None = None,
    manifest: dict[str, Any] | None = None,
) -> None:
    """Publishes a version the classic way (PUT /{name}). Raises on a non-2xx answer."""
    tarball = tarball if tarball is not None else build_tarball(name, version, manifest=manifest)
    headers = {"authorization": f"Bearer {token}", "npm-command": "publish"}
    if otp is not None:
        headers["npm-otp"] = otp
    response = requests.put(
        f"{registry_url}{escaped(name)}",
        json=publish_body(name, version, tarball, tag, manifest),
        headers=headers,
        timeout=TIMEOUT,
    )
    if not response.ok:
        raise RegistryRefused(f"publishing {name}@{version}", response)
