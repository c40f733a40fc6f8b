"""One bounded pass over a file's bytes that says where the interesting tokens are.

Every file the rules look at goes through `find_anchors()` first: one Aho-Corasick pass (all
tokens at once, in native code, several hundred MB/s) and a few byte checks around each hit
(word boundaries, the module name after `require(`). A code file without a single *trigger*
anchor is never parsed. The parser then judges each anchor in context (a call or a comment, a
string or an identifier), so the tokens can be generous without costing precision.

Anchors are capped per file (`MAX_ANCHORS`); past the cap the rest are ignored and the caller is
told (`Anchors.truncated`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

import ahocorasick_rs

__all__ = [
    "INTERESTING_MODULES",
    "MAX_ANCHORS",
    "Anchor",
    "Anchors",
    "Kind",
    "find_anchors",
    "module_name_after",
]

MAX_ANCHORS = 5_000
MAX_MODULE_NAME = 64
LONG_LINE = 1_000
"""Files with a line this long get the encoded-literal search (base64 or hex runs)."""
ENCODED_RUN = 200
"""Characters of base64 or hex in one run that make an encoded literal worth a look."""


class Kind(StrEnum):
    # Triggers: any of these in a code file means it is parsed.
    IMPORT = "import"
    COMPUTED_REQUIRE = "computed-require"
    EVAL = "eval"
    FUNCTION = "function"
    COMPILE = "compile"
    TIMER_STRING = "timer-string"
    ENV = "env"
    NETWORK_GLOBAL = "network-global"
    CREDENTIAL_PATH = "credential-path"
    CREDENTIAL_WORD = "credential-word"
    """A word that names a credential store only in a path (Cookies, Local State, ...)."""
    HOMEDIR = "homedir"
    PERSISTENCE_PATH = "persistence-path"
    PERSISTENCE_WORD = "persistence-word"
    """A word that names a start-up place only in a path (Startup, systemd, .profile)."""
    DESTRUCTIVE = "destructive"
    WALK = "walk"
    HEX_IDENTIFIER = "hex-identifier"
    HEX_ESCAPE = "hex-escape"
    DOWNLOAD = "download"
    ENCODED = "encoded"
    # Secondary: looked at only in a file parsed for a trigger.
    DECODER = "decoder"
    """Only makes a walk-and-write more suspicious (the walk is the trigger)."""
    WRITE = "write"
    URL = "url"
    # Text: need no parser (any text file).
    HIDDEN_CHAR = "hidden-char"
    SECRET = "secret"  # noqa: S105 (a kind of anchor, not a password)

    @property
    def triggers_parse(self) -> bool:
        return self not in _NOT_TRIGGERS


_NOT_TRIGGERS = frozenset(
    {
        Kind.DECODER,
        Kind.WRITE,
        Kind.URL,
        Kind.HIDDEN_CHAR,
        Kind.SECRET,
        Kind.CREDENTIAL_WORD,
        Kind.PERSISTENCE_WORD,
    }
)

INTERESTING_MODULES = frozenset(
    {
        "child_process",
        "http",
        "https",
        "http2",
        "net",
        "tls",
        "dgram",
        "dns",
        "dns/promises",
        "vm",
    }
)


@dataclass(frozen=True, slots=True)
class Anchor:
    kind: Kind
    start: int
    end: int
    detail: str = ""
    """The module name of an import; empty otherwise."""
    weak: bool = False
    """A trigger token in a shape no rule reports (`fetch` not called, `'unsafe-eval'`): kept
    for the rules that count such tokens, but it does not make a file parsed."""


@dataclass(slots=True)
class Anchors:
    by_kind: dict[Kind, list[Anchor]] = field(default_factory=lambda: defaultdict(list))
    truncated: bool = False

    def __bool__(self) -> bool:
        return any(self.by_kind.values())

    def of(self, *kinds: Kind) -> list[Anchor]:
        found: list[Anchor] = []
        for kind in kinds:
            found.extend(self.by_kind.get(kind, ()))
        found.sort(key=lambda anchor: anchor.start)
        return found

    @property
    def wants_parse(self) -> bool:
        return any(
            kind.triggers_parse and any(not hit.weak for hit in hits)
            for kind, hits in self.by_kind.items()
        )

    @property
    def kinds(self) -> set[Kind]:
        return {kind for kind, hits in self.by_kind.items() if hits}


# -- The tokens -------------------------------------------------------------------------------

_IMPORT_TOKENS = (b"require(", b"require (", b"import(", b"import (")
"""Followed by a quoted name (an interesting module, or none) or a computed one."""
_QUOTED_IMPORTS = (
    b"from'",
    b'from"',
    b"from '",
    b'from "',
    b"import'",
    b'import"',
    b"import '",
    b'import "',
)
"""Followed by the quoted module name: the tokens are written out whole with each interesting
name (`from 'https'`), so that the thousands of other imports of a bundle never match."""
_PLAIN: dict[Kind, tuple[bytes, ...]] = {
    Kind.EVAL: (b"eval",),
    Kind.FUNCTION: (b"Function",),
    Kind.COMPILE: (b"_compile", b"module.constructor"),
    Kind.TIMER_STRING: (b"setTimeout(", b"setInterval(", b"setImmediate("),
    Kind.ENV: (b"process.env", b"process[", b"process .env"),
    Kind.NETWORK_GLOBAL: (b"fetch", b"XMLHttpRequest", b"WebSocket", b"sendBeacon"),
    Kind.CREDENTIAL_PATH: (
        b".npmrc",
        b".yarnrc",
        b".ssh",
        b".aws",
        b".config/gh",
        b"id_rsa",
        b"id_ed25519",
        b"id_ecdsa",
        b".git-credentials",
        b".netrc",
        b".pypirc",
        b".docker/config",
        b".kube/config",
        b".gnupg",
        b"wallet.dat",
        b".bitcoin",
        b".ethereum",
        b"nkbihfbeogaeaoehlefnkodbefgpgknn",
        b"solana/id.json",
        b"Google/Chrome",
        b"Google\\\\Chrome",
        b"BraveSoftware",
        b"Mozilla/Firefox",
    ),
    Kind.CREDENTIAL_WORD: (
        b"Login Data",
        b"Local Storage",
        b"Local State",
        b"Cookies",
        b"keystore",
        b"Exodus",
        b"Electrum",
        b"MetaMask",
    ),
    Kind.HOMEDIR: (b"homedir", b"$HOME", b"USERPROFILE", b"~/"),
    Kind.PERSISTENCE_PATH: (
        b".bashrc",
        b".zshrc",
        b".bash_profile",
        b"crontab",
        b"/etc/cron",
        b".github/workflows",
        b"LaunchAgents",
        b"LaunchDaemons",
        b"CurrentVersion\\\\Run",
        b".git/hooks",
    ),
    Kind.PERSISTENCE_WORD: (b"systemd", b"Startup", b"autostart", b".profile"),
    Kind.DESTRUCTIVE: (b"rmSync", b"rmdirSync", b"rimraf", b"rm -rf", b"rm -fr", b"del /s"),
    Kind.WALK: (b"readdirSync", b"readdir(", b"opendirSync", b"walkSync"),
    Kind.HEX_IDENTIFIER: (b"_0x",),
    Kind.HEX_ESCAPE: (b"\\x",),
    Kind.DECODER: (
        b"atob(",
        b"fromCharCode",
        b"createDecipher",
        b"'base64'",
        b'"base64"',
        b"'hex'",
        b'"hex"',
    ),
    Kind.DOWNLOAD: (
        b"curl ",
        b"wget ",
        b"Curl ",  # the rule reads commands case-insensitively, as shells on Windows do
        b"CURL ",
        b"Wget ",
        b"WGET ",
        b"certutil",
        b"Invoke-WebRequest",
        b"Invoke-Expression",
        b"DownloadString",
        b"DownloadFile",
        b"Start-BitsTransfer",
        b"bitsadmin",
        b"iwr ",
        b"powershell",
        b"| sh",
        b"|sh",
        b"| bash",
        b"|bash",
        b"chmod +x",
        b"chmod 777",
    ),
    Kind.WRITE: (
        b"writeFile",
        b"appendFile",
        b"createWriteStream",
        b"unlink",
        b"copyFile",
        b"truncate",
    ),
    Kind.URL: (b"http://", b"https://", b"ws://", b"wss://"),
    Kind.SECRET: (
        b"npm_",
        b"ghp_",
        b"gho_",
        b"ghu_",
        b"ghs_",
        b"ghr_",
        b"github_pat_",
        b"AKIA",
        b"ASIA",
        b"-----BEGIN",
        b"xoxb-",
        b"xoxp-",
        b"xoxa-",
        b"xoxs-",
        b"sk_live_",
        b"glpat-",
        b"AIza",
    ),
}
# Bidirectional controls and zero-width characters, as UTF-8 (textcheck names them).
_HIDDEN_CHARS = (
    "\u061c\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\u3164\uffa0\u115f\u1160\ufeff"
)
_PLAIN[Kind.HIDDEN_CHAR] = (
    *(char.encode() for char in _HIDDEN_CHARS),
    b"\xf3\xa0",  # U+E0000..U+E007F and U+E0100..U+E01EF: tags and variation selectors
)

_WORD_BOTH = frozenset({Kind.EVAL, Kind.FUNCTION})
_WORD_BEFORE = frozenset(
    {Kind.ENV, Kind.NETWORK_GLOBAL, Kind.HOMEDIR, Kind.DESTRUCTIVE, Kind.WALK, Kind.WRITE}
)
_PIPES_TO_A_SHELL = frozenset({b"| sh", b"|sh", b"| bash", b"|bash"})
_IDENT = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$")
_QUOTES = frozenset(b"'\"`")
_SPACES = frozenset(b" \t\r\n")


def _build() -> tuple[
    ahocorasick_rs.BytesAhoCorasick, list[tuple[Kind, bytes]], dict[int, tuple[int, str]]
]:
    patterns: list[tuple[Kind, bytes]] = [(Kind.IMPORT, token) for token in _IMPORT_TOKENS]
    for kind, tokens in _PLAIN.items():
        patterns.extend((kind, token) for token in tokens)
    named: dict[int, tuple[int, str]] = {}
    for prefix in _QUOTED_IMPORTS:
        quote = prefix[-1:]
        for module in sorted(INTERESTING_MODULES):
            for written in (module, f"node:{module}"):
                named[len(patterns)] = (len(prefix), module)
                patterns.append((Kind.IMPORT, prefix + written.encode() + quote))
    seen: set[bytes] = set()
    for _kind, token in patterns:
        if token in seen:
            raise ValueError(f"token {token!r} is listed twice")
        seen.add(token)
    # The DFA: more memory (a few MB for these tokens), two to three times the speed.
    automaton = ahocorasick_rs.BytesAhoCorasick(
        [token for _kind, token in patterns],
        matchkind=ahocorasick_rs.MatchKind.LeftmostLongest,
        implementation=ahocorasick_rs.Implementation.DFA,
    )
    return automaton, patterns, named


_AUTOMATON, _PATTERNS, _NAMED_IMPORTS = _build()
_DENSE_ESCAPES = re.compile(rb"(?:\\x[0-9A-Fa-f]{2}){3}")
# Runs of base64 (and so hex) characters, found in C: every such byte becomes "a", any other " ".
_ENCODED_TABLE = bytes(
    ord("a") if chr(byte).isascii() and (chr(byte).isalnum() or chr(byte) in "+/_-") else ord(" ")
    for byte in range(256)
)
_RUN = b"a" * ENCODED_RUN


def find_anchors(
    data: bytes, *, longest_line: int | None = None, limit: int = MAX_ANCHORS
) -> Anchors:
    """The interesting places of one file. `longest_line` (from the archive index) turns on the
    encoded-literal search, which only files with long lines can hold."""
    anchors = Anchors()
    kept = 0
    for index, start, end in _AUTOMATON.find_matches_as_indexes(data):
        named = _NAMED_IMPORTS.get(index)
        if named is None:
            anchor = _judge(_PATTERNS[index][0], data, start, end)
        elif _word_before(data, start):  # `from 'https'`: the anchor is `from '`, as rules expect
            anchor = Anchor(Kind.IMPORT, start, start + named[0], named[1])
        else:
            anchor = None
        if anchor is None:
            continue
        if kept >= limit:
            anchors.truncated = True
            break
        anchors.by_kind[anchor.kind].append(anchor)
        kept += 1
    if longest_line is not None and longest_line >= LONG_LINE:
        for start, end in _encoded_runs(data):
            if kept >= limit:
                anchors.truncated = True
                break
            anchors.by_kind[Kind.ENCODED].append(Anchor(Kind.ENCODED, start, end))
            kept += 1
    return anchors


def _encoded_runs(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of every run of at least ENCODED_RUN base64 or hex characters, with its
    `=` padding."""
    mapped = data.translate(_ENCODED_TABLE)
    runs: list[tuple[int, int]] = []
    at = mapped.find(_RUN)
    while at >= 0 and len(runs) < MAX_ANCHORS:
        end = mapped.find(b" ", at + ENCODED_RUN)
        end = len(data) if end < 0 else end
        for _pad in range(2):
            if data[end : end + 1] != b"=":
                break
            end += 1
        runs.append((at, end))
        at = mapped.find(_RUN, end)
    return runs


