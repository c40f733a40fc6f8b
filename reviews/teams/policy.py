"""Team review policy: what must be true before the final Approve is offered, and sent.

Per team (team admins edit it, audited): N approving reviews from distinct people with the
reviewer role or above (none of them with "request changes" standing), no self-approval (the
person who staged the version neither counts as a reviewer nor sends the approve), and a tick
for new critical or high findings. Where several teams own a package the strictest policy wins:
the highest N, and each rule that any of them turns on.

The stage page and the decision panel ask `for_person()` before the click; the approve view
and `decisions.decide()` ask `check_approval()` again at the moment of the click, so a policy
that is not met is refused before anything goes to the registry.

"Who staged it" is the stage's `actor` matched to the npm user of a person's linked token, or
to the npm user they stage with from CI, named on their profile (`Profile`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from reviews.audit import trail as audit
from reviews.audit.trail import Action, Actor
from reviews.models import (
    FindingsAcknowledgement,
    Membership,
    NotificationEvent,
    NpmToken,
    Profile,
    Review,
    Role,
    StageBaseline,
    StagedVersion,
    Team,
)
from reviews.teams.access import AnyUser, pattern_matches, role_for_package

Verdict = Review.Verdict
MAX_REQUIRED_APPROVALS = 10
SEVERE = ("critical", "high")
NO_LONGER_REVIEWER = "no longer holds the reviewer role"


@dataclass(frozen=True)
class Policy:
    """The policy that governs one package: the strictest of its owning teams'."""

    required_approvals: int = 0
    no_self_approval: bool = False
    acknowledge_findings: bool = False
    teams: tuple[str, ...] = ()

    @property
    def asks_anything(self) -> bool:
        return bool(self.required_approvals or self.no_self_approval or self.acknowledge_findings)


def owning_teams(package_name: str) -> list[Team]:
    teams = Team.objects.prefetch_related("patterns").order_by("name")
    return [
        team
        for team in teams
        if any(pattern_matches(p.pattern, package_name) for p in team.patterns.all())
    ]


def strictest(teams: list[Team]) -> Policy:
    return Policy(
        required_approvals=max((team.required_approvals for team in teams), default=0),
        no_self_approval=any(team.no_self_approval for team in teams),
        acknowledge_findings=any(team.acknowledge_findings for team in teams),
        teams=tuple(team.name for team in teams),
    )


def policy_for(package_name: str) -> Policy:
    return strictest(owning_teams(package_name))


# -- Who is who at the registry -------------------------------------------------------------------


def stager_ids(stage: StagedVersion) -> set[int]:
    """The portal people the stage's actor is: by linked token or by profile."""
    if not stage.actor:
        return set()
    actor = stage.actor.lower()
    by_token = NpmToken.objects.filter(npm_user__iexact=actor).values_list("user_id", flat=True)
    by_profile = Profile.objects.filter(staging_npm_user__iexact=actor).values_list(
        "user_id", flat=True
    )
    return set(by_token) | set(by_profile)


def maintainers(stage: StagedVersion) -> list[str] | None:
    """The package's maintainers as the packument named them when the baseline was chosen;
    None when the portal has not read them."""
    names = StageBaseline.objects.filter(stage=stage).values_list("maintainers", flat=True).first()
    if not isinstance(names, list):
        return None
    return [str(name) for name in names]


# -- Findings -------------------------------------------------------------------------------------


def new_severe_findings(stage: StagedVersion) -> int:
    """How many critical or high risk findings are new or changed in this stage (not already
    in the baseline): those of the release itself and those the rules found in its files."""
    row = (
        StageBaseline.objects.filter(stage=stage, staged_tarball_id=stage.tarball_id)
        .values_list("release_findings", "analysis__risk_findings")
        .first()
    )
    if row is None:
        return 0
    return sum(
        1
        for findings in row
        if isinstance(findings, list)
        for finding in findings
        if isinstance(finding, dict)
        and str(finding.get("severity", "")).lower() in SEVERE
        and finding.get("status") != "existing"
    )


def acknowledged(stage: StagedVersion, user: AnyUser, count: int) -> bool:
    if count == 0:
        return True
    if not isinstance(user, User):
        return False
    return FindingsAcknowledgement.objects.filter(
        stage=stage, user=user, shasum=stage.shasum, count__gte=count
    ).exists()


def acknowledge_findings(stage: StagedVersion, user: User, count: int, actor: Actor) -> None:
    """The person ticked "I have read the N critical/high findings" (audited)."""
    with transaction.atomic():
        FindingsAcknowledgement.objects.update_or_create(
            stage=stage,
            user=user,
            defaults={"count": count, "shasum": stage.shasum, "acknowledged_at": timezone.now()},
        )
        audit.record(Action.FINDINGS_ACKNOWLEDGED, actor, stage=stage, payload={"count": count})


