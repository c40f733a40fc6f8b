"""The one package.json parser: bounded before it parses, a sentence instead of an exception."""

from __future__ import annotations

import json

import pytest

from reviews.inspect.manifest import (
    MAX_MANIFEST_BYTES,
    MAX_MANIFEST_DEPTH,
    nests_deeper_than,
    parse_manifest,
)


def nested(depth: int, opener: str = "[", closer: str = "]") -> str:
    return '{"name": "x", "deep": ' + opener * depth + closer * depth + "}"


def test_a_manifest_is_read_as_npm_reads_it():
    data = b'\xef\xbb\xbf{"scripts": {"test": "a"}, "scripts": {"test": "b"}}'

    parsed = parse_manifest(data)

    assert parsed.readable
    assert parsed.problem == ""
    assert parsed.document["scripts"] == {"test": "b"}  # the last one wins, as in JavaScript


def test_nesting_up_to_the_limit_is_read():
    # The manifest itself is one level; the value fills the rest.
    parsed = parse_manifest(nested(MAX_MANIFEST_DEPTH - 1).encode())

    assert parsed.readable, parsed.problem


def test_one_level_past_the_limit_is_refused_before_parsing():
    # Python's parser reads this depth without trouble: only the bound refuses it.
    json.loads(nested(MAX_MANIFEST_DEPTH))

    parsed = parse_manifest(nested(MAX_MANIFEST_DEPTH).encode())

    assert not parsed.readable
    assert parsed.document == {}
    assert parsed.problem == (
        f"package.json nests too deeply to read (more than {MAX_MANIFEST_DEPTH} levels)."
    )


@pytest.mark.parametrize(("opener", "closer"), [("[", "]"), ('{"a":', "}")])
def test_a_hundred_thousand_levels_are_a_sentence_not_a_recursion_error(opener, closer):
    data = nested(100_000, opener, closer).encode()

    parsed = parse_manifest(data, "The staged package.json")

    assert parsed.problem.startswith("The staged package.json nests too deeply")


def test_brackets_inside_strings_do_not_count():
    text = json.dumps({"a": "[" * 500, "b": '\\"{' * 500, "c": ["]" * 500]})

    assert not nests_deeper_than(text, 3)
    assert parse_manifest(text.encode()).readable


def test_an_unterminated_string_hides_no_brackets_after_it():
    assert not nests_deeper_than('{"a": "[[[[[[', 2)
    assert nests_deeper_than('{"a": "x", "b": [[[', 2)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (None, "package.json is missing."),
        (b" " * (MAX_MANIFEST_BYTES + 1), "over the 1,048,576 read"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"{nope", "not valid JSON"),
        (b'{"a": NaN}', "not valid JSON"),
        (b'{"n": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b"[1]", "not a JSON object"),
    ],
)
def test_what_cannot_be_read_says_why(data, problem):
    parsed = parse_manifest(data)

    assert problem in parsed.problem
    assert parsed.document == {}
