"""Running the real npm CLI against a dev registry, isolated from the machine's npm config."""

from __future__ import annotations

import os
import subprocess
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
