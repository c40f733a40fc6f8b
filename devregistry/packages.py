"""Published packages: the publish body, classic publish, packuments, manifests, dist-tags."""

from __future__ import annotations

import base64
import binascii
import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devregistry import tarballs
from devregistry.accounts import Principal
from devregistry.errors import bad_request, conflict, forbidden, not_found
from devregistry.models import Package, State, now_iso
from devregistry.store import Store, write_atomic

PLACEHOLDER_VERSION = "0.0.0-stage"

# semver.org's regular expression for a version (no leading "v", no "=").
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,127}$")
_PACKAGE_NAME = re.compile(r"^(?:@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]{0,213}$")


@dataclass(frozen=True)
class Upload:
    """One version as a publish or stage request carries it (libnpmpublish's body)."""

    name: str
    version: str
    tag: str
    access: str  # "public" or "private", the stage API's words
    manifest: dict[str, Any]
    tarball: bytes


def valid_package_name(name: str) -> bool:
    return bool(_PACKAGE_NAME.match(name))


def basename(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def parse_upload(url_name: str, body: Any) -> Upload:
    if not isinstance(body, dict):
        raise bad_request("Bad Request - the body must be a JSON object")
    missing = [key for key in ("name", "versions", "_attachments") if not body.get(key)]
    if missing:
        raise bad_request(f"Bad Request - Missing required fields: {', '.join(missing)}")
    name, versions, attachments = body["name"], body["versions"], body["_attachments"]
    if name != url_name:
        raise bad_request(f"Bad Request - body name {name!r} does not match the URL")
    if not isinstance(versions, dict) or not isinstance(attachments, dict):
        raise bad_request("Bad Request - versions and _attachments must be objects")
    # The registry takes the FIRST key of `versions` as the version published.
    version, manifest = next(iter(versions.items()))
    if not isinstance(manifest, dict) or not _SEMVER.match(version):
        raise bad_request(f"Bad Request - invalid version {version!r}")
    if manifest.get("version", version) != version or manifest.get("name", name) != name:
        raise bad_request("Bad Request - the version manifest does not match its key")
    tag = _tag_for(body.get("dist-tags"), version)
    access = "private" if body.get("access") in ("restricted", "private") else "public"
    return Upload(name, version, tag, access, manifest, _tarball_from(attachments))


def versions_taken(state: State, name: str, version: str) -> bool:
    """Staged and published versions share one index."""
    pkg = state.packages.get(name)
    if pkg is not None and version in pkg.versions:
        return True
    return state.stages.has_version(name, version)  # an index, not a scan of every stage


def require_maintainer(state: State, principal: Principal, name: str) -> Package | None:
    """The package if it exists; 403 for read-only tokens and for non-maintainers."""
    if principal.read_only:
        raise forbidden("This token is read-only")
    pkg = state.packages.get(name)
    if pkg is not None and principal.user.name not in pkg.maintainers:
        raise forbidden(f"You do not have permission to publish {name!r}")
    return pkg


def stored_manifest(upload: Upload, principal: Principal) -> dict[str, Any]:
    """The manifest as the registry keeps it: its own digests, the publisher, no URL."""
    manifest = copy.deepcopy(upload.manifest)
    manifest.update(name=upload.name, version=upload.version)
    manifest["_id"] = f"{upload.name}@{upload.version}"
    manifest["_npmUser"] = {"name": principal.user.name, "email": principal.user.email}
    manifest["dist"] = {
        "shasum": tarballs.shasum(upload.tarball),
        "integrity": tarballs.integrity(upload.tarball),
    }
    return manifest


def add_version(
    state: State,
    store: Store,
    name: str,
    manifest: dict[str, Any],
    tarball: bytes,
    tag: str,
    maintainer: str,
) -> None:
    """Publishes one version (the caller has checked permission and the version index)."""
    version = manifest["version"]
    write_atomic(store.published_tarball(name, version), tarball)
    pkg = state.packages.get(name)
    now = now_iso()
    if pkg is None:
        pkg = Package(name=name, maintainers=[maintainer], time={"created": now})
        state.packages[name] = pkg
    pkg.versions[version] = manifest
    pkg.dist_tags[tag] = version
    pkg.time[version] = now
    pkg.time["modified"] = now


def add_maintainer(state: State, name: str, user: str) -> None:
    if user not in state.users:
        raise ValueError(f"no user {user!r}")
    pkg = state.packages.get(name)
    if pkg is None:
        raise ValueError(f"no package {name!r}: publish or stage it first")
    if user not in pkg.maintainers:
        pkg.maintainers.append(user)


def publish(
    state: State,
    store: Store,
    principal: Principal,
    upload: Upload,
    second_factor: Callable[[], None],
) -> None:
    """Classic `PUT /{name}`. `second_factor()` raises unless the request carries a valid one."""
    require_maintainer(state, principal, upload.name)
    if versions_taken(state, upload.name, upload.version):
        raise conflict(
            f"Cannot publish over existing version {upload.version} of {upload.name} "
            "(published or staged)"
        )
    second_factor()
    manifest = stored_manifest(upload, principal)
    add_version(
        state, store, upload.name, manifest, upload.tarball, upload.tag, principal.user.name
    )


def publish_placeholder(state: State, store: Store, name: str, principal: Principal) -> None:
    """What staging a brand-new name publishes: a public `0.0.0-stage` tagged latest."""
    extras = {"description": "Placeholder: this name is reserved by a staged publish."}
    tarball = tarballs.build_tarball(name, PLACEHOLDER_VERSION, manifest=extras)
    manifest = {"name": name, "version": PLACEHOLDER_VERSION, **extras}
    upload = Upload(name, PLACEHOLDER_VERSION, "latest", "public", manifest, tarball)
    add_version(
        state,
        store,
        name,
        stored_manifest(upload, principal),
        tarball,
        "latest",
        principal.user.name,
    )


def packument(state: State, name: str, base_url: str) -> dict[str, Any]:
    pkg = _package(state, name)
    versions = {v: with_tarball_url(m, base_url) for v, m in pkg.versions.items()}
    latest = pkg.versions.get(pkg.dist_tags.get("latest", ""), {})
    return {
        "_id": pkg.name,
        "name": pkg.name,
        "description": latest.get("description", ""),
        "dist-tags": dict(pkg.dist_tags),
        "versions": versions,
        "time": dict(pkg.time),
        "maintainers": [
            {"name": m, "email": state.users[m].email if m in state.users else ""}
            for m in pkg.maintainers
        ],
        "readme": latest.get("readme", ""),
    }


def version_manifest(state: State, name: str, spec: str, base_url: str) -> dict[str, Any]:
    pkg = _package(state, name)
    version = pkg.dist_tags.get(spec, spec)
    if version not in pkg.versions:
        raise not_found(f"version not found: {name}@{spec}")
    return with_tarball_url(pkg.versions[version], base_url)


def tarball_version(state: State, name: str, filename: str) -> str:
    """The published version whose tarball is `filename`; 404 for anything else."""
    pkg = _package(state, name)
    for version in pkg.versions:
        if filename == f"{basename(name)}-{version}.tgz":
            return version
    raise not_found(f"tarball not found: {name}/-/{filename}")


def tarball_url(name: str, version: str, base_url: str) -> str:
    return f"{base_url}{name}/-/{basename(name)}-{version}.tgz"


def with_tarball_url(manifest: dict[str, Any], base_url: str) -> dict[str, Any]:
    doc = copy.deepcopy(manifest)
    doc["dist"]["tarball"] = tarball_url(doc["name"], doc["version"], base_url)
    return doc


def dist_tags(state: State, name: str) -> dict[str, str]:
    return dict(_package(state, name).dist_tags)


def set_dist_tag(
    state: State,
    principal: Principal,
    name: str,
    tag: str,
    version: Any,
    second_factor: Callable[[], None],
) -> None:
    pkg = require_maintainer(state, principal, name)
    if pkg is None:
        raise not_found(f"package not found: {name}")
    if not _TAG.match(tag) or _SEMVER.match(tag):
        raise bad_request(f"invalid tag {tag!r}")
    if not isinstance(version, str) or version not in pkg.versions:
        raise bad_request(f"no published version {version!r} of {name}")
    second_factor()
    pkg.dist_tags[tag] = version
    pkg.time["modified"] = now_iso()


def _package(state: State, name: str) -> Package:
    pkg = state.packages.get(name)
    if pkg is None:
        raise not_found(f"package not found: {name}")
    return pkg


def _tag_for(tags: Any, version: str) -> str:
    if not tags:
        return "latest"
    if not isinstance(tags, dict):
        raise bad_request("Bad Request - dist-tags must be an object")
    tag = next((t for t, v in tags.items() if v == version), None)
    if tag is None or not _TAG.match(tag) or _SEMVER.match(tag):
        raise bad_request(f"Bad Request - dist-tags must name {version} with a valid tag")
    return str(tag)


def _tarball_from(attachments: dict[str, Any]) -> bytes:
    entries = [a for a in attachments.values() if isinstance(a, dict)]
    chosen = next((a for a in entries if a.get("content_type") == "application/octet-stream"), None)
    chosen = chosen or (entries[0] if entries else None)
    if chosen is None or not isinstance(chosen.get("data"), str):
        raise bad_request("Bad Request - _attachments carries no tarball")
    try:
        data = base64.b64decode(chosen["data"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise bad_request("Bad Request - the tarball attachment is not base64") from exc
    if not data:
        raise bad_request("Bad Request - the tarball attachment is empty")
    return data
