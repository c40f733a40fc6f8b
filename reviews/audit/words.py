"""The audit trail in words for people: each action's name, and which values are digests
(shown shortened, the full value on hover and to copy)."""

from __future__ import annotations

import re

from reviews.audit.trail import Action

ACTION_WORDS: dict[Action, str] = {
    Action.STAGE_SEEN: "Stage seen",
    Action.STAGE_UPDATED: "Stage changed at the registry",
    Action.TARBALL_VERIFIED: "Tarball verified",
    Action.TARBALL_MISMATCH: "Tarball mismatch",
    Action.TARBALL_UNAVAILABLE: "Tarball unavailable",
    Action.TARBALL_MISMATCH_UNCONFIRMED: "Tarball mismatch, checking again",
    Action.TARBALL_RECHECK_REQUESTED: "Tarball re-check asked for",
    Action.STAGE_ANALYSED: "Analysis finished",
    Action.APPROVED_ELSEWHERE: "Approved outside Greenroom",
    Action.REJECTED_ELSEWHERE: "Rejected outside Greenroom",
    Action.PUBLISHED_DIGEST_CHECKED: "Published digest checked",
    Action.LOGIN: "Logged in",
    Action.LOGIN_FAILED: "Log-in failed",
    Action.TEAM_CREATED: "Team created",
    Action.TEAM_DELETED: "Team deleted",
    Action.MEMBER_ROLE_SET: "Member's role set",
    Action.MEMBER_REMOVED: "Member removed",
    Action.PATTERN_ADDED: "Package pattern added",
    Action.PATTERN_REMOVED: "Package pattern removed",
    Action.OVERLAPPING_PATTERN_ADDED: "Overlapping pattern added by another team",
    Action.OVERLAPPING_PATTERN_REMOVED: "Overlapping pattern removed by another team",
    Action.SETTINGS_CHANGED: "Settings changed",
    Action.NPM_ACCOUNT_LINKED: "npm token linked",
    Action.NPM_ACCOUNT_UNLINKED: "npm token unlinked",
    Action.NPM_KEYS_ROTATED: "npm token keys rotated",
    Action.STAGE_APPROVED: "Approved",
    Action.STAGE_REJECTED: "Rejected",
    Action.DECISION_CHALLENGED: "Second factor asked for",
    Action.DECISION_WRONG_CODE: "Code refused",
    Action.DECISION_REFUSED: "Decision refused",
    Action.DECISION_FAILED: "Decision failed",
    Action.DECISION_CANCELLED: "Security key cancelled",
    Action.DECISION_OUTCOME_UNKNOWN: "No answer from the registry",
    Action.DECISION_OUTCOME_KNOWN: "Outcome known",
    Action.BATCH_CREATED: "Batch started",
    Action.BATCH_FINISHED: "Batch finished",
    Action.PUBLISHED_DIGEST_MISMATCH: "Published digest mismatch",
    Action.TEAM_NOTIFICATIONS_CHANGED: "Team notifications changed",
    Action.TEAM_WEBHOOK_SET: "Team webhook set",
    Action.TEAM_WEBHOOK_REMOVED: "Team webhook removed",
    Action.NOTIFICATION_PREFERENCE_SET: "Email preference set",
    Action.REVIEW_SUBMITTED: "Review submitted",
    Action.COMMENT_ADDED: "Comment added",
    Action.COMMENT_REPLIED: "Reply added",
    Action.COMMENT_RESOLVED: "Comment resolved",
    Action.COMMENT_UNRESOLVED: "Comment reopened",
    Action.TEAM_POLICY_CHANGED: "Review policy changed",
    Action.FINDINGS_ACKNOWLEDGED: "Findings acknowledged",
    Action.PROFILE_NPM_USER_SET: "CI npm user set",
    Action.API_TOKEN_CREATED: "API token made",
    Action.API_TOKEN_REVOKED: "API token revoked",
}

# A hex digest (SHA-1 and longer) or an SRI integrity string.
DIGEST = re.compile(r"[0-9a-f]{40,128}|sha(?:1|256|384|512)-[A-Za-z0-9+/]{20,}={0,2}")
SHOWN_HEX = 12
SHOWN_SRI = 10


def action_words(code: str) -> str:
    """`tarball.verified` → "Tarball verified"; an action this build does not know (an old
    entry) gets its code made readable."""
    try:
        return ACTION_WORDS[Action(code)]
    except (ValueError, KeyError):
        return code.replace(".", ": ").replace("_", " ").capitalize()


def is_digest(value: object) -> bool:
    return isinstance(value, str) and DIGEST.fullmatch(value) is not None


def short_digest(value: str) -> str:
    """The first characters of a digest, enough to tell two apart at a glance."""
    algorithm, dash, rest = value.partition("-")
    if dash and algorithm.startswith("sha"):
        return f"{algorithm}-{rest[:SHOWN_SRI]}"
    return value[:SHOWN_HEX]
