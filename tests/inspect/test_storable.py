"""Text from a tarball made storable: NUL and lone surrogates become visible markers."""

from __future__ import annotations

from reviews.inspect.storable import NUL_MARKER, SURROGATE_MARKER, storable, storable_text


def test_ordinary_text_is_kept_as_it_is():
    for text in ("", "node install.js", "caf\u00e9 \u202e \U0001f600"):
        assert storable_text(text) == text


def test_nul_and_lone_surrogates_become_markers():
    assert storable_text("a\0b\0") == f"a{NUL_MARKER}b{NUL_MARKER}"
    assert storable_text("x\ud800y\udfff") == f"x{SURROGATE_MARKER}y{SURROGATE_MARKER}"
    assert NUL_MARKER == "\u2400"


def test_json_data_is_made_storable_keys_and_values_recursively():
    value = {"k\0": ["v\0", ("t\0", 1), {"deep\0": None, "n": 2.5, "b": True}]}

    assert storable(value) == {
        "k\u2400": ["v\u2400", ("t\u2400", 1), {"deep\u2400": None, "n": 2.5, "b": True}]
    }
    assert value == {"k\0": ["v\0", ("t\0", 1), {"deep\0": None, "n": 2.5, "b": True}]}
