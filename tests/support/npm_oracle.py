"""What npm itself installs from a tarball: tests/support/npm_extract.js, run in batches.

One Node process extracts many tarballs (pacote's own `extract`, as `npm install` runs it), so
thousands of cases cost a few Node starts. The result per tarball is the set of regular files
npm wrote, each with its SHA-256 and whether it is executable, or npm's error.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

SCRIPT = Path(__file__).with_name("npm_extract.js")
NODE_SECONDS = 60.0  # a Node start, plus
NODE_SECONDS_PER_TARBALL = 0.05  # generous: about 10 ms of CPU each


@dataclass(frozen=True)
class Installed:
    """What npm left in the package folder after extracting one tarball."""

    ok: bool
    files: dict[str, tuple[str, bool]] = field(default_factory=dict)
    """path -> (sha256, executable)."""
    error: str = ""
    warnings: tuple[str, ...] = ()


def npm_root() -> str:
    npm = shutil.which("npm")
    assert npm, "the suite needs the npm CLI (npm 11.15 or later) on PATH"
    found = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, check=True)
    return found.stdout.strip()


def npm_install_many(
    tarballs: Mapping[str, bytes], workdir: Path, processes: int | None = None
) -> dict[str, Installed]:
    """Extract every tarball (name -> bytes) as npm does; names must be file-name safe."""
    processes = processes or min(4, os.cpu_count() or 1)
    names = sorted(tarballs)
    groups = [names[index::processes] for index in range(processes)]
    env = {**os.environ, "GREENROOM_NPM_ROOT": npm_root()}
    running = []
    for number, group in enumerate(group for group in groups if group):
        folder = workdir / f"batch-{number}"
        folder.mkdir(parents=True)
        for name in group:
            (folder / f"{name}.tgz").write_bytes(tarballs[name])
        running.append(
            subprocess.Popen(
                ["node", str(SCRIPT), str(folder)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
        )
    results: dict[str, Installed] = {}
    timeout = NODE_SECONDS + NODE_SECONDS_PER_TARBALL * len(names)
    for process in running:
        out, err = process.communicate(timeout=timeout)
        assert process.returncode == 0, f"npm_extract.js failed: {err[-2000:]}"
        for line in out.splitlines():
            results.update(_parse(line))
    assert set(results) == set(names), "npm_extract.js left tarballs out"
    return results


def _parse(line: str) -> dict[str, Installed]:
    data = json.loads(line)
    name = data["name"].removesuffix(".tgz")
    files = {path: (info["sha256"], info["exec"]) for path, info in data["files"].items()}
    installed = Installed(
        ok=data["ok"],
        files=files,
        error=data.get("error", ""),
        warnings=tuple(data.get("warnings", ())),
    )
    return {name: installed}
