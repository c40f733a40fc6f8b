"""Run the risk rules on built tarball pairs, the way the analysis does (analyse_tarballs keeps
the staged bytes the rules want; the baseline's are read back on demand)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from reviews.inspect.archive import read_members
from reviews.inspect.changes import analyse_tarballs
from reviews.inspect.manifest_diff import diff_manifests
from reviews.inspect.rules import Finding, PackageFacts, PairScan, ScanLimits, scan_pair
from reviews.inspect.rules.engine import wants_bytes
from tests.inspect.builders import make_tarball

Files = Mapping[str, str | bytes]


def manifest(name: str = "demo", version: str = "1.0.0", **extra: Any) -> str:
    return json.dumps({"name": name, "version": version, **extra}, indent=2) + "\n"


def with_manifest(files: Files | None, version: str, **extra: Any) -> dict[str, str | bytes]:
    built: dict[str, str | bytes] = {"package.json": manifest(version=version, **extra)}
    built.update(files or {})
    return built


def scan_tarballs(
    old: bytes | None,
    new: bytes,
    limits: ScanLimits | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> PairScan:
    limits = limits or ScanLimits()
    package = analyse_tarballs(old, new, also_keep=lambda e, b: wants_bytes(e, b, limits))
    new_manifest = read_members(new, ["package.json"]).get("package.json")
    old_manifest = read_members(old, ["package.json"]).get("package.json") if old else None
    diff = diff_manifests(
        old_manifest,
        new_manifest,
        old_has_binding_gyp=package.old is not None and "binding.gyp" in package.old.files,
        new_has_binding_gyp="binding.gyp" in package.new.files,
        first_release=old is None,
    )
    facts = PackageFacts.of(package, diff, new_manifest, old_manifest)

    def baseline(paths: Any) -> Mapping[str, bytes]:
        assert old is not None
        return read_members(old, paths)

    return scan_pair(
        package.changeset.changes, package.new.contents, baseline, facts, limits, clock=clock
    )


def scan(
    old: Files | None,
    new: Files,
    *,
    old_manifest: Mapping[str, Any] | None = None,
    new_manifest: Mapping[str, Any] | None = None,
    modes: Mapping[str, int] | None = None,
    limits: ScanLimits | None = None,
) -> list[Finding]:
    """Findings of a pair given as {path: content}; a package.json is added to each side
    (version 1.0.0 and 1.1.0) unless one is given. `old=None` is a first release."""
    old_tar = None
    if old is not None:
        old_tar = make_tarball(with_manifest(old, "1.0.0", **(old_manifest or {})))
    new_tar = make_tarball(with_manifest(new, "1.1.0", **(new_manifest or {})), modes=modes)
    return scan_tarballs(old_tar, new_tar, limits).findings


def of(findings: list[Finding], rule: str) -> list[Finding]:
    return [finding for finding in findings if finding.rule == rule]


def where(findings: list[Finding]) -> list[str]:
    return [finding.where for finding in findings]


def describe(findings: list[Finding]) -> str:
    return "\n".join(f"{f.severity} {f.status} {f.rule} {f.where}: {f.title}" for f in findings)
