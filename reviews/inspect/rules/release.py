"""Rules about the release rather than its files: where the tag would move, and who staged it
compared with who published before. The facts come from the registry (the packument and the
stage record), passed in as plain values by the caller.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import nodesemver

from reviews.inspect.rules.findings import Finding, Severity, make, rule

__all__ = ["Publisher", "ReleaseFacts", "release_findings"]

TAG_DOWNGRADE = rule(
    "release.tag-downgrade",
    Severity.HIGH,
    "Approving would move a dist-tag to a lower version than it points to now.",
)
NEW_PUBLISHER = rule(
    "release.new-publisher",
    Severity.MEDIUM,
    "The stager published none of the recent versions.",
)
AUTOMATION_THEN_PERSON = rule(
    "release.automation-then-person",
    Severity.HIGH,
    "The last release came from trusted automation (or had provenance); this one was staged "
    "by a person.",
)

RECENT = 5
AUTOMATION = "trusted automation"


@dataclass(frozen=True)
class Publisher:
    version: str
    name: str
    """`_npmUser.name` of the published version ("" if the registry does not say)."""
    automated: bool = False
    """Published by trusted automation (`_npmUser.trustedPublisher`) or with provenance."""


@dataclass(frozen=True)
class ReleaseFacts:
    version: str
    tag: str
    actor: str
    actor_type: str
    """The stage's `actorType`: "user" or "trusted automation"."""
    dist_tags: Mapping[str, str] = field(default_factory=dict)
    publishers: Sequence[Publisher] = ()
    """Published versions, any order (placeholders and the staged version are left out)."""


def release_findings(facts: ReleaseFacts) -> list[Finding]:
    found: list[Finding] = []
    downgrade = _tag_downgrade(facts)
    if downgrade is not None:
        found.append(downgrade)
    found += _publishers(facts)
    return found


def _tag_downgrade(facts: ReleaseFacts) -> Finding | None:
    current = facts.dist_tags.get(facts.tag) if facts.tag else None
    if not current or current == facts.version:
        return None
    try:
        lower = nodesemver.lt(facts.version, current, True)
    except (ValueError, TypeError):
        return None
    if not lower:
        return None
    return make(
        TAG_DOWNGRADE,
        f"Approving would move {facts.tag} from {current} back to {facts.version}",
        key=f"{facts.tag}:{current}->{facts.version}",
    )


def _publishers(facts: ReleaseFacts) -> list[Finding]:
    recent = _recent(facts.publishers, facts.version)
    if not recent or not facts.actor:
        return []
    found: list[Finding] = []
    names = [p.name for p in recent if p.name]
    if names and facts.actor not in names:
        shown = ", ".join(dict.fromkeys(names))
        found.append(
            make(
                NEW_PUBLISHER,
                f"Staged by {facts.actor}; the last {len(recent)} versions were published by "
                f"{shown}",
                key=f"{facts.actor}:{shown}",
            )
        )
    last = recent[0]
    if last.automated and facts.actor_type != AUTOMATION:
        found.append(
            make(
                AUTOMATION_THEN_PERSON,
                f"{last.version} came from trusted automation; this version was staged by a "
                f"person ({facts.actor})",
                key=f"{last.version}:{facts.actor}",
            )
        )
    return found


def _recent(publishers: Sequence[Publisher], staged: str) -> list[Publisher]:
    """The published versions just below the staged one (else the highest), highest first."""
    valid = [p for p in publishers if nodesemver.valid(p.version, True) is not None]
    valid.sort(key=functools.cmp_to_key(_compare), reverse=True)
    below = [p for p in valid if _lt(p.version, staged)]
    return (below or valid)[:RECENT]


def _compare(a: Publisher, b: Publisher) -> int:
    return int(nodesemver.compare(a.version, b.version, True))


def _lt(a: str, b: str) -> bool:
    try:
        return bool(nodesemver.lt(a, b, True))
    except (ValueError, TypeError):
        return False
