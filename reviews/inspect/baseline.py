"""Which published version a staged version is compared with, and why.

The rules, in order (product.md, "The review"):

1. the version the stage's dist-tag points to now, if there is one and it is another version;
2. else the highest published version below the staged one;
3. else the highest published version;
4. else none: a first release, where every file is added.

Versions are ordered by npm's semver rules (node-semver, loose parsing as the registry's
clients use): a prerelease sorts below its release (`2.0.0-rc.1` < `2.0.0`), build metadata is
ignored, and strings that are not versions are left out. The placeholder `0.0.0-stage`, which
the registry publishes when a new package is staged, never counts, whatever tag points to it.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

import nodesemver

__all__ = ["STAGE_PLACEHOLDER", "Baseline", "BaselineRule", "choose_baseline"]

STAGE_PLACEHOLDER = "0.0.0-stage"
_LOOSE = True


class BaselineRule(StrEnum):
    REQUESTED = "requested"
    TAG = "tag"
    BELOW = "below"
    HIGHEST = "highest"
    NONE = "none"

    @property
    def summary(self) -> str:
        """The rule in words, without versions (for filters and legends)."""
        return _RULE_SUMMARIES[self]


_RULE_SUMMARIES = {
    BaselineRule.REQUESTED: "the version the reviewer chose",
    BaselineRule.TAG: "the version the stage's dist-tag points to now",
    BaselineRule.BELOW: "the highest published version below the staged one",
    BaselineRule.HIGHEST: "the highest published version",
    BaselineRule.NONE: "none: a first release",
}


@dataclass(frozen=True, slots=True)
class Baseline:
    version: str | None
    rule: BaselineRule
    staged_version: str
    tag: str | None = None

    @property
    def first_release(self) -> bool:
        return self.version is None

    @property
    def sentence(self) -> str:
        """Why this baseline, for the review page (raw text: escape it)."""
        version, staged = self.version, self.staged_version
        match self.rule:
            case BaselineRule.REQUESTED:
                return f"Compared with {version}, the version you chose."
            case BaselineRule.TAG:
                return f"Compared with {version}, the version the “{self.tag}” tag points to now."
            case BaselineRule.BELOW:
                return f"Compared with {version}, the highest published version below {staged}."
            case BaselineRule.HIGHEST:
                return (
                    f"Compared with {version}, the highest published version (none is below "
                    f"{staged})."
                )
            case _:
                return "First release: nothing is published yet, so every file is new."


def choose_baseline(
    staged_version: str,
    *,
    published: Iterable[str],
    dist_tags: Mapping[str, str] | None = None,
    tag: str | None = None,
    requested: str | None = None,
) -> Baseline:
    """The baseline for a staged version.

    `published` are the package's published versions (the packument's `versions` keys),
    `dist_tags` its current dist-tags, `tag` the tag the version was staged with. `requested`
    is a version the reviewer picked instead; it must be one of `published` (ValueError if not).
    """
    candidates = _versions(published, staged_version)
    if requested is not None:
        if requested not in candidates:
            raise ValueError(f"{requested!r} is not a published version of this package")
        return Baseline(requested, BaselineRule.REQUESTED, staged_version)

    tagged = (dist_tags or {}).get(tag) if tag else None
    if isinstance(tagged, str) and tagged in candidates:
        return Baseline(tagged, BaselineRule.TAG, staged_version, tag)
    if not candidates:
        return Baseline(None, BaselineRule.NONE, staged_version)

    ordered = sorted(candidates, key=functools.cmp_to_key(_compare))
    if nodesemver.valid(staged_version, _LOOSE) is not None:
        below = [v for v in ordered if _compare(v, staged_version) < 0]
        if below:
            return Baseline(below[-1], BaselineRule.BELOW, staged_version)
    return Baseline(ordered[-1], BaselineRule.HIGHEST, staged_version)


def _versions(published: Iterable[str], staged_version: str) -> set[str]:
    return {
        version
        for version in published
        if isinstance(version, str)
        and version not in (STAGE_PLACEHOLDER, staged_version)
        and nodesemver.valid(version, _LOOSE) is not None
    }


def _compare(a: str, b: str) -> int:
    return int(nodesemver.compare(a, b, _LOOSE))
