"""A live dev registry with a maintainer and the portal's read-only sync token, plus the few
registry-side moves the sync tests make (stage, approve, reject, publish, tamper) and a count
of the requests it served."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from devregistry.store import Store
from devregistry.testing import LiveRegistry
from reviews.mirror.registry import RegistryClient
from tests.support import packages

MAINTAINER = "alice"


class Registry:
    """The registry side of a sync test, driven over HTTP like CI and maintainers drive it."""

    def __init__(self, live: LiveRegistry, capsys: pytest.CaptureFixture[str]) -> None:
        self.live = live
        self.url = live.url
        self._capsys = capsys
        self._log = ""
        self._stage_ids: set[str] = set()
        self._delays_end = 0.0  # when the last request held by a `delay` fault is answered
        live.add_user(MAINTAINER)
        self.write_token = live.token(MAINTAINER)
        self.sync_token = live.token(MAINTAINER, read_only=True)

    def stage(self, name: str, version: str = "1.0.0", **kwargs: Any) -> str:
        stage_id = packages.stage(self.url, self.write_token, name, version, **kwargs)
        self._stage_ids.add(stage_id)
        return stage_id

    def set_faults(self, rules: list[dict[str, Any]]) -> None:
        self.live.set_faults(rules)
        longest = max((float(rule.get("delay", 0)) for rule in rules), default=0.0)
        self._delays_end = max(self._delays_end, time.monotonic() + longest)

    def clear_faults(self) -> None:
        self.live.clear_faults()

    def settle(self, at_most: float = 5.0) -> None:
        """Waits (a little) for requests a `delay` fault still holds, so that their log lines
        land in this test and not in the next one's count."""
        time.sleep(min(max(self._delays_end - time.monotonic(), 0.0), at_most))

    def publish(self, name: str, version: str, **kwargs: Any) -> None:
        packages.publish(self.url, self.write_token, name, version, **kwargs)

    def approve(self, stage_id: str) -> None:
        with self.maintainer_client() as client:
            client.approve_stage(stage_id)

    def reject(self, stage_id: str) -> None:
        with self.maintainer_client() as client:
            client.reject_stage(stage_id)

    def maintainer_client(self) -> RegistryClient:
        return RegistryClient(self.url, self.write_token, timeout=5)

    def tamper_stage(self, stage_id: str, **fields: str) -> None:
        """Change what the registry says about a stage, behind its API's back."""
        with Store(self.live.data_dir).write() as state:
            for name, value in fields.items():
                setattr(state.stages[stage_id], name, value)

    def replace_staged_tarball(self, stage_id: str, data: bytes) -> None:
        Path(self.live.data_dir, "staged", f"{stage_id}.tgz").write_bytes(data)

    def requests(self, method: str, path_pattern: str) -> int:
        """How many requests the registry logged for METHOD and a path matching the pattern.

        The dev registry prints one line per request on stderr ("GET /path 200 3ms"), just after
        it answered. A ping, awaited until its own line shows, lets the lines of requests that
        were answered before it land first.
        """
        pings = re.compile(r"^GET /-/ping \d{3} ", re.MULTILINE)
        self._log += self._capsys.readouterr().err
        before = len(pings.findall(self._log))
        requests.get(f"{self.url}-/ping", timeout=5).raise_for_status()
        deadline = time.monotonic() + 5
        while len(pings.findall(self._log)) == before and time.monotonic() < deadline:
            time.sleep(0.01)
            self._log += self._capsys.readouterr().err
        time.sleep(0.01)
        self._log += self._capsys.readouterr().err
        line = re.compile(rf"^{method} ({path_pattern}) \d{{3}} ", re.MULTILINE)
        return len(line.findall(self._log))

    def tarball_requests(self) -> int:
        """Stage tarball downloads, of this test's own stages only."""
        if not self._stage_ids:
            return 0
        ids = "|".join(re.escape(stage_id) for stage_id in self._stage_ids)
        return self.requests("GET", rf"/-/stage/(?:{ids})/tarball")