def _judge(kind: Kind, data: bytes, start: int, end: int) -> Anchor | None:
    """The anchor if the bytes around the token make it worth a look; else None."""
    if kind is Kind.IMPORT:
        return _import_anchor(data, start, end)
    if kind in _WORD_BOTH and not (_word_before(data, start) and _word_after(data, end)):
        return None
    if kind in _WORD_BEFORE and not _word_before(data, start):
        return None
    if kind is Kind.TIMER_STRING:
        following = _next_byte(data, end)
        return Anchor(kind, start, end) if following in _QUOTES else None
    if kind is Kind.HEX_IDENTIFIER and not _hex_identifier(data, start, end):
        return None
    if kind is Kind.ENV and not _env_worth_a_look(data, start, end):
        return None
    if kind is Kind.HEX_ESCAPE and not _DENSE_ESCAPES.match(data, start):
        return None
    if (
        kind is Kind.DOWNLOAD
        and data[start:end] in _PIPES_TO_A_SHELL
        and not _word_after(data, end)
    ):
        # `a || shouldUpdate`, `mask | shallow`: code, not a pipe into `sh`; the rule still
        # looks at it when the file is parsed for something else
        return Anchor(kind, start, end, weak=True)
    if kind in _CALLED and not _maybe_called(kind, data, start, end):
        return Anchor(kind, start, end, weak=True)
    return Anchor(kind, start, end)


