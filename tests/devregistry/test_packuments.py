"""Classic reads and writes: packuments, manifests, tarballs, dist-tags, scoped names."""

from __future__ import annotations

import threading

import pytest
import requests

from devregistry import tarballs
from devregistry.server import Config, make_server
from tests.devregistry.conftest import People
from tests.support import packages


@pytest.fixture
def widgets(live_registry, people: People) -> bytes:
    tarball = packages.build_tarball("@demo/widgets", "1.0.0", {"index.js": "exports.w = 1\n"})
    packages.publish(live_registry.url, people.bob.token, "@demo/widgets", "1.0.0", tarball)
    return tarball


@pytest.mark.parametrize(
    "path", ["@demo%2fwidgets", "@demo%2Fwidgets", "@demo/widgets", "%40demo%2Fwidgets"]
)
def test_scoped_packument_is_found_escaped_either_way(live_registry, widgets, path):
    doc = requests.get(f"{live_registry.url}{path}", timeout=10).json()

    assert doc["name"] == "@demo/widgets"
    assert doc["dist-tags"] == {"latest": "1.0.0"}
    assert set(doc) >= {"_id", "name", "versions", "dist-tags", "time", "maintainers"}
    assert doc["maintainers"] == [{"name": "bob", "email": "bob@example.com"}]


@pytest.mark.parametrize("path", ["@demo%2fwidgets/1.0.0", "@demo/widgets/latest"])
def test_scoped_version_manifest_by_version_or_tag(live_registry, widgets, path):
    manifest = requests.get(f"{live_registry.url}{path}", timeout=10).json()

    assert manifest["name"] == "@demo/widgets"
    assert manifest["version"] == "1.0.0"


def test_dist_describes_the_tarball(live_registry, widgets: bytes):
    doc = requests.get(f"{live_registry.url}@demo%2fwidgets", timeout=10).json()
    dist = doc["versions"]["1.0.0"]["dist"]

    assert dist["tarball"] == f"{live_registry.url}@demo/widgets/-/widgets-1.0.0.tgz"
    assert dist["shasum"] == tarballs.shasum(widgets)
    assert dist["integrity"] == tarballs.integrity(widgets)
    answer = requests.get(dist["tarball"], timeout=10)
    assert answer.content == widgets
    assert answer.headers["content-type"] == "application/octet-stream"
    escaped = f"{live_registry.url}@demo%2fwidgets/-/widgets-1.0.0.tgz"
    assert requests.get(escaped, timeout=10).content == widgets


def test_the_install_accept_header_gets_the_same_document(live_registry, widgets):
    url = f"{live_registry.url}@demo%2fwidgets"
    full = requests.get(url, timeout=10).json()
    corgi = requests.get(
        url, headers={"accept": "application/vnd.npm.install-v1+json"}, timeout=10
    ).json()

    assert corgi == full


def test_unknown_packages_versions_and_tarballs_are_404(live_registry, widgets):
    url = live_registry.url
    for path in ("nothing", "@demo%2fnothing", "@demo/widgets/9.9.9", "@demo/widgets/-/x.tgz"):
        assert requests.get(f"{url}{path}", timeout=10).status_code == 404, path


def test_the_public_url_builds_tarball_links(tmp_path, people: People, live_registry):
    config = Config(live_registry.data_dir, public_url="http://registry.test:8080/npm")
    server = make_server(config)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        packages.publish(server.url, people.bob.token, "linked", "1.0.0")
        doc = requests.get(f"{server.url}linked", timeout=10).json()
    finally:
        server.shutdown()
        server.server_close()

    assert doc["versions"]["1.0.0"]["dist"]["tarball"] == (
        "http://registry.test:8080/npm/linked/-/linked-1.0.0.tgz"
    )


def test_publish_sets_the_tag_and_time(live_registry, people: People):
    url, token = live_registry.url, people.bob.token
    packages.publish(url, token, "tagged", "1.0.0")
    packages.publish(url, token, "tagged", "2.0.0-beta.0", tag="beta")

    doc = requests.get(f"{url}tagged", timeout=10).json()

    assert doc["dist-tags"] == {"latest": "1.0.0", "beta": "2.0.0-beta.0"}
    assert set(doc["time"]) == {"created", "modified", "1.0.0", "2.0.0-beta.0"}
    assert doc["versions"]["1.0.0"]["_npmUser"]["name"] == "bob"


def test_publish_answers_ok(live_registry, people: People):
    tarball = packages.build_tarball("oky", "1.0.0")
    answer = requests.put(
        f"{live_registry.url}oky",
        json=packages.publish_body("oky", "1.0.0", tarball),
        headers=people.bob.auth(),
        timeout=10,
    )

    assert answer.status_code == 200
    assert answer.json()["ok"] is True
    assert answer.json()["success"] is True


def test_publishing_a_version_twice_is_409(live_registry, people: People):
    packages.publish(live_registry.url, people.bob.token, "once", "1.0.0")

    with pytest.raises(packages.RegistryRefused) as refused:
        packages.publish(live_registry.url, people.bob.token, "once", "1.0.0")

    assert refused.value.response.status_code == 409


def test_dist_tags_can_be_read_and_moved_by_a_maintainer(live_registry, people: People):
    url = live_registry.url
    for version in ("1.0.0", "1.1.0"):
        packages.publish(url, people.bob.token, "@demo/tags", version)
    target = f"{url}-/package/@demo%2ftags/dist-tags"

    moved = requests.put(f"{target}/stable", json="1.0.0", headers=people.bob.auth(), timeout=10)
    outsider = requests.put(f"{target}/x", json="1.0.0", headers=people.carol.auth(), timeout=10)

    assert moved.status_code == 201
    assert outsider.status_code == 403
    assert requests.get(target, timeout=10).json() == {"latest": "1.1.0", "stable": "1.0.0"}


def test_whoami(live_registry, people: People):
    answer = requests.get(f"{live_registry.url}-/whoami", headers=people.bob.auth(), timeout=10)
    anonymous = requests.get(f"{live_registry.url}-/whoami", timeout=10)

    assert answer.json() == {"username": "bob"}
    assert anonymous.status_code == 401
