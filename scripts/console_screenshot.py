"""Refresh docs/console-account.png, the README's picture of the operator console's account
page: runs the browser test that opens it (two real gateways on PostgreSQL, Debian's
Chromium), with GATEWAY_TEST_WRITE_SCREENSHOT=1 so that it saves what it sees.

    GATEWAY_TEST_POSTGRES_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python scripts/console_screenshot.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = "tests/test_admin_browser.py::test_support_finds_a_person_and_disables_the_account"


def main() -> int:
    env = {**os.environ, "GATEWAY_TEST_WRITE_SCREENSHOT": "1", "GATEWAY_TEST_REQUIRE_SERVICES": "1"}
    done = subprocess.run(  # noqa: S603 (this interpreter, fixed arguments)
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", TEST],
        cwd=ROOT,
        env=env,
        check=False,
    )
    if done.returncode == 0:
        print(f"wrote {ROOT / 'docs' / 'console-account.png'}")
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
