"""What `make mutation` mutates, and which tests may kill each module's mutants.

A module's own tests, not the whole suite: mutmut first runs the listed tests once to learn
which test reaches which function, then runs only those tests against each mutant, so a narrow
list keeps a run short. `functions` narrows a large module to the functions where a bug is a
security hole (glob patterns on mutmut's names: `x_name` for a function, `xǁClassǁname` for
a method). tools/mutation.py reads this; tests/MUTATION.md lists the accepted survivors.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    module: str  # the file to mutate
    tests: tuple[str, ...]  # pytest paths or node ids whose failures kill its mutants
    functions: tuple[str, ...] = ()  # only these (glob on mutmut's function names); all if empty

    @property
    def dotted(self) -> str:
        return self.module.removesuffix(".py").replace("/", ".")

    @property
    def slug(self) -> str:
        return self.dotted.removeprefix("reviews.").replace(".", "-")


TAR_TESTS = (
    "tests/inspect/test_archive.py",
    "tests/inspect/test_archive_hostile.py",
    "tests/inspect/test_archive_npm_rules.py",
    "tests/inspect/test_archive_bounds.py",
)

RULES_TESTS = (
    "tests/inspect/test_rules.py",
    "tests/inspect/test_rules_package.py",
    "tests/inspect/test_rules_replays.py",
    "tests/inspect/test_rules_findings.py",
    "tests/inspect/test_rules_engine.py",
)

TARGETS: tuple[Target, ...] = (
    # Who sees which stage, team and audit entry; what a pattern matches.
    Target(
        "reviews/teams/access.py",
        (
            "tests/teams/test_visibility.py",
            "tests/teams/test_patterns.py",
            "tests/teams/test_url_access.py",
            "tests/api/test_access.py",
        ),
    ),
    # The hash chain that makes the audit trail tamper-evident.
    Target("reviews/audit/trail.py", ("tests/audit",)),
    # What a reviewer is told the new package.json changes (install hooks, bin, dependencies).
    Target("reviews/inspect/manifest_diff.py", ("tests/inspect/test_manifest_diff.py",)),
    # The decision claim (one decision per stage) and the mapping of registry answers.
    Target(
        "reviews/decide/decisions.py",
        (
            "tests/decide/test_approve.py",
            "tests/decide/test_reject.py",
            "tests/decide/test_concurrency.py",
            "tests/decide/test_registry_answers.py",
            "tests/decide/test_unanswered.py",
            "tests/decide/test_policy.py",
            "tests/decide/test_outcome_kinds.py",
        ),
        functions=(
            "x_claim_decision",
            "x_release_decision",
            "x_factor_of",
            "x__refused_before_claim",
            "x_confirm_decidable",
            "x__answer",
            "x_unanswered_error",
            "x_settled_outcome",
            "x_already_decided",
        ),
    ),
    # Where a webhook may be posted: the address checks, at save and at send time.
    Target(
        "reviews/notify/webhooks.py",
        ("tests/notify/test_webhook_destinations.py", "tests/notify/test_webhooks.py"),
        functions=(
            "x_validate_url",
            "x_check_destination",
            "x_resolve",
            "x_embedded_ipv4",
            "x_is_off_limits",
            "x_destination_of",
            "x_ascii_host",
            "x_post",
            "xǁPinnedAdapterǁget_connection_with_tls_context",
        ),
    ),
    # Stages that left the listing: approved, rejected or still staged, as the registry says.
    Target(
        "reviews/mirror/sync.py",
        ("tests/mirror/test_sync_pass.py", "tests/mirror/test_audit_events.py"),
        functions=("x__resolve_vanished", "x_reconcile_stage", "x_resolve_stage"),
    ),
    # The tarball reader: where each file lands (paths, folders, collisions) and the limits
    # that stop a hostile tarball; the header decoding is checked against npm by
    # tests/inspect/test_npm_differential.py.
    Target(
        "reviews/inspect/tar_rules.py",
        TAR_TESTS,
        functions=(
            "x_install_path",
            "x_strip_absolute_path",
            "x_peel_roots",
            "x__is_separator",
            "x__is_drive_letter",
            "x__win32_root",
            "x__unc_root_end",
            "x_posix_basename",
            "xǁPackageFolderǁ*",
            "x__utf8_length",
            "x_decode_number",
            "x__pax_size",
        ),
    ),
    Target(
        "reviews/inspect/archive.py",
        TAR_TESTS,
        functions=(
            "xǁ_Inflaterǁ_count",
            "xǁ_Readerǁ_check",
            "xǁ_Readerǁ_read_meta",
            "xǁ_Readerǁ_target",
            "xǁ_Readerǁ_place",
            "xǁ_Readerǁ_read_file",
        ),
    ),
    # The risk rules, where a bug hides a threat: the stage's risk and counts (new and changed
    # findings only), a stored finding read back (an unknown status reads as new), and a
    # secret's mask. mutmut leaves properties alone (`Severity.rank`, `counts_for_risk`): the
    # functions here are what kills a bug in them.
    Target(
        "reviews/inspect/rules/findings.py",
        RULES_TESTS,
        functions=(
            "x_highest",
            "x_counts_by_severity",
            "xǁFindingǁfrom_data",
            "x_mask_secret",
        ),
    ),
    # The rules' helper process: its answer whole, each way it can end without one told apart,
    # and never left running. `_answer` and `_leave_the_parent_alone` run only in the forked
    # child, where mutmut does not see which test reaches them (it records in the parent): each
    # of their lines was removed by hand once and a test of test_forked.py failed (MUTATION.md).
    Target(
        "reviews/inspect/rules/forked.py",
        ("tests/inspect/test_forked.py", "tests/inspect/test_rules_helper.py"),
        functions=("x_can_fork", "x_start", "xǁForkedǁ*", "x__payload", "x__send"),
    ),
    # Which files the rules read, which are new (a new finding shown as existing is hidden),
    # and what is skipped, which must be said.
    Target(
        "reviews/inspect/rules/engine.py",
        # test_rules_speed.py checks what the shortcuts leave out (the parse budget among
        # them) and asserts no time: it runs in about 2 s.
        (*RULES_TESTS, "tests/inspect/test_rules_speed.py", "tests/inspect/test_rules_helper.py"),
        functions=(
            "x_assign_statuses",
            "x__scan_jobs_on_two_cores",
            "x__stopped",
            "x_wants_bytes",
            "x__content_changed",
            "x__past_the_parse_budget",
            "x__not_scanned",
            "x__summarised",
        ),
    ),
)
