"""A live dev registry with a maintainer and the portal's read-only sync token, plus the few
registry-side moves the sync tests make (stage, approve, reject, publish, tamper) and a count
of the requests it served."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from devregistry.store import Store
from devregistry.testing import LiveRegistry
from reviews.registry import RegistryClient
from tests.support import packages

MAINTAINER = "alice"


class Registry:
    """The registry side of a sync test, driven over HTTP like CI and maintainers drive it."""

    def __init__(self, live: LiveRegistry, capsys: pytest.CaptureFixture[str]) -> None:
        self.live = live
        self.url = live.url
        self._capsys = capsys
        self._log = ""
        live.add_user(MAINTAINER)
        self.write_token = live.token(MAINTAINER)
        self.sync_token = live.token(MAINTAINER, read_only=True)

    def stage(self, name: str, version: str = "1.0.0", **kwargs: Any) -> str:
        return packages.stage(self.url, self.write_token, name, version, **kwargs)

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

        The dev registry prints one line per request on stderr: "GET /path 200 3ms".
        """
        self._log += self._capsys.readouterr().err
        line = re.compile(rf"^{method} ({path_pattern}) \d{{3}} ", re.MULTILINE)
        return len(line.findall(self._log))

    def tarball_requests(self) -> int:
        return self.requests("GET", r"/-/stage/[0-9a-f-]+/tarball")
