"""Debian's headless Chromium for the browser tests, driven by Playwright (never a downloaded
browser: no `playwright install`; apt-get install -y chromium), and the real `gateway serve`
processes it visits. Without a `chromium` executable or the playwright package the browser
tests are skipped with a message; with GATEWAY_TEST_REQUIRE_SERVICES=1 (what .ci/run sets)
that is a failure."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.harness import APPS_TOML, REQUIRE_SERVICES
from tests.support.processes import free_port, wait_ready

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = shutil.which("chromium")
TIMEOUT_MS = 15_000  # what a page may take to show what a test waits for
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def missing(what: str) -> None:
    message = f"{what}: the browser tests need it (apt-get install -y chromium; see the README)"
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


def launched() -> Iterator[Browser]:
    """One headless Chromium (the ``browser`` fixture, one per test module)."""
    if CHROMIUM is None:
        missing("no chromium executable on PATH")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright package is not installed")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def serve(workdir: Path, extra_env: dict[str, str]) -> Iterator[str]:
    """`gateway serve` on a free port in ``workdir`` (its own SQLite file), until ready."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update({"GATEWAY_LOG_LEVEL": "WARNING", **extra_env})
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--port", str(port)], env=env, cwd=workdir
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/readyz", proc, "gateway")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def serve_configured(workdir: Path) -> Iterator[str]:
    """``serve`` with the test apps configured (not sandbox mode), on plain-http loopback."""
    config = workdir / "gateway.toml"
    config.write_text(APPS_TOML, encoding="utf-8")
    env = {"GATEWAY_CONFIG": str(config), "TEST_CLUB_SECRET": "club-secret-0123456789"}
    yield from serve(workdir, env)
