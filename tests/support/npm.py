"""Running the real npm CLI against a dev registry, isolated from the machine's npm config."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

from devregistry.testing import LiveRegistry

NPM_TIMEOUT = 120


def npm_env(registry: LiveRegistry, token: str | None, home: Path) -> dict[str, str]:
    """Environment for an npm subprocess: its own user config, cache and home under `home`,
    the registry's URL and (if given) the token, no update notifier, audit or fund calls."""
    home.mkdir(parents=True, exist_ok=True)
    netloc = urlsplit(registry.url).netloc
    lines = [f"registry={registry.url}"]
    if token is not None:
        lines.append(f"//{netloc}/:_authToken={token}")
    userconfig = home / ".npmrc"
    userconfig.write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_")}
    env.update(
        HOME=str(home),
        npm_config_userconfig=str(userconfig),
        npm_config_cache=str(home / "cache"),
        npm_config_registry=registry.url,
        npm_config_update_notifier="false",
        npm_config_audit="false",
        npm_config_fund="false",
        npm_config_loglevel="notice",
    )
    return env


def run_npm(
    args: list[str], env: dict[str, str], cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs `npm ARGS` without a TTY (stdin is a pipe) and returns what it printed."""
    return subprocess.run(
        ["npm", *args],
        cwd=cwd,
        env=env,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=NPM_TIMEOUT,
        check=False,
    )


def run_npm_in_terminal(
    args: list[str], env: dict[str, str], cwd: Path, answers: list[tuple[str, str]]
) -> tuple[int, str]:
    """Runs `npm ARGS` on a pseudo-terminal, typing each answer when its prompt shows.

    `npm login` and `npm adduser` read from a terminal; with a plain pipe they stop after the
    first prompt ("Exit handler never called!"). Returns the exit code and what npm printed.
    """
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        ["npm", *args], cwd=cwd, env=env, stdin=follower, stdout=follower, stderr=follower
    )
    os.close(follower)
    printed = b""
    pending = list(answers)
    deadline = time.monotonic() + NPM_TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.1)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: npm exited
                break
            printed += chunk
            if pending and pending[0][0].encode() in printed.rsplit(b"\n", 1)[-1]:
                os.write(leader, pending.pop(0)[1].encode() + b"\r")
        code = process.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)
    return code, printed.decode("utf-8", errors="replace")