def _import_anchor(data: bytes, start: int, end: int) -> Anchor | None:
    if not _word_before(data, start):
        return None
    name, computed = module_name_after(data, end)
    if computed:
        return Anchor(Kind.COMPUTED_REQUIRE, start, end)
    if name is None:
        return None
    bare = name.removeprefix("node:")
    if bare in INTERESTING_MODULES:
        return Anchor(Kind.IMPORT, start, end, bare)
    return None


def module_name_after(data: bytes, position: int) -> tuple[str | None, bool]:
    """(the quoted module name at `position`, or None; whether the argument is computed)."""
    index = position
    while index < len(data) and data[index] in _SPACES:
        index += 1
    if index >= len(data) or data[index] == ord(")"):
        return None, False
    if data[index] not in _QUOTES:
        return None, True
    return _quoted_from(data, index), False


def _quoted_from(data: bytes, quote_at: int) -> str | None:
    quote = data[quote_at : quote_at + 1]
    close = data.find(quote, quote_at + 1, quote_at + 2 + MAX_MODULE_NAME)
    if close < 0:
        return None
    raw = data[quote_at + 1 : close]
    if b"\n" in raw or b"\\" in raw or b"${" in raw:
        return None
    return raw.decode("ascii", "replace")


_ENV_NAME = re.compile(rb"\s*\.\s*([A-Za-z_$][\w$]*)")
TOKEN_NAME = (
    r"TOKEN|SECRET|PASSW(?:OR)?D|PASSPHRASE|CREDENTIAL|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY"  # noqa: S105
    r"|(?:^|_)AUTH$|COOKIE|SESSION_?KEY|WEBHOOK"
)
"""An environment variable name that reads a credential (the env rule uses it too)."""
_TOKEN_NAME = re.compile(TOKEN_NAME.encode(), re.IGNORECASE)


