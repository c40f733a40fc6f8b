"""Releases: pending stages that belong together, and the order to approve them in.

A monorepo stages many packages at once. Stages belong to one release when their package.json
names the same `gitHead` (npm records the commit a package was packed from, when it can);
stages without one belong together when the same npm user staged them within
GREENROOM_RELEASE_WINDOW_MINUTES of the previous one (a chain: a long release stays one).

Dependency order: a stage whose package depends (dependencies, peer or optional) on another
selected package, with a range the other's version satisfies (or a range that is not semver,
such as `workspace:*`, to be safe), comes after it. A cycle is reported and broken by name: the
alphabetically first package of the cycle goes first, its dependencies inside the cycle ignored.

What is read from the tarball is kept on the stage (`release_facts`), once.
"""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import nodesemver
from django.conf import settings

from reviews.mirror.tarballs import open_stored, read_manifest
from reviews.models import StagedVersion

logger = logging.getLogger(__name__)

DEPENDENCY_FIELDS = ("dependencies", "peerDependencies", "optionalDependencies")
MAX_DEPENDENCIES = 2000
MAX_GIT_HEAD = 64


def facts(stage: StagedVersion) -> dict[str, Any]:
    """{"gitHead": str, "dependencies": {name: range}} from the staged package.json; empty
    while the tarball is not downloaded yet (then read again next time)."""
    if isinstance(stage.release_facts, dict):
        return stage.release_facts
    if stage.tarball_id is None or stage.tarball is None:
        return {}
    try:
        with open_stored(stage.tarball) as source:
            manifest = read_manifest(source)
    except Exception as e:  # an unreadable tarball has no facts; the review says why
        logger.info("no release facts for %s: %s", stage, type(e).__name__)
        manifest = {}
    found = facts_of(manifest)
    StagedVersion.objects.filter(pk=stage.pk).update(release_facts=found)
    stage.release_facts = found
    return found


def facts_of(manifest: dict[str, Any]) -> dict[str, Any]:
    head = manifest.get("gitHead")
    dependencies: dict[str, str] = {}
    for name in DEPENDENCY_FIELDS:
        found = manifest.get(name)
        if not isinstance(found, dict):
            continue
        for package, wanted in found.items():
            if isinstance(package, str) and isinstance(wanted, str):
                dependencies.setdefault(package[:214], wanted[:256])
            if len(dependencies) >= MAX_DEPENDENCIES:
                break
    return {
        "gitHead": head[:MAX_GIT_HEAD] if isinstance(head, str) else "",
        "dependencies": dependencies,
    }


# -- Releases on the dashboard --------------------------------------------------------------------


@dataclass
class Release:
    key: str  # "git:<head>" or "stager:<actor>:<first stage id>"
    label: str
    stages: list[StagedVersion]

    @property
    def latest(self) -> StagedVersion:
        return max(self.stages, key=lambda s: s.staged_at)


def releases(stages: Iterable[StagedVersion], window: timedelta | None = None) -> list[Release]:
    """The groups of two or more pending stages that belong together, newest first."""
    window = window or timedelta(minutes=settings.GREENROOM_RELEASE_WINDOW_MINUTES)
    by_head: dict[str, list[StagedVersion]] = defaultdict(list)
    by_stager: dict[str, list[list[StagedVersion]]] = defaultdict(list)
    for stage in sorted(stages, key=lambda s: (s.staged_at, s.pk)):
        head = facts(stage).get("gitHead", "")
        if head:
            by_head[head].append(stage)
            continue
        chains = by_stager[stage.actor]
        if chains and stage.staged_at - chains[-1][-1].staged_at <= window:
            chains[-1].append(stage)
        else:
            chains.append([stage])
    found = [
        Release(f"git:{head}", f"commit {head[:12]}", group) for head, group in by_head.items()
    ]
    for actor, chains in by_stager.items():
        found += [
            Release(f"stager:{actor}:{chain[0].stage_id}", f"staged by {actor or 'unknown'}", chain)
            for chain in chains
        ]
    found = [release for release in found if len(release.stages) > 1]
    return sorted(found, key=lambda r: r.latest.staged_at, reverse=True)


