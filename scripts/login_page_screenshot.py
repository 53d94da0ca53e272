"""Make docs/login-page.png, the README's picture of the hosted login page: a sandbox-mode
`gateway serve` in a temporary folder, Debian's Chromium through Playwright (never
`playwright install`), the page as a phone shows it. English by default: Chinese needs a CJK
font in the system (apt-get install -y fonts-noto-cjk), else its glyphs render as boxes.

    .venv/bin/python scripts/login_page_screenshot.py [--lang zh-CN] [--output PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("gateway serve exited")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("gateway serve did not become ready")


def _shoot(base: str, lang: str, output: Path) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("no chromium on PATH (apt-get install -y chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        locale = "zh-CN" if lang == "zh-CN" else "en-US"
        context = browser.new_context(
            locale=locale, viewport={"width": 390, "height": 760}, device_scale_factor=2
        )
        page = context.new_page()
        page.goto(f"{base}/login?next=/")
        page.click("#tab-password")
        output.write_bytes(page.screenshot(full_page=True))
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lang", choices=["zh-CN", "en"], default="en")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "login-page.png")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_LOG_LEVEL"] = "WARNING"
    port = _free_port()
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "gateway", "serve", "--port", str(port)]
        proc = subprocess.Popen(command, env=env, cwd=folder)  # noqa: S603 (our own command)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_ready(base, proc)
            _shoot(base, args.lang, args.output)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
