"""Pattern overlap: exact for the pattern syntax, checked against a brute-force search."""

import itertools
import random
import re

import pytest

from reviews.teams.access import is_valid_pattern, pattern_matches
from reviews.teams.overlap import MAX_NAME_LENGTH, patterns_overlap, shared_name

NAME_SHAPE = re.compile(r"^(@[a-z0-9._~-]+/)?[a-z0-9._~-]+$")


@pytest.mark.parametrize(
    ("a", "b", "shared"),
    [
        ("*", "@acme/*", "@acme/a"),
        ("*", "left-pad", "left-pad"),
        ("@acme/*", "@acme/widgets", "@acme/widgets"),
        ("*-plugin", "eslint-*", "eslint-plugin"),
        ("*-plugin", "@acme/*", "@acme/-plugin"),  # a star runs across the scope's slash
        ("@*/*", "*", "@a/a"),  # scope and name are never empty
        ("@acme/ui-*", "@acme/*-icons", "@acme/ui-icons"),
        ("@acme/*", "@acme-evil/*", None),
        ("@acme/*", "left-pad", None),
        ("left-pad", "left-pad2", None),
        ("@acme*", "acme", None),
        ("a*", "*b", "ab"),
        # Both match the string "@a/b/c", but no package name has two slashes.
        ("@a/*", "@*b/c", None),
    ],
)
def test_shared_names(a, b, shared):
    assert shared_name(a, b) == shared
    assert shared_name(b, a) == shared
    assert patterns_overlap(a, b) is (shared is not None)


def test_a_shared_name_must_fit_npms_length_limit():
    longest = MAX_NAME_LENGTH // 2
    name = shared_name("a" * longest + "*", "*" + "b" * longest)
    assert name == "a" * longest + "b" * longest
    assert not patterns_overlap("a" * (longest + 1) + "*", "*" + "b" * longest)


def random_pattern(rng: random.Random) -> str:
    def part() -> str:
        return "".join(rng.choice("ab*") for _ in range(rng.randint(1, 2)))

    pattern = f"@{part()}/{part()}" if rng.random() < 0.5 else part()
    assert is_valid_pattern(pattern)
    return pattern


def names(max_scope: int, max_name: int, max_unscoped: int) -> list[str]:
    """Every package name over the letters a and b up to these lengths. The patterns below
    have parts of at most two characters, so a shared name, if there is one, needs at most
    2 + 2 letters from the patterns plus one filler in each part: five is enough."""

    def words(longest: int) -> list[str]:
        return [
            "".join(letters)
            for length in range(1, longest + 1)
            for letters in itertools.product("ab", repeat=length)
        ]

    scoped = [f"@{scope}/{name}" for scope in words(max_scope) for name in words(max_name)]
    return words(max_unscoped) + scoped


def test_overlap_agrees_with_brute_force():
    rng = random.Random(11)  # fixed: the same patterns on every run
    patterns = sorted({random_pattern(rng) for _ in range(80)})
    candidates = names(max_scope=5, max_name=5, max_unscoped=7)
    matched_by = {
        pattern: {name for name in candidates if pattern_matches(pattern, name)}
        for pattern in patterns
    }
    overlapping = 0
    for a, b in itertools.combinations_with_replacement(patterns, 2):
        common = matched_by[a] & matched_by[b]
        shared = shared_name(a, b)
        assert (shared is not None) == bool(common), (a, b, sorted(common)[:3])
        if shared is not None:
            overlapping += 1
            assert pattern_matches(a, shared), (a, shared)
            assert pattern_matches(b, shared), (b, shared)
            assert NAME_SHAPE.fullmatch(shared), shared
            assert len(shared) == min(len(name) for name in common), (a, b, shared)
    # The sample covers both answers well, so neither can be wrong by default.
    pairs = len(patterns) * (len(patterns) + 1) // 2
    assert 0.2 * pairs < overlapping < 0.8 * pairs