# -- Where the reviews stand ----------------------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    """One person's standing verdict: their latest approve or request-changes review (a plain
    comment adds text without changing it)."""

    user_id: int
    username: str
    verdict: str
    current: bool  # given on the tarball the stage has now
    counts: bool
    why_not: str = ""


@dataclass(frozen=True)
class ApprovalState:
    """Where a stage's reviews stand under its policy, read once for a page or a click."""

    policy: Policy
    standings: list[Standing]
    findings: int
    teams: list[Team] = field(default_factory=list)
    stagers: set[int] = field(default_factory=set)
    maintainers: list[str] | None = None

    @property
    def approvals(self) -> list[str]:
        return [s.username for s in self.standings if s.counts]

    @property
    def not_counted(self) -> list[Standing]:
        return [s for s in self.standings if s.verdict == Verdict.APPROVE and not s.counts]

    @property
    def changes_requested(self) -> list[str]:
        return [
            s.username
            for s in self.standings
            if s.verdict == Verdict.REQUEST_CHANGES and s.why_not != NO_LONGER_REVIEWER
        ]

    @property
    def approvals_missing(self) -> int:
        return max(0, self.policy.required_approvals - len(self.approvals))

    @property
    def blocked_by_changes(self) -> bool:
        return bool(self.policy.required_approvals and self.changes_requested)

    def missing(self) -> list[str]:
        """What the stage still lacks under its policy, whoever clicks."""
        found = []
        if self.approvals_missing:
            n = self.approvals_missing
            found.append(
                f"{n} more approving review{'' if n == 1 else 's'} "
                f"({self.policy.required_approvals} required, {len(self.approvals)} so far)"
            )
        if self.blocked_by_changes:
            found.append(f"changes requested by {', '.join(self.changes_requested)} to be settled")
        return found


def standings(stage: StagedVersion, policy: Policy, stagers: set[int]) -> list[Standing]:
    stagers = stagers if policy.no_self_approval else set()
    latest: dict[int, Review] = {}
    for review in stage.reviews.exclude(verdict=Verdict.COMMENT).exclude(author=None):
        assert review.author_id is not None
        latest[review.author_id] = review  # ordered by creation: the last one stands
    users = User.objects.in_bulk(list(latest))
    found = []
    for user_id, review in latest.items():
        user = users.get(user_id)
        role = role_for_package(user, stage.package_name) if user and user.is_active else None
        why = ""
        if role is None or role < Role.REVIEWER:
            why = NO_LONGER_REVIEWER
        elif review.shasum != stage.shasum:
            why = "reviewed an earlier tarball"
        elif user_id in stagers:
            why = "staged this version"
        found.append(
            Standing(
                user_id,
                review.author_name,
                review.verdict,
                current=review.shasum == stage.shasum,
                counts=review.verdict == Verdict.APPROVE and not why,
                why_not=why,
            )
        )
    return found


def approval_state(stage: StagedVersion) -> ApprovalState:
    teams = owning_teams(stage.package_name)
    policy = strictest(teams)
    stagers = stager_ids(stage)
    return ApprovalState(
        policy,
        standings(stage, policy, stagers),
        new_severe_findings(stage),
        teams=teams,
        stagers=stagers,
        maintainers=maintainers(stage),
    )


# -- One person, before the click and at the click -----------------------------------------------


@dataclass(frozen=True)
class PersonCheck:
    """What stands between this person and the final Approve: `reasons` (the button is
    disabled with them) and `notes` (said, not blocking)."""

    state: ApprovalState
    role: Role | None
    npm_user: str
    staged_it: bool
    maintainer: bool | None  # None: the package's maintainers are not known
    reasons: list[str] = field(default_factory=list)

    @property
    def may_approve(self) -> bool:
        return not self.reasons


def policy_reasons(stage: StagedVersion, user: AnyUser, state: ApprovalState) -> list[str]:
    """The policy's refusals for this person, in plain words (empty: the policy is met)."""
    reasons = []
    if state.policy.no_self_approval and user.pk in state.stagers:
        reasons.append(
            f"You staged this version (npm user {stage.actor}), and the team policy forbids "
            "approving your own stage: someone else must send the approve."
        )
    reasons += [f"The team policy needs {what}." for what in state.missing()]
    return reasons


def for_person(stage: StagedVersion, user: AnyUser, npm_user: str | None) -> PersonCheck:
    """Said on the stage page before the click: may this person approve, and if not, why."""
    state = approval_state(stage)
    role = role_for_package(user, stage.package_name)
    names = state.maintainers
    maintainer = None if names is None or not npm_user else npm_user in names
    reasons = []
    if role is None or role < Role.APPROVER:
        reasons.append(
            f"Approving needs the approver role in a team that owns {stage.package_name}."
        )
    if not npm_user:
        reasons.append("Link your npm token first: the registry decides as you.")
    reasons += policy_reasons(stage, user, state)
    if maintainer is False:
        reasons.append(
            f"npm user {npm_user} is not a maintainer of {stage.package_name} at the registry, "
            "which would refuse the approval."
        )
    return PersonCheck(
        state, role, npm_user or "", user.pk in state.stagers, maintainer, reasons=reasons
    )