# -- Dependency order -----------------------------------------------------------------------------


@dataclass
class Order:
    stages: list[StagedVersion]
    # stage pk -> the pks of the selected stages it must come after (cycle edges removed)
    after: dict[int, list[int]] = field(default_factory=dict)
    cycles: list[str] = field(default_factory=list)  # each found cycle and how it was broken


def needs(stage: StagedVersion, other: StagedVersion) -> bool:
    """Whether `stage` depends on `other`'s version."""
    if stage.pk == other.pk:
        return False
    if stage.package_name == other.package_name:
        return _lower(other.version, stage.version)  # two versions of one package: older first
    wanted = facts(stage).get("dependencies", {}).get(other.package_name)
    if not isinstance(wanted, str):
        return False
    return _wants(wanted, other.version)


@functools.lru_cache(maxsize=4096)
def _wants(wanted: str, version: str) -> bool:
    """Whether a dependency range takes this version (semver ranges are slow to parse: a batch
    of a monorepo asks about the same few ranges many times)."""
    if nodesemver.valid_range(wanted, True) is None:
        return True  # workspace:*, a tag, a URL: assume it is this one, to be safe
    return bool(nodesemver.satisfies(version, wanted, True))


@functools.lru_cache(maxsize=4096)
def _lower(version: str, than: str) -> bool:
    if nodesemver.valid(version, True) is None or nodesemver.valid(than, True) is None:
        return version < than
    return bool(nodesemver.lt(version, than, True))


def _name(stage: StagedVersion) -> tuple[str, str, int]:
    return (stage.package_name, stage.version, stage.pk)


def dependency_order(stages: Iterable[StagedVersion]) -> Order:
    """Dependencies first; among stages free to go, by name. Cycles are broken by name."""
    chosen = sorted(stages, key=_name)
    by_pk = {stage.pk: stage for stage in chosen}
    edges = {s.pk: {o.pk for o in chosen if needs(s, o)} for s in chosen}
    order = Order([], {pk: sorted(deps) for pk, deps in edges.items()})
    remaining = dict(edges)
    while remaining:
        free = [pk for pk, deps in remaining.items() if not deps & remaining.keys()]
        if not free:
            free = [_break_cycle(remaining, by_pk, order)]
        first = min(free, key=lambda pk: _name(by_pk[pk]))
        order.stages.append(by_pk[first])
        del remaining[first]
    return order


def _break_cycle(
    remaining: dict[int, set[int]], by_pk: dict[int, StagedVersion], order: Order
) -> int:
    """Every stage left waits for another: report the cycle of the first by name, and let that
    one go first (its dependencies in the cycle are dropped)."""
    for pk in sorted(remaining, key=lambda p: _name(by_pk[p])):
        path = _path_back(pk, remaining)
        if path is None:
            continue
        names = " → ".join(str(by_pk[p]) for p in [pk, *path])
        order.cycles.append(
            f"Dependency cycle {names}: {by_pk[pk]} goes first (the first by name), as if it "
            "did not depend on the others in the cycle."
        )
        dropped = set(path)
        remaining[pk] = remaining[pk] - dropped
        order.after[pk] = [dep for dep in order.after[pk] if dep not in dropped]
        return pk
    raise AssertionError("no free stage and no cycle")  # Kahn's algorithm: cannot happen


def _path_back(start: int, edges: dict[int, set[int]]) -> list[int] | None:
    """A cycle through `start`: the dependencies from it back to it (ending with `start`), or
    None if there is none."""
    seen: set[int] = set()
    stack: list[tuple[int, list[int]]] = [(start, [])]
    while stack:
        node, path = stack.pop()
        for dep in sorted(edges.get(node, set()) & edges.keys()):
            if dep == start:
                return [*path, dep]
            if dep not in seen:
                seen.add(dep)
                stack.append((dep, [*path, dep]))
    return None
