"""The tar reader's shortcuts for the usual header give what the general rules give."""

from __future__ import annotations

import random

from reviews.inspect.tar_rules import (
    MAX_DEPTH,
    InstallPath,
    byte_sum,
    decode_string,
    install_path,
    js_cut_at_nul,
    peel_roots,
    strip_absolute_path,
)


def test_decoding_a_padded_field_equals_decoding_it_whole_then_cutting():
    rng = random.Random(5)
    alphabet = [b"\0", b"a", b"/", b"\n", b"\r", b"\xe2", b"\x80", b"\xa8", b"\xc3", b"\xff"]
    for _ in range(20_000):
        field = b"".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))
        field += b"\0" * rng.randrange(0, 4)
        assert decode_string(field) == js_cut_at_nul(field.decode("utf-8", "replace")), field


def test_byte_sum_is_the_sum_of_the_bytes():
    rng = random.Random(7)
    for size in (0, 1, 255, 256, 257, 511, 512, 513, 1500):
        for fill in (0, 255, None):
            data = bytes(rng.randrange(256) if fill is None else fill for _ in range(size))
            assert byte_sum(data) == sum(data)


def test_the_rootless_shortcut_peels_what_the_loop_peels():
    rng = random.Random(11)
    for _ in range(20_000):
        path = "".join(rng.choice("/\\:.aZ?") for _ in range(rng.randrange(0, 8)))
        assert strip_absolute_path(path) == peel_roots(path), path


def test_install_path_shortcut_equals_the_general_rule():
    rng = random.Random(13)
    for _ in range(20_000):
        path = "".join(rng.choice(["a", "/", "\\", ".", "..", "C:", ""]) for _ in range(6))
        assert install_path(path) == _general_install_path(path), path


def _general_install_path(entry_path: str) -> InstallPath:
    """`install_path` as first written, without the shortcut."""
    stripped_parts = entry_path.split("/")[1:]
    if len(stripped_parts) > MAX_DEPTH:
        return InstallPath(None, "depth")
    root, rest = peel_roots("/".join(stripped_parts))
    if ".." in rest.replace("\\", "/").split("/"):
        return InstallPath(None, "parent")
    resolved = "/".join(part for part in rest.split("/") if part not in ("", "."))
    if not resolved:
        return InstallPath(None, "package-folder")
    return InstallPath(resolved, root_stripped=bool(root))
