"""Fault injection: each kind, `times`, method and path matching, changes on a running server.

Injected faults are off the spec on purpose, so these tests read stage routes through a plain
requests session; the server-side spec check never sees faulted answers.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from devregistry import server
from devregistry.server import Config, make_server
from tests.devregistry.conftest import People
from tests.support import packages


@pytest.fixture
def staged(live_registry, people: People) -> str:
    return packages.stage(live_registry.url, people.bob.token, "faulty", "1.0.0")


def get(registry, path: str, who=None, **kwargs) -> requests.Response:
    headers = who.auth() if who else {}
    return requests.get(f"{registry.url}{path}", headers=headers, timeout=10, **kwargs)


def test_no_faults_by_default(live_registry, people: People, staged):
    assert get(live_registry, "-/stage", people.bob).status_code == 200


def test_delay(live_registry, people: People, staged, monkeypatch: pytest.MonkeyPatch):
    waits: list[float] = []
    monkeypatch.setattr(server, "sleep", waits.append)
    live_registry.set_faults([{"path": "^/-/stage$", "delay": 0.4}])

    answer = get(live_registry, "-/stage", people.bob)
    other = get(live_registry, "-/whoami", people.bob)

    assert waits == [0.4]  # before the matching request only
    assert answer.status_code == 200
    assert other.status_code == 200


@pytest.mark.parametrize("status", [500, 502])
def test_status_with_times(live_registry, people: People, staged, status):
    live_registry.set_faults(
        [{"method": "GET", "path": "^/-/stage$", "status": status, "times": 2}]
    )

    answers = [get(live_registry, "-/stage", people.bob) for _ in range(3)]

    assert [a.status_code for a in answers] == [status, status, 200]
    assert answers[0].json()["message"]


def test_429_carries_retry_after(live_registry, people: People, staged):
    live_registry.set_faults([{"path": "/approve$", "status": 429, "retry_after": 7}])

    answer = requests.post(
        f"{live_registry.url}-/stage/{staged}/approve", headers=people.bob.auth(), timeout=10
    )

    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "7"
    # Nothing happened behind the fault.
    live_registry.clear_faults()
    assert get(live_registry, f"-/stage/{staged}", people.bob).status_code == 200


def test_malformed_json(live_registry, people: People, staged):
    live_registry.set_faults([{"path": "^/-/stage/[^/]+$", "malformed": True}])

    answer = get(live_registry, f"-/stage/{staged}", people.bob)

    assert answer.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.content)


def test_truncated_tarball(live_registry, people: People, staged):
    live_registry.set_faults([{"path": "/tarball$", "truncate": True, "times": 1}])

    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        get(live_registry, f"-/stage/{staged}/tarball", people.bob)

    assert get(live_registry, f"-/stage/{staged}/tarball", people.bob).content[:2] == b"\x1f\x8b"


def test_method_must_match(live_registry, people: People, staged):
    live_registry.set_faults([{"method": "POST", "path": "/-/stage", "status": 500}])

    assert get(live_registry, "-/stage", people.bob).status_code == 200


def test_the_first_matching_rule_with_hits_left_applies(live_registry, people, staged):
    live_registry.set_faults(
        [
            {"path": "^/-/stage$", "status": 502, "times": 1},
            {"path": "^/-/stage$", "status": 500, "times": 1},
        ]
    )

    statuses = [get(live_registry, "-/stage", people.bob).status_code for _ in range(3)]

    assert statuses == [502, 500, 200]


def test_rewriting_the_file_resets_the_counts(live_registry, people: People, staged):
    rule = {"path": "^/-/stage$", "status": 500, "times": 1}
    live_registry.set_faults([rule])
    assert get(live_registry, "-/stage", people.bob).status_code == 500
    assert get(live_registry, "-/stage", people.bob).status_code == 200

    time.sleep(0.01)  # a new mtime
    live_registry.set_faults([rule])

    assert get(live_registry, "-/stage", people.bob).status_code == 500


def test_clear_faults(live_registry, people: People, staged):
    live_registry.set_faults([{"path": ".", "status": 500}])
    live_registry.clear_faults()

    assert get(live_registry, "-/stage", people.bob).status_code == 200


def test_an_unreadable_fault_file_is_ignored(live_registry, people: People, staged):
    (live_registry.data_dir / "faults.json").write_text("{not json")

    assert get(live_registry, "-/stage", people.bob).status_code == 200


def test_faults_apply_to_classic_routes_too(live_registry, people: People):
    packages.publish(live_registry.url, people.bob.token, "classic", "1.0.0")
    live_registry.set_faults([{"path": r"\.tgz$", "status": 502}])

    assert get(live_registry, "classic/-/classic-1.0.0.tgz").status_code == 502
    assert get(live_registry, "classic").status_code == 200


def test_a_faults_file_given_on_the_command_line(tmp_path, people: People, live_registry):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps([{"path": "^/-/ping$", "status": 500}]))
    server = make_server(Config(live_registry.data_dir, faults_file=rules))
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        answer = requests.get(f"{server.url}-/ping", timeout=10)
    finally:
        server.shutdown()
        server.server_close()

    assert answer.status_code == 500


def test_the_log_never_holds_tokens_or_codes(live_registry, people: People, capfd):
    stage_id = packages.stage(live_registry.url, people.alice.token, "logged", "1.0.0")
    code = people.alice.code()
    requests.post(
        f"{live_registry.url}-/stage/{stage_id}/approve",
        headers=people.alice.auth(**{"npm-otp": code}),
        timeout=10,
    )
    requests.get(f"{live_registry.url}-/v1/done?authId=secret-query", timeout=10)

    err = capfd.readouterr().err

    assert f"POST /-/stage/{stage_id}/approve 201 " in err
    assert people.alice.token not in err
    assert code not in err
    assert "secret-query" not in err
