"""Whether two package patterns can match the same package, and the shortest name they share.

A pattern is a package name in which `*` stands for any run of characters (see access.py). Two
patterns overlap iff some package name matches both. A package name has npm's shape: `name` or
`@scope/name`, each part one or more of `a-z 0-9 - . _ ~`, 214 characters at most. The shape
matters: a `*` runs across the `/` (`*-plugin` matches `@acme/eslint-plugin`), but no name has
two slashes, so `@a/*` and `@*b/c` share no package although both match the string `@a/b/c`.

Method: a shortest-path search over the product of three automata: each pattern as a
non-deterministic automaton (state i: about to match pattern[i]; a star consumes any character
or is skipped) and the name shape as a small deterministic one. The first accepting state
reached spells the shortest shared name; the patterns overlap iff it exists within 214
characters. States are at most (len(a) + 1) * (len(b) + 1) * 5, so this is exact and cheap.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from functools import lru_cache

MAX_NAME_LENGTH = 214  # npm refuses longer names
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-._~")
# Where both patterns are at a star, one name character stands for them all. Never `@` or `/`:
# a scoped pattern spells those itself, and if neither is scoped, a name with `a` in their
# places matches both patterns just as well.
ANY_NAME_CHAR = "a"

# The name shape as a deterministic automaton over these states.
START, SCOPE_FIRST, SCOPE, NAME_FIRST, NAME = range(5)
AFTER_NAME_CHAR = {START: NAME, SCOPE_FIRST: SCOPE, SCOPE: SCOPE, NAME_FIRST: NAME, NAME: NAME}

State = tuple[int, int, int]  # position in pattern a, position in pattern b, shape state


def next_shape(shape: int, char: str) -> int | None:
    """The shape state after `char`, or None if no package name continues that way."""
    if char == "@":
        return SCOPE_FIRST if shape == START else None
    if char == "/":
        return NAME_FIRST if shape == SCOPE else None
    return AFTER_NAME_CHAR[shape] if char in NAME_CHARS else None


def steps(x: str, y: str) -> list[tuple[str, int, int]]:
    """Characters both patterns can read next, at pattern[i] == x and pattern[j] == y, with how
    far each pattern advances on it (a star stays where it is)."""
    if x == "*" and y == "*":
        return [(ANY_NAME_CHAR, 0, 0)]
    if x == "*":
        return [(y, 0, 1)]
    if y == "*":
        return [(x, 1, 0)]
    return [(x, 1, 1)] if x == y else []


def skips(a: str, b: str, state: State) -> Iterator[State]:
    """Moves that read nothing: a star may match the empty run."""
    i, j, shape = state
    if i < len(a) and a[i] == "*":
        yield i + 1, j, shape
    if j < len(b) and b[j] == "*":
        yield i, j + 1, shape


def reads(a: str, b: str, state: State) -> Iterator[tuple[State, str]]:
    """Moves that read one character of the shared name."""
    i, j, shape = state
    if i == len(a) or j == len(b):
        return
    for char, di, dj in steps(a[i], b[j]):
        shape_after = next_shape(shape, char)
        if shape_after is not None:
            yield (i + di, j + dj, shape_after), char


def spell(parents: dict[State, tuple[State, str] | None], state: State) -> str:
    chars: list[str] = []
    step = parents[state]
    while step is not None:
        state, char = step
        chars.append(char)
        step = parents[state]
    return "".join(reversed(chars))


@lru_cache(maxsize=4096)
def shared_name(a: str, b: str) -> str | None:
    """The shortest package name both patterns match, or None if they share none."""
    start: State = (0, 0, START)
    accept: State = (len(a), len(b), NAME)
    # 0-1 breadth-first search: skips cost nothing and go to the front, reads cost one.
    distance = {start: 0}
    parents: dict[State, tuple[State, str] | None] = {start: None}
    queue = deque([(0, start)])
    while queue:
        length, state = queue.popleft()
        if length > distance[state]:
            continue  # already reached more cheaply
        if state == accept:
            return spell(parents, state)
        moves = [(nxt, "", 0) for nxt in skips(a, b, state)]
        if length < MAX_NAME_LENGTH:  # no package name is longer
            moves += [(nxt, char, 1) for nxt, char in reads(a, b, state)]
        for nxt, char, cost in moves:
            if length + cost < distance.get(nxt, MAX_NAME_LENGTH + 1):
                distance[nxt] = length + cost
                parents[nxt] = (state, char)
                if cost:
                    queue.append((length + cost, nxt))
                else:
                    queue.appendleft((length + cost, nxt))
    return None


def patterns_overlap(a: str, b: str) -> bool:
    return shared_name(a, b) is not None