@dataclass(frozen=True)
class Gate:
    """`check_approval()`'s answer: the refusal (empty: go ahead) and what the decision's
    audit entry records about the policy."""

    refusal: str
    audit: dict[str, Any]


def check_approval(stage: StagedVersion, user: AnyUser) -> Gate:
    """At the moment of the click: is the policy met for this person's final approve?"""
    state = approval_state(stage)
    reasons = policy_reasons(stage, user, state)
    findings_needed = state.policy.acknowledge_findings and state.findings > 0
    if findings_needed and not acknowledged(stage, user, state.findings):
        reasons.append(
            f"Tick \N{LEFT DOUBLE QUOTATION MARK}I have read the {state.findings} critical/high "
            "findings\N{RIGHT DOUBLE QUOTATION MARK} first."
        )
    details: dict[str, Any] = {}
    if state.policy.required_approvals or state.approvals:
        details["approving_reviews"] = state.approvals
        details["required_approvals"] = state.policy.required_approvals
    if findings_needed:
        details["findings_acknowledged"] = state.findings
    return Gate(" ".join(reasons), details)


# -- Who may decide, for the page -----------------------------------------------------------------


@dataclass(frozen=True)
class Decider:
    username: str
    npm_user: str
    maintainer: bool | None
    staged_it: bool


def deciders(state: ApprovalState) -> list[Decider]:
    """The people who may send the final approve in the portal (approver role or above in an
    owning team), with their npm user and whether the registry lists them as a maintainer."""
    names, stagers = state.maintainers, state.stagers
    members = (
        Membership.objects.filter(
            team__in=state.teams, role__gte=Role.APPROVER, user__is_active=True
        )
        .select_related("user")
        .order_by("user__username")
    )
    tokens = dict(
        NpmToken.objects.filter(user__in=[m.user_id for m in members]).values_list(
            "user_id", "npm_user"
        )
    )
    found: dict[int, Decider] = {}
    for membership in members:
        npm_user = tokens.get(membership.user_id, "")
        found.setdefault(
            membership.user_id,
            Decider(
                membership.user.get_username(),
                npm_user,
                None if names is None or not npm_user else npm_user in names,
                membership.user_id in stagers,
            ),
        )
    return list(found.values())


# -- Changes: the policy, and a person's CI npm user ----------------------------------------------


@transaction.atomic
def set_policy(
    team: Team,
    actor: Actor,
    *,
    required_approvals: int,
    no_self_approval: bool,
    acknowledge_findings: bool,
) -> bool:
    """Change a team's review policy, audited and announced to its members; False if nothing
    changed."""
    if not 0 <= required_approvals <= MAX_REQUIRED_APPROVALS:
        raise ValueError(f"required approvals must be 0 to {MAX_REQUIRED_APPROVALS}")
    current = Team.objects.select_for_update().get(pk=team.pk)
    new = {
        "required_approvals": required_approvals,
        "no_self_approval": no_self_approval,
        "acknowledge_findings": acknowledge_findings,
    }
    changes = {
        name: {"old": getattr(current, name), "new": value}
        for name, value in new.items()
        if getattr(current, name) != value
    }
    if not changes:
        return False
    Team.objects.filter(pk=team.pk).update(**new, policy_changed_at=timezone.now())
    entry = audit.record(
        Action.TEAM_POLICY_CHANGED, actor, target=f"team:{team.slug}", payload=changes
    )
    NotificationEvent.objects.record(
        NotificationEvent.Kind.POLICY, None, team=team, number=entry.pk
    )
    team.refresh_from_db()
    return True


def staging_npm_user(user: User) -> str:
    return (
        Profile.objects.filter(user=user).values_list("staging_npm_user", flat=True).first() or ""
    )


@transaction.atomic
def set_staging_npm_user(user: User, name: str, actor: Actor) -> bool:
    """The npm user this person stages with from CI ("" for none), audited; False if
    unchanged. It only ever adds a name they count as the stager by, never removes one."""
    old = staging_npm_user(user)
    if old == name:
        return False
    Profile.objects.update_or_create(
        user=user, defaults={"staging_npm_user": name, "updated_at": timezone.now()}
    )
    audit.record(
        Action.PROFILE_NPM_USER_SET,
        actor,
        target=f"user:{user.get_username()}",
        payload={"person": user.get_username(), "old": old, "new": name},
    )
    return True
