"""Debian's headless Chromium for the browser tests, driven by Playwright (never a downloaded
browser: no `playwright install`; apt-get install -y chromium). Without a `chromium`
executable or the playwright package the browser tests are skipped with a message; with
GATEWAY_TEST_REQUIRE_SERVICES=1 (what .ci/run sets) that is a failure."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.support.harness import REQUIRE_SERVICES

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = shutil.which("chromium")
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
