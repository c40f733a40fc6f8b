"""`make screenshots`: start the demo as `make run` does (dev registry with the demo data, the
first sync and analyses, the portal) in a temporary folder on free ports, then photograph its
pages in Debian's Chromium into docs/screenshots/ for the README.

    .venv/bin/python tools/screenshots.py [--width 1440] [--dark]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("GREENROOM_CHROMIUM", "/usr/bin/chromium")
# As in tests/browser: no sandbox in containers, and no calls to outside hosts.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BANNER = "Greenroom is running at "
STARTUP_SECONDS = 180
STAGE_LINK = re.compile(r'href="(/stages/[0-9a-f-]{36}/)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def demo(var_dir: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`make run` in `var_dir`; the portal's URL and the demo people's passwords."""
    outside = {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}
    env = {key: value for key, value in os.environ.items() if key not in outside}
    port = free_port()
    env.update(
        GREENROOM_VAR_DIR=str(var_dir),
        GREENROOM_PORT=str(port),
        GREENROOM_DEV_REGISTRY_PORT=str(free_port()),
    )
    log = var_dir.parent / "run.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "portal.localrun"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_banner(process, log)
        seed = json.loads((var_dir / "devregistry" / "seed.json").read_text())
        yield f"http://127.0.0.1:{port}", {u["name"]: u["password"] for u in seed["users"]}
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_for_banner(process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while BANNER not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the demo did not start:\n" + log.read_text(errors="replace"))
        time.sleep(0.3)


def log_in(page: Page, base: str, name: str, password: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def shoot(page: Page, name: str) -> None:
    """docs/screenshots/<name>.png, or <name>-dark.png in dark mode (both sets can live there)."""
    page.wait_for_load_state("networkidle")
    dark = page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
    path = OUT / f"{name}{'-dark' if dark else ''}.png"
    page.screenshot(path=str(path))
    print(f"wrote {path.relative_to(ROOT)}")


def riskiest_stage(page: Page, base: str) -> str:
    page.goto(f"{base}/?sort=risk")
    found = STAGE_LINK.search(page.content())
    if found is None:
        raise SystemExit("the dashboard shows no stage")
    return base + found.group(1)


def changed_file(page: Page, stage: str) -> str:
    """The stage's package.json as the tree links it (every release changes it, and its diff
    carries a finding's marker), else its first changed file; without query or fragment."""
    page.goto(stage)
    links = page.locator("#tree a[href*='/files/']")
    manifest = links.filter(has_text="package.json")
    chosen = manifest.first if manifest.count() else links.first
    link = chosen.get_attribute("href") or ""
    return stage.split("/stages/")[0] + link.split("#")[0].split("?")[0]


def photograph(page: Page, base: str) -> None:
    page.goto(f"{base}/")
    shoot(page, "dashboard")
    stage = riskiest_stage(page, base)
    page.goto(stage)
    shoot(page, "stage-findings")
    page.goto(f"{stage}all-files/")
    page.mouse.wheel(0, 600)
    shoot(page, "all-files")
    page.goto(f"{changed_file(page, stage)}?layout=split#diff")
    shoot(page, "side-by-side")
    page.goto(f"{base}/audit/")
    shoot(page, "audit")
    page.goto(f"{stage}approve/")
    shoot(page, "approve")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=1440)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--dark", action="store_true", help="prefers-color-scheme: dark")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="greenroom-screenshots-") as tmp,
        demo(Path(tmp) / "var") as (base, passwords),
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(
            viewport={"width": args.width, "height": args.height},
            color_scheme="dark" if args.dark else "light",
        )
        page = context.new_page()
        log_in(page, base, "carol", passwords["carol"])
        photograph(page, base)
        browser.close()


if __name__ == "__main__":
    main()
