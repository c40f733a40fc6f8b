"""The package.json diff that matters for review, shown before the file diffs.

Scripts (the install-time hooks `preinstall`, `install`, `postinstall` and `prepare` first),
dependencies of every kind, `bin`, the entry points (`main`, `module`, `exports`, `type`),
`files`, `engines`, `os` and `cpu`. Both manifests are attacker-controlled: anything that is
not the expected shape becomes a `problem` sentence and an empty section, never an exception;
sizes, nesting (`reviews.inspect.manifest`) and the number of reported entries are bounded.

A package with a `binding.gyp` at its root and no `install` or `preinstall` script gets an
implicit `install` script (`node-gyp rebuild`) from npm; callers say whether the file is there
and the diff shows that hook like a written one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any

from reviews.inspect.manifest import Manifest, parse_manifest

__all__ = [
    "DEPENDENCY_KINDS",
    "INSTALL_HOOKS",
    "EntryChange",
    "EntryStatus",
    "ManifestDiff",
    "Section",
    "diff_manifests",
]

MAX_SHOWN_CHARS = 2_000
"""A value longer than this is cut for display (changes are still detected on the whole)."""
MAX_CHANGES_PER_SECTION = 2_000

INSTALL_HOOKS = ("preinstall", "install", "postinstall", "prepare")
DEPENDENCY_KINDS = (
    "dependencies",
    "devDependencies",
    "peerDependencies",
    "optionalDependencies",
    "bundleDependencies",
)
ENTRY_FIELDS = ("main", "module", "exports", "type", "browser", "files", "os", "cpu")
IMPLICIT_INSTALL = "node-gyp rebuild"


class EntryStatus(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


class Section(StrEnum):
    SCRIPTS = "scripts"
    DEPENDENCIES = "dependencies"
    DEV_DEPENDENCIES = "devDependencies"
    PEER_DEPENDENCIES = "peerDependencies"
    OPTIONAL_DEPENDENCIES = "optionalDependencies"
    BUNDLE_DEPENDENCIES = "bundleDependencies"
    BIN = "bin"
    ENGINES = "engines"
    FIELDS = "fields"
    """Whole-value fields; the key is the field name."""


@dataclass(frozen=True, slots=True)
class EntryChange:
    section: Section
    key: str
    """Script name, package name, command, engine, or field name."""
    status: EntryStatus
    old: str | None
    """Display text: strings as they are, other values as compact JSON; cut past
    `MAX_SHOWN_CHARS`. Raw text from the tarball: escape it."""
    new: str | None
    implicit: bool = False
    """An `install` hook npm adds for `binding.gyp`, not written in package.json."""

    @property
    def is_install_hook(self) -> bool:
        return self.section is Section.SCRIPTS and self.key in INSTALL_HOOKS


@dataclass(frozen=True, slots=True)
class ManifestDiff:
    scripts: tuple[EntryChange, ...] = ()
    """Install hooks first, then the others by name."""
    dependencies: tuple[EntryChange, ...] = ()
    """By kind (in `DEPENDENCY_KINDS` order), then by name; `section` says the kind."""
    bin: tuple[EntryChange, ...] = ()
    engines: tuple[EntryChange, ...] = ()
    fields: tuple[EntryChange, ...] = ()
    problems: tuple[str, ...] = field(default=())
    """Malformed or hostile input, in sentences (raw text: escape it)."""
    staged_unreadable: str = ""
    """Why the staged package.json could not be read at all (also in `problems`): then its
    scripts and dependencies are unknown, not absent."""

    @property
    def install_hooks(self) -> tuple[EntryChange, ...]:
        return tuple(change for change in self.scripts if change.is_install_hook)

    @property
    def has_changes(self) -> bool:
        return any(self.all_changes())

    def all_changes(self) -> Iterable[EntryChange]:
        yield from self.scripts
        yield from self.dependencies
        yield from self.bin
        yield from self.engines
        yield from self.fields


def diff_manifests(
    old: bytes | Manifest | None,
    new: bytes | Manifest | None,
    *,
    old_has_binding_gyp: bool = False,
    new_has_binding_gyp: bool = False,
    first_release: bool = False,
) -> ManifestDiff:
    """The semantic diff of two package.json files (bytes as in the tarball, or parsed).

    With `first_release` (or `old=None` and no baseline), everything in `new` is "added".
    """
    problems: list[str] = []
    old_manifest = _load(old, "The baseline package.json", problems, absent_ok=first_release)
    before_new = len(problems)
    new_manifest = _load(new, "The staged package.json", problems, absent_ok=False)
    staged_unreadable = problems[-1] if len(problems) > before_new else ""

    old_scripts = _string_map(old_manifest, "scripts", "baseline", problems)
    new_scripts = _string_map(new_manifest, "scripts", "staged", problems)
    old_implicit = _add_implicit_install(old_scripts, old_manifest, old_has_binding_gyp)
    new_implicit = _add_implicit_install(new_scripts, new_manifest, new_has_binding_gyp)
    scripts = [
        replace(c, implicit=new_implicit if c.new is not None else old_implicit)
        if c.key == "install"
        else c
        for c in _compare(Section.SCRIPTS, old_scripts, new_scripts, problems)
    ]
    scripts.sort(key=lambda c: (not c.is_install_hook, _hook_rank(c.key), c.key))

    dependencies: list[EntryChange] = []
    for kind in DEPENDENCY_KINDS:
        section = Section(kind)
        before = _dependency_map(old_manifest, kind, "baseline", problems)
        after = _dependency_map(new_manifest, kind, "staged", problems)
        dependencies.extend(_compare(section, before, after, problems))

    bins = _compare(
        Section.BIN,
        _bin_map(old_manifest, "baseline", problems),
        _bin_map(new_manifest, "staged", problems),
        problems,
    )
    engines = _compare(
        Section.ENGINES,
        _string_map(old_manifest, "engines", "baseline", problems),
        _string_map(new_manifest, "engines", "staged", problems),
        problems,
    )
    fields = _compare(Section.FIELDS, _fields(old_manifest), _fields(new_manifest), problems)
    fields.sort(key=lambda change: ENTRY_FIELDS.index(change.key))
    return ManifestDiff(
        scripts=tuple(scripts),
        dependencies=tuple(dependencies),
        bin=tuple(bins),
        engines=tuple(engines),
        fields=tuple(fields),
        problems=tuple(dict.fromkeys(problems)),
        staged_unreadable=staged_unreadable,
    )


# --- internals -------------------------------------------------------------------------------


def _load(
    source: bytes | Manifest | None, label: str, problems: list[str], *, absent_ok: bool
) -> Manifest:
    if source is None and absent_ok:
        return {}
    if source is None or isinstance(source, bytes | bytearray):
        parsed = parse_manifest(bytes(source) if source is not None else None, label)
        if parsed.problem:
            problems.append(parsed.problem)
        return parsed.document
    return source


def _display(value: Any) -> str:
    if isinstance(value, str):
        return _cut(value, MAX_SHOWN_CHARS)
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        text = repr(type(value))
    return _cut(text, MAX_SHOWN_CHARS)


def _canonical(value: Any) -> str:
    """For comparing: JSON with key order kept (order matters in `exports`)."""
    if isinstance(value, str):
        return "s" + value
    try:
        return "j" + json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        return "?"


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def _object(manifest: Manifest, key: str, side: str, problems: list[str]) -> Mapping[str, Any]:
    value = manifest.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"`{key}` in the {side} package.json is not an object; ignored.")
        return {}
    return value


def _string_map(manifest: Manifest, key: str, side: str, problems: list[str]) -> dict[str, Any]:
    values = dict(_object(manifest, key, side, problems))
    odd = sorted(name for name, value in values.items() if not isinstance(value, str))
    if odd:
        shown = ", ".join(odd[:5]) + (" …" if len(odd) > 5 else "")
        problems.append(
            f"`{key}` in the {side} package.json has values that are not text: {shown}."
        )
    return values


def _dependency_map(
    manifest: Manifest, kind: str, side: str, problems: list[str]
) -> dict[str, Any]:
    if kind != "bundleDependencies":
        return _string_map(manifest, kind, side, problems)
    # npm accepts both spellings; a list of names, or `true` for all of `dependencies`.
    value = manifest.get("bundleDependencies", manifest.get("bundledDependencies"))
    if value is None or value is False:
        return {}
    if value is True:
        names: Iterable[Any] = _object(manifest, "dependencies", side, [])
    elif isinstance(value, list):
        names = value
    else:
        problems.append(f"`bundleDependencies` in the {side} package.json is not a list; ignored.")
        return {}
    return {name: "bundled" for name in names if isinstance(name, str)}


def _bin_map(manifest: Manifest, side: str, problems: list[str]) -> dict[str, Any]:
    value = manifest.get("bin")
    if value is None:
        directory = manifest.get("directories")
        if isinstance(directory, dict) and isinstance(directory.get("bin"), str):
            # npm links every file of `directories.bin`; the commands are known only from files
            return {"(every file in directories.bin)": directory["bin"]}
        return {}
    if isinstance(value, str):
        name = manifest.get("name")
        command = name.rsplit("/", 1)[-1] if isinstance(name, str) and name else "(package name)"
        return {command: value}
    if isinstance(value, dict):
        return _string_map(manifest, "bin", side, problems)
    if isinstance(value, list):
        return _bin_list_map(value, side, problems)
    problems.append(
        f"`bin` in the {side} package.json is neither text, a list nor an object; ignored."
    )
    return {}


def _bin_list_map(paths: list[Any], side: str, problems: list[str]) -> dict[str, Any]:
    # npm's normalize turns a list of paths into {basename: path}: each file is a command.
    if not all(isinstance(path, str) for path in paths):
        problems.append(f"`bin` in the {side} package.json lists values that are not text.")
    commands = {PurePosixPath(path).name: path for path in paths if isinstance(path, str)}
    commands.pop("", None)  # npm drops a command without a name
    return commands


def _fields(manifest: Manifest) -> dict[str, Any]:
    return {key: manifest[key] for key in ENTRY_FIELDS if key in manifest}


def _add_implicit_install(scripts: dict[str, Any], manifest: Manifest, binding_gyp: bool) -> bool:
    if not binding_gyp or manifest.get("gypfile") is False:
        return False
    if "install" in scripts or "preinstall" in scripts:
        return False
    scripts["install"] = IMPLICIT_INSTALL
    return True


def _hook_rank(key: str) -> int:
    return INSTALL_HOOKS.index(key) if key in INSTALL_HOOKS else len(INSTALL_HOOKS)


def _compare(
    section: Section,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    problems: list[str],
) -> list[EntryChange]:
    keys = sorted({*new, *old})
    changes: list[EntryChange] = []
    for key in keys:
        in_old, in_new = key in old, key in new
        if in_old and in_new and _canonical(old[key]) == _canonical(new[key]):
            continue
        if len(changes) >= MAX_CHANGES_PER_SECTION:
            problems.append(
                f"More than {MAX_CHANGES_PER_SECTION:,} changes in `{section}`; the rest are "
                "not listed."
            )
            break
        if in_old and in_new:
            status = EntryStatus.CHANGED
        else:
            status = EntryStatus.ADDED if in_new else EntryStatus.REMOVED
        changes.append(
            EntryChange(
                section,
                _cut(key, MAX_SHOWN_CHARS),
                status,
                _display(old[key]) if in_old else None,
                _display(new[key]) if in_new else None,
            )
        )
    return changes
