"""Which published version a stage is compared with, and the sentence that says why."""

from __future__ import annotations

import pytest

from reviews.inspect.baseline import STAGE_PLACEHOLDER, BaselineRule, choose_baseline


def test_the_version_the_tag_points_to_now_comes_first():
    baseline = choose_baseline(
        "15.1.0",
        published=["15.0.3", "15.0.4", "15.1.0-canary.7", "14.2.20"],
        dist_tags={"latest": "15.0.4", "canary": "15.1.0-canary.7"},
        tag="latest",
    )

    assert (baseline.version, baseline.rule) == ("15.0.4", BaselineRule.TAG)
    assert baseline.sentence == "Compared with 15.0.4, the version the “latest” tag points to now."


def test_a_prerelease_on_next_is_compared_with_what_next_points_to():
    baseline = choose_baseline(
        "3.0.0-rc.2",
        published=["2.9.0", "3.0.0-rc.1", "3.0.0-beta.4"],
        dist_tags={"latest": "2.9.0", "next": "3.0.0-rc.1"},
        tag="next",
    )

    assert (baseline.version, baseline.rule) == ("3.0.0-rc.1", BaselineRule.TAG)


def test_a_new_tag_falls_back_to_the_highest_version_below_by_semver():
    baseline = choose_baseline(
        "2.0.0-rc.1",
        published=["1.10.0", "1.9.0", "2.0.0-beta.10", "2.0.0-beta.9", "2.1.0"],
        dist_tags={"latest": "2.1.0"},
        tag="next",
    )

    # beta.10 > beta.9 numerically, and any 2.0.0 prerelease < 2.0.0-rc.1 < 2.1.0
    assert (baseline.version, baseline.rule) == ("2.0.0-beta.10", BaselineRule.BELOW)
    assert baseline.sentence == (
        "Compared with 2.0.0-beta.10, the highest published version below 2.0.0-rc.1."
    )


def test_semver_order_not_string_order():
    baseline = choose_baseline("1.10.1", published=["1.9.0", "1.10.0", "1.2.0"], tag="beta")

    assert baseline.version == "1.10.0"


def test_a_release_is_above_its_own_prereleases():
    baseline = choose_baseline("2.0.0", published=["1.0.0", "2.0.0-rc.3"], tag="latest")

    assert (baseline.version, baseline.rule) == ("2.0.0-rc.3", BaselineRule.BELOW)


def test_with_nothing_below_the_highest_published_version_is_used():
    baseline = choose_baseline(
        "1.5.1", published=["2.0.0", "3.0.0-alpha.1", "2.5.0"], dist_tags={}, tag="v1-backports"
    )

    assert (baseline.version, baseline.rule) == ("3.0.0-alpha.1", BaselineRule.HIGHEST)
    assert "none is below 1.5.1" in baseline.sentence


def test_a_tag_pointing_at_the_staged_version_or_nowhere_is_skipped():
    unpublished_target = choose_baseline(
        "1.1.0", published=["1.0.0"], dist_tags={"latest": "9.9.9"}, tag="latest"
    )

    assert (unpublished_target.version, unpublished_target.rule) == ("1.0.0", BaselineRule.BELOW)


def test_the_stage_placeholder_never_counts():
    baseline = choose_baseline(
        "1.0.0",
        published=[STAGE_PLACEHOLDER],
        dist_tags={"latest": STAGE_PLACEHOLDER},
        tag="latest",
    )

    assert (baseline.version, baseline.rule) == (None, BaselineRule.NONE)
    assert baseline.first_release
    assert baseline.sentence.startswith("First release")


def test_a_first_release_has_no_baseline():
    baseline = choose_baseline("0.1.0", published=[], dist_tags=None, tag="latest")

    assert baseline.rule is BaselineRule.NONE
    assert baseline.version is None


def test_versions_that_are_not_semver_are_ignored():
    baseline = choose_baseline("1.0.1", published=["garbage", "1.0.0", "", "latest"], tag="x")

    assert baseline.version == "1.0.0"


def test_the_reviewer_can_pick_another_published_version():
    baseline = choose_baseline(
        "2.0.0",
        published=["1.0.0", "1.5.0"],
        dist_tags={"latest": "1.5.0"},
        tag="latest",
        requested="1.0.0",
    )

    assert (baseline.version, baseline.rule) == ("1.0.0", BaselineRule.REQUESTED)
    assert baseline.sentence == "Compared with 1.0.0, the version you chose."
    with pytest.raises(ValueError, match="not a published version"):
        choose_baseline("2.0.0", published=["1.0.0"], requested=STAGE_PLACEHOLDER)


def test_every_rule_has_a_summary():
    assert {rule.summary for rule in BaselineRule} >= {"none: a first release"}
    assert BaselineRule.TAG.summary == "the version the stage's dist-tag points to now"
