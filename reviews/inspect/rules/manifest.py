"""Rules over the package as a whole: package.json (install scripts, dependencies, bin, entry
points, license), the archive's shape (size, file count) and its anomalies.

Each gets the two manifests (parsed; None for a first release), the semantic diff, and both
file indexes; findings point at `package.json` and, where the key can be found in its text, at
the line that holds it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reviews.inspect.archive import FileEntry, FindingKind
from reviews.inspect.archive import Finding as ArchiveFinding
from reviews.inspect.changes import PackageAnalysis
from reviews.inspect.manifest import parse_manifest
from reviews.inspect.manifest_diff import (
    INSTALL_HOOKS,
    EntryChange,
    EntryStatus,
    ManifestDiff,
    Section,
)
from reviews.inspect.rules.code import download_and_run
from reviews.inspect.rules.findings import Finding, RuleInfo, Severity, Status, make, rule
from reviews.inspect.rules.obfuscation import looks_minified
from reviews.inspect.units import format_size

__all__ = ["PackageFacts", "package_findings", "refusal_finding"]

MANIFEST = "package.json"

INSTALL_SCRIPT = rule(
    "lifecycle.install-script",
    Severity.HIGH,
    "A preinstall, install or postinstall script added or changed (prepare: medium); the "
    "ones already there are listed as existing.",
)
BINDING_GYP = rule(
    "lifecycle.binding-gyp",
    Severity.MEDIUM,
    "A binding.gyp added: npm runs node-gyp rebuild at install.",
)
SCRIPT_DOWNLOAD = rule(
    "lifecycle.download-and-run",
    Severity.CRITICAL,
    "A script command that downloads and runs code (curl piped to sh, wget, node -e, "
    "PowerShell): critical in install scripts, high in others (medium for a download alone).",
)
DEP_ADDED = rule(
    "deps.added",
    Severity.LOW,
    "A dependency added (bundled: medium; peer and dev: info).",
)
DEP_REMOTE = rule(
    "deps.remote-spec",
    Severity.HIGH,
    "A dependency installed from a URL, git, a local path or a tarball instead of the "
    "registry (medium for dev and peer dependencies).",
)
DEP_ALIAS = rule(
    "deps.alias",
    Severity.MEDIUM,
    "An npm: alias: installs another package under this name.",
)
DEP_MAJOR = rule(
    "deps.major-jump",
    Severity.LOW,
    "A dependency's range moved to a new major version (dev dependencies: info).",
)
SHRINKWRAP = rule(
    "deps.shrinkwrap",
    Severity.MEDIUM,
    "npm-shrinkwrap.json added: it pins every transitive dependency for everyone who installs.",
)
BIN = rule(
    "manifest.bin",
    Severity.MEDIUM,
    "A bin command added or changed; high when it is named like a common tool (node, npm, git, "
    "sh, ...).",
)
ENTRY_POINT = rule(
    "manifest.entry-point",
    Severity.MEDIUM,
    "main, module, browser or exports moved to a new file; high when that file is minified.",
)
SIZE_JUMP = rule(
    "package.size-jump",
    Severity.LOW,
    "Unpacked size or file count at least doubled (and grew noticeably).",
)
LICENSE = rule(
    "release.license-changed",
    Severity.MEDIUM,
    "The license field changed.",
)

SHADOWED_COMMANDS = frozenset(
    {
        "node",
        "npm",
        "npx",
        "yarn",
        "pnpm",
        "corepack",
        "git",
        "sh",
        "bash",
        "zsh",
        "python",
        "python3",
        "curl",
        "wget",
        "ssh",
        "sudo",
        "ls",
        "cd",
        "rm",
        "cp",
        "mv",
        "cat",
        "env",
        "which",
        "make",
        "docker",
        "kubectl",
        "gh",
        "aws",
        "tsc",
    }
)
_ARCHIVE_SEVERITY = {
    FindingKind.SYMLINK: Severity.HIGH,
    FindingKind.HARDLINK: Severity.HIGH,
    FindingKind.DEVICE: Severity.HIGH,
    FindingKind.FIFO: Severity.HIGH,
    FindingKind.ABSOLUTE_PATH: Severity.HIGH,
    FindingKind.PARENT_PATH: Severity.HIGH,
    FindingKind.OUTSIDE_PACKAGE_FOLDER: Severity.MEDIUM,
    FindingKind.SEVERAL_TOP_FOLDERS: Severity.MEDIUM,
    FindingKind.DUPLICATE_PATH: Severity.HIGH,
    FindingKind.UNSUPPORTED_ENTRY: Severity.MEDIUM,
    FindingKind.SUSPICIOUS_NAME: Severity.MEDIUM,
    FindingKind.PATH_TOO_LONG: Severity.LOW,
    FindingKind.OVERSIZED_ENTRY: Severity.INFO,
    FindingKind.MANY_FINDINGS: Severity.INFO,
}
ARCHIVE_RULES: dict[FindingKind, RuleInfo] = {
    kind: rule(
        f"archive.{kind.value}",
        severity,
        f"The tarball reader's finding '{kind.value}' (entries that are not plain files, or odd "
        "paths), never followed.",
    )
    for kind, severity in _ARCHIVE_SEVERITY.items()
}
REFUSED = rule(
    "archive.refused",
    Severity.HIGH,
    "A tarball the reader refused (over a size, entry or ratio limit, corrupt or truncated): "
    "nothing in it was checked.",
)
_GIT_SPEC = re.compile(
    r"^(?:git(?:\+[a-z]+)?://|git@|github:|gitlab:|bitbucket:|gist:|"
    r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:#.*)?$)"
)
_MAJOR = re.compile(r"(\d+)\.")


@dataclass(frozen=True)
class PackageFacts:
    diff: ManifestDiff
    new_manifest: Mapping[str, Any]
    old_manifest: Mapping[str, Any] | None
    new_files: Mapping[str, FileEntry]
    old_files: Mapping[str, FileEntry] | None
    new_manifest_bytes: bytes = b""
    new_archive_findings: Sequence[ArchiveFinding] = ()
    old_archive_findings: Sequence[ArchiveFinding] = ()

    @property
    def first_release(self) -> bool:
        return self.old_files is None

    @classmethod
    def of(
        cls,
        package: PackageAnalysis,
        diff: ManifestDiff,
        new_manifest: bytes | None,
        old_manifest: bytes | None,
    ) -> PackageFacts:
        """The facts of an analysed pair and its two package.json files (as read from it)."""
        old = package.old
        return cls(
            diff=diff,
            new_manifest=parse_manifest(new_manifest).document,
            old_manifest=parse_manifest(old_manifest).document if old is not None else None,
            new_files=package.new.files,
            old_files=old.files if old is not None else None,
            new_manifest_bytes=new_manifest or b"",
            new_archive_findings=package.new.findings,
            old_archive_findings=old.findings if old is not None else (),
        )


def package_findings(facts: PackageFacts) -> list[Finding]:
    """Every package-level rule; statuses are set here (they compare the two manifests)."""
    found: list[Finding] = []
    found += _install_scripts(facts)
    found += _dependencies(facts)
    found += _bins(facts)
    found += _entry_points(facts)
    found += _shape(facts)
    found += _license(facts)
    found += _archive(facts)
    if facts.first_release:
        found = [finding.with_status(Status.NEW) for finding in found]
    return found


def _at(facts: PackageFacts, section: str, key: str) -> int | None:
    """The line of `"key"` in the staged package.json, looked for after `"section"`."""
    data = facts.new_manifest_bytes
    if not data:
        return None
    start = data.find(json.dumps(section).encode()) if section else 0
    needle = json.dumps(key).encode()
    at = data.find(needle, max(start, 0))
    if at < 0:
        at = data.find(needle)
    if at < 0:
        return None
    return data.count(b"\n", 0, at) + 1


def _status(change: EntryChange) -> Status:
    return Status.NEW if change.status is EntryStatus.ADDED else Status.CHANGED


# -- Scripts ----------------------------------------------------------------------------------


def _install_scripts(facts: PackageFacts) -> Iterator[Finding]:
    changed = {c.key: c for c in facts.diff.scripts if c.status is not EntryStatus.REMOVED}
    scripts = facts.new_manifest.get("scripts")
    scripts = scripts if isinstance(scripts, dict) else {}
    for change in changed.values():
        if change.implicit:
            yield make(
                BINDING_GYP,
                "binding.gyp: npm runs node-gyp rebuild at install",
                path="binding.gyp",
                key="binding.gyp",
            ).with_status(_status(change))
    for hook in INSTALL_HOOKS:
        command = scripts.get(hook)
        if not isinstance(command, str):
            continue
        hook_change = changed.get(hook)
        status = _status(hook_change) if hook_change is not None else Status.EXISTING
        verb = {Status.NEW: "added", Status.CHANGED: "changed", Status.EXISTING: "present"}
        severity = Severity.MEDIUM if hook == "prepare" else Severity.HIGH
        yield make(
            INSTALL_SCRIPT,
            f"{hook} script {verb[status]}: {command}",
            path=MANIFEST,
            line=_at(facts, "scripts", hook),
            excerpt=command,
            key=f"{hook}:{command}",
            severity=severity,
        ).with_status(status)
    for name, command in sorted(scripts.items())[:500]:
        if not isinstance(command, str):
            continue
        level = download_and_run(command)
        if level is None:
            continue
        script_change = changed.get(name)
        install = name in INSTALL_HOOKS
        yield make(
            SCRIPT_DOWNLOAD,
            f"{name} script downloads or runs code: {command}",
            path=MANIFEST,
            line=_at(facts, "scripts", name),
            excerpt=command,
            key=f"{name}:{command}",
            severity=Severity.CRITICAL if install and level is Severity.HIGH else level,
        ).with_status(_status(script_change) if script_change else Status.EXISTING)


# -- Dependencies -----------------------------------------------------------------------------

_ADDED_SEVERITY = {
    Section.DEPENDENCIES: Severity.LOW,
    Section.OPTIONAL_DEPENDENCIES: Severity.LOW,
    Section.BUNDLE_DEPENDENCIES: Severity.MEDIUM,
    Section.PEER_DEPENDENCIES: Severity.INFO,
    Section.DEV_DEPENDENCIES: Severity.INFO,
}


def _dependencies(facts: PackageFacts) -> Iterator[Finding]:
    for change in facts.diff.dependencies:
        if change.status is EntryStatus.REMOVED:
            continue
        section = str(change.section)
        line = _at(facts, _section_key(facts, section), change.key)
        spec = change.new or ""
        if change.status is EntryStatus.ADDED:
            yield make(
                DEP_ADDED,
                f"New {_kind_words(change.section)}: {change.key} {spec}",
                path=MANIFEST,
                line=line,
                excerpt=f"{change.key}: {spec}",
                key=f"{section}:{change.key}",
                severity=_ADDED_SEVERITY.get(change.section, Severity.LOW),
            )
        remote = _remote_kind(spec)
        if remote is not None:
            runtime = change.section in (Section.DEPENDENCIES, Section.OPTIONAL_DEPENDENCIES)
            yield make(
                DEP_REMOTE,
                f"{change.key} is installed from {remote}: {spec}",
                path=MANIFEST,
                line=line,
                excerpt=f"{change.key}: {spec}",
                key=f"{section}:{change.key}:{spec}",
                severity=Severity.HIGH if runtime else Severity.MEDIUM,
            ).with_status(_status(change))
        if spec.startswith("npm:"):
            yield make(
                DEP_ALIAS,
                f"{change.key} is an alias for {spec[4:]}",
                path=MANIFEST,
                line=line,
                excerpt=f"{change.key}: {spec}",
                key=f"{section}:{change.key}:{spec}",
            ).with_status(_status(change))
        if change.status is EntryStatus.CHANGED and _major_jump(change.old or "", spec):
            installed = change.section is not Section.DEV_DEPENDENCIES
            yield make(
                DEP_MAJOR,
                f"{change.key} moves to a new major version: {change.old} → {spec}",
                path=MANIFEST,
                line=line,
                excerpt=f"{change.key}: {spec}",
                key=f"{section}:{change.key}:{spec}",
                severity=Severity.LOW if installed else Severity.INFO,
            ).with_status(Status.CHANGED)
    if "npm-shrinkwrap.json" in facts.new_files and "npm-shrinkwrap.json" not in (
        facts.old_files or {}
    ):
        yield make(
            SHRINKWRAP,
            "npm-shrinkwrap.json added: pins every transitive dependency",
            path="npm-shrinkwrap.json",
            key="npm-shrinkwrap.json",
        )


def _section_key(facts: PackageFacts, section: str) -> str:
    if section == "bundleDependencies" and "bundledDependencies" in facts.new_manifest:
        return "bundledDependencies"
    return section


def _kind_words(section: Section) -> str:
    return {
        Section.DEPENDENCIES: "dependency",
        Section.OPTIONAL_DEPENDENCIES: "optional dependency",
        Section.PEER_DEPENDENCIES: "peer dependency",
        Section.DEV_DEPENDENCIES: "dev dependency",
        Section.BUNDLE_DEPENDENCIES: "bundled dependency",
    }.get(section, "dependency")


def _remote_kind(spec: str) -> str | None:
    lower = spec.strip().lower()
    if lower.startswith(("http://", "https://")):
        return "a URL"
    if lower.startswith(("file:", "link:", "./", "../", "/", "~/")):
        return "a local path"
    if lower.endswith((".tgz", ".tar.gz", ".tar")):
        return "a tarball"
    if _GIT_SPEC.match(spec.strip()):
        return "git"
    return None


def _major_jump(old: str, new: str) -> bool:
    before, after = _MAJOR.search(old), _MAJOR.search(new)
    return before is not None and after is not None and int(after[1]) > int(before[1])


# -- bin, entry points ------------------------------------------------------------------------


def _bins(facts: PackageFacts) -> Iterator[Finding]:
    for change in facts.diff.bin:
        if change.status is EntryStatus.REMOVED:
            continue
        shadows = change.key.lower() in SHADOWED_COMMANDS
        title = f"bin {change.key} → {change.new} {'added' if change.old is None else 'changed'}"
        if shadows:
            title += f": it would shadow the {change.key} command"
        yield make(
            BIN,
            title,
            path=MANIFEST,
            line=_at(facts, "bin", change.key),
            excerpt=f"{change.key}: {change.new}",
            key=f"{change.key}:{change.new}",
            severity=Severity.HIGH if shadows else Severity.MEDIUM,
        ).with_status(_status(change))


_ENTRY_FIELDS = ("main", "module", "browser", "exports")


def _entry_points(facts: PackageFacts) -> Iterator[Finding]:
    old_manifest = facts.old_manifest or {}
    for field in _ENTRY_FIELDS:
        new_targets = _targets(facts.new_manifest.get(field))
        old_targets = set(_targets(old_manifest.get(field)))
        for target in new_targets:
            if target in old_targets or facts.first_release:
                continue
            path = _resolve(target, facts.new_files)
            if path is None:
                continue
            entry = facts.new_files[path]
            is_new = facts.old_files is not None and path not in facts.old_files
            minified = path.endswith(".min.js") or looks_minified(
                entry.longest_line, entry.line_count, entry.size
            )
            if not (is_new or minified):
                continue
            what = " and ".join(
                word for word, yes in (("a new", is_new), ("minified", minified)) if yes
            )
            yield make(
                ENTRY_POINT,
                f"{field} now points to {path}, {what} file",
                path=MANIFEST,
                line=_at(facts, "", field),
                excerpt=f"{field}: {target}",
                key=f"{field}:{path}",
                severity=Severity.HIGH if minified else Severity.MEDIUM,
            )


def _targets(value: Any, depth: int = 0) -> list[str]:
    """Every file path a main/exports value names (bounded)."""
    if isinstance(value, str):
        return [value]
    if depth > 8:
        return []
    found: list[str] = []
    if isinstance(value, dict):
        for item in list(value.values())[:200]:
            found += _targets(item, depth + 1)
    elif isinstance(value, list):
        for item in value[:200]:
            found += _targets(item, depth + 1)
    return found[:400]


def _resolve(target: str, files: Mapping[str, FileEntry]) -> str | None:
    path = target.strip()
    while path.startswith("./"):
        path = path[2:]
    if "*" in path:
        return None
    for candidate in (path, f"{path}.js", f"{path}/index.js"):
        if candidate in files:
            return candidate
    return None


# -- Shape, license, archive ------------------------------------------------------------------


def _shape(facts: PackageFacts) -> Iterator[Finding]:
    if facts.old_files is None:
        return
    old_size = sum(entry.size for entry in facts.old_files.values())
    new_size = sum(entry.size for entry in facts.new_files.values())
    old_count, new_count = len(facts.old_files), len(facts.new_files)
    grew = []
    if new_size >= 2 * max(old_size, 1) and new_size - old_size >= 1_000_000:
        grew.append(f"unpacked size {format_size(old_size)} → {format_size(new_size)}")
    if new_count >= 2 * max(old_count, 1) and new_count - old_count >= 20:
        grew.append(f"files {old_count:,} → {new_count:,}")
    if grew:
        yield make(
            SIZE_JUMP,
            "The package grew: " + "; ".join(grew),
            key="size-jump",
        )


def _license(facts: PackageFacts) -> Iterator[Finding]:
    if facts.old_manifest is None:
        return
    old, new = facts.old_manifest.get("license"), facts.new_manifest.get("license")
    if _canonical(old) == _canonical(new):
        return
    yield make(
        LICENSE,
        f"License changed: {_canonical(old) or 'none'} → {_canonical(new) or 'none'}",
        path=MANIFEST,
        line=_at(facts, "", "license"),
        excerpt=f"license: {_canonical(new)}",
        key=f"license:{_canonical(new)}",
    )


def _canonical(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    try:
        return json.dumps(value, sort_keys=True)[:200]
    except (TypeError, ValueError):
        return "?"


def _archive(facts: PackageFacts) -> Iterator[Finding]:
    before = {(f.kind, f.path) for f in facts.old_archive_findings}
    for found in facts.new_archive_findings:
        info = ARCHIVE_RULES.get(found.kind)
        if info is None:
            continue
        status = Status.EXISTING if (found.kind, found.path) in before else Status.NEW
        yield make(
            info,
            f"{found.kind.value}: {found.detail}",
            path=found.path,
            key=f"{found.kind}:{found.path}",
        ).with_status(status)


def refusal_finding(side: str, message: str) -> Finding:
    """The one finding of a pair whose tarball was refused: its files were never read."""
    return make(REFUSED, f"The {side} tarball was refused: {message}", key=f"{side}:{message}")