def _env_worth_a_look(data: bytes, start: int, end: int) -> bool:
    """`process.env.NODE_ENV` and other plain names are read everywhere and no rule reports
    them: only the whole environment, computed names and credential-like names are."""
    if data[start:end] == b"process[":
        return True
    if not _word_after(data, end):
        return False  # process.envelope: another name
    name = _ENV_NAME.match(data, end, end + 200)
    if name is None:
        return True  # process.env on its own, or indexed: the whole environment
    return bool(_TOKEN_NAME.search(name.group(1)))


_CALLED = frozenset({Kind.EVAL, Kind.FUNCTION, Kind.NETWORK_GLOBAL})
_CALL_OPENERS = frozenset(b"(`/?<")
"""What may follow a called name: its arguments, a tagged template, a comment, `?.(`, type
arguments (`fetch<Reply>(url)` in TypeScript)."""
_NOT_AFTER_EVAL = frozenset(b"'\":.")
"""After `eval`: the end of a string (`'unsafe-eval'`), a key or label, a member access."""


def _maybe_called(kind: Kind, data: bytes, start: int, end: int) -> bool:
    """Whether the token at start:end can be what its rule reports: `fetch(`, `new Function`,
    `eval` taken hold of (`x = eval`, `(0, eval)`). The rules judge the token in its syntax;
    this only leaves out the shapes they never report, so they make no file parsed."""
    following = _next_byte(data, end)
    if kind is Kind.EVAL:
        if data[start - 1 : start] == b".":
            return following is not None and following in _CALL_OPENERS
        return following is None or following not in _NOT_AFTER_EVAL
    return (following is not None and following in _CALL_OPENERS) or _after_new(data, start)


def _after_new(data: bytes, start: int) -> bool:
    """`new X` (a `new` without arguments constructs too)."""
    at = start
    while at > 0 and data[at - 1] in _SPACES:
        at -= 1
    return at >= 3 and data[at - 3 : at] == b"new" and (at == 3 or data[at - 4] not in _IDENT)


def _word_before(data: bytes, start: int) -> bool:
    return start == 0 or data[start - 1] not in _IDENT


def _word_after(data: bytes, end: int) -> bool:
    return end >= len(data) or data[end] not in _IDENT


def _next_byte(data: bytes, position: int) -> int | None:
    while position < len(data) and data[position] in _SPACES:
        position += 1
    return data[position] if position < len(data) else None


_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


def _hex_identifier(data: bytes, start: int, end: int) -> bool:
    """`_0x1a2b`: at least four hex digits after `_0x`, as javascript-obfuscator names them."""
    digits = data[end : end + 4]
    return len(digits) == 4 and all(byte in _HEX_DIGITS for byte in digits)


def kinds_in(anchors: Iterable[Anchor]) -> set[Kind]:
    return {anchor.kind for anchor in anchors}
